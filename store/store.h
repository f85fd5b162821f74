/*
 * store.h - mqlua's SQLite persistence, no Lua in here.
 *
 * A store is one SQLite file (or an in-memory database for durability
 * "memory") holding, per client_id: the outbox of QoS>0 messages not yet
 * acknowledged, their dead letters, the retained-message cache; and the
 * scripts' persistent state and the due times of durable timers. Several
 * clients, and several processes, may share one file; a client_id's queue
 * is owned by one process at a time (store_claim), so a queue never has two
 * senders.
 *
 * Writes are group-committed: the first write of a loop iteration opens a
 * transaction (store_begin), the loop commits it once per iteration
 * (store_commit), whatever the number of writes. Rows are handed to the
 * network only after their commit.
 */
#ifndef MQLUA_STORE_H
#define MQLUA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

enum store_durability {
	STORE_MEMORY,      /* no file: paho's behaviour, nothing survives the process */
	STORE_NORMAL,      /* WAL + synchronous=NORMAL: survives any crash of the process */
	STORE_FULL         /* WAL + synchronous=FULL: also survives power loss */
};

#define STORE_SCHEMA_VERSION 3

struct store;

/* Opens (creating it, and its directory, with mode 0600/0700) the store at
 * path; path is ignored for STORE_MEMORY. A damaged or foreign file is
 * refused with a message naming it, and never overwritten. Returns NULL with
 * the reason in err. */
struct store *store_open(const char *path, enum store_durability d, char *err, size_t errlen);
/* Commits what is pending and closes. */
void store_close(struct store *s);

sqlite3 *store_db(struct store *s);
const char *store_path(const struct store *s);     /* ":memory:" for memory stores */
enum store_durability store_durability(const struct store *s);
/* The last error, in words naming the file. */
const char *store_error(const struct store *s);

/* Records "store <path>: <what>: <SQLite's message>" as the error; returns -1. */
int store_fail(struct store *s, const char *what);

/* Opens the iteration's transaction if none is open. 0 or -1. What is
 * written after store_begin() must be committed at the end of the iteration. */
int store_begin(struct store *s);
/* The same for writes whose loss costs only a resend (deleting acknowledged
 * messages): they may wait for a later commit, so that a stream of acks does
 * not cost one commit (one fsync with durability "full") per loop turn. */
int store_begin_lazy(struct store *s);
/* True when the open transaction holds writes that store_begin() made, or
 * lazy ones older than STORE_LAZY_SECONDS: the loop should commit now. */
bool store_commit_due(const struct store *s);
/* For outbox.c: ids handed out, so that after a failed commit (which takes
 * AUTOINCREMENT's counter back) the next transaction moves it past them. */
int store_outbox_id_given(struct store *s, int64_t id);
int store_outbox_reseed(struct store *s);
/* True when the open transaction holds writes that must not leave the process
 * before their commit (new messages): nothing may be sent until then. */
bool store_has_urgent(const struct store *s);
#define STORE_LAZY_SECONDS 0.1
/* Commits the open transaction, if any. 0 or -1 (the transaction is then
 * rolled back: its writes are lost, what was committed before stays). */
int store_commit(struct store *s);
bool store_in_transaction(const struct store *s);
/* True for a memory store nothing has been written to yet (SQLite not even
 * opened): it holds no rows, so there is nothing to read. */
bool store_untouched(const struct store *s);

/* Claims the queue of client_id for this process (an flock()ed file beside
 * the store, holding our pid). Fails with "... is used by process N" when
 * another live process holds it. Memory stores always succeed. */
int store_claim(struct store *s, const char *client_id, char *err, size_t errlen);
void store_release(struct store *s, const char *client_id);

/* A prepared statement cached by the store for its lifetime (sql must be a
 * string literal or otherwise outlive the store). Reset before return. */
sqlite3_stmt *store_stmt(struct store *s, const char *sql);

/* Wall-clock seconds, for the created/updated columns. */
double store_now(void);

#endif
