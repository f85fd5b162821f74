/*
 * stats.h - what the runtime counts for mqlua.stats(): per client (messages
 * and bytes in and out, connections, dead letters, its handlers' errors and
 * run time), per script and per handler kind (errors, run time), and the
 * process (uptime, memory, loop iterations). Handler run times go into
 * fixed-size log-bucket histograms (p50/p99 within 1.6%). stats_pub.c
 * publishes the document as retained JSON (--stats-topic, Client{stats_topic}).
 */
#ifndef MQLUA_STATS_H
#define MQLUA_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <lua.h>
#include "bindings/mqlua.h"
#include "runtime/loop.h"

/* Run times are kept in ticks of stats_ticks(): the CPU's time-stamp counter
 * where it runs at a constant rate (x86), nanoseconds otherwise; stats.c turns
 * them into milliseconds when it reports. Buckets: values below 32 one each,
 * then 32 per power of two up to 2^42 (more than 20 minutes at 3 GHz; longer
 * runs land in the last bucket). */
#define STATS_SUB_BITS 5
#define STATS_MAX_EXP 42
#define STATS_BUCKETS ((STATS_MAX_EXP - STATS_SUB_BITS + 1) << STATS_SUB_BITS)

struct stats_hist {
	uint64_t bucket[STATS_BUCKETS];
};

extern bool stats_tsc;   /* stats_ticks() reads the time-stamp counter */
uint64_t stats_clock_ns(void);

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t stats_ticks(void) { return stats_tsc ? __rdtsc() : stats_clock_ns(); }
#else
static inline uint64_t stats_ticks(void) { return stats_clock_ns(); }
#endif

static inline unsigned stats_bucket(uint64_t v)
{
	if (v < (1u << STATS_SUB_BITS))
		return (unsigned)v;
	unsigned e = 63 - (unsigned)__builtin_clzll(v);
	if (e > STATS_MAX_EXP)
		return STATS_BUCKETS - 1;
	return ((e - STATS_SUB_BITS + 1) << STATS_SUB_BITS) + ((unsigned)(v >> (e - STATS_SUB_BITS)) & ((1u << STATS_SUB_BITS) - 1));
}



/* Handlers of one client, one script or one kind: how many ran, how many
 * failed, and their run times. */
struct stats_handlers {
	uint64_t errors;
	struct stats_hist time;
};

/* A client's counters, allocated apart from the client and reference
 * counted, so that a task still running after its client was collected
 * writes into live memory. */
struct client_stats {
	int refs;
	uint64_t received[3], published[3];   /* messages by QoS */
	uint64_t bytes_in, bytes_out;         /* payload bytes */
	uint64_t connections;                 /* CONNACKs accepted */
	double connected_since;               /* wall clock of the current connection's CONNACK */
	uint64_t dead_letters;                /* messages the broker refused */
	struct stats_handlers handlers;
	/* Client{stats_topic=, stats_interval=} (stats_pub.c) */
	char *topic;
	double interval;
	struct loop_timer timer;
	int pending_mid;                      /* the stats message libmosquitto has not written yet */
};

/* One handler kind of one script ("on_message", "mqlua.every callback"...). */
struct stats_kind {
	const char *what;            /* the caller's static string */
	struct stats_script *script;
	struct stats_handlers h;
	struct stats_kind *next;
};

/* A task's attribution and accumulated run time (task.c keeps one per task). */
struct stats_task {
	struct client_stats *client;
	struct stats_kind *kind;      /* the handler kind, in its script */
	int64_t run;                  /* ticks */
};

/* The client whose callback the next task_call runs (NULL: none), set by
 * client_pcall() and consumed by task_call (or mqlua_pcall's plain path). */
extern struct client_stats *stats_client;


struct client_stats *stats_client_new(void);
void stats_client_free(struct client_stats *s);
static inline void stats_client_release(struct client_stats *s)
{
	if (s && --s->refs == 0)
		stats_client_free(s);
}

/* The kind `what` of the script `name` (created on first use; NULL when out
 * of memory), and the last one found, which most tasks start with. */
struct stats_kind *stats_find_kind(const char *name, const char *what);
extern struct stats_last { const char *name, *what; struct stats_kind *kind; } stats_last;

/* A task starts (what: the handler kind; its script is mqlua_script_name()'s).
 * Inline: every handler passes here, so it must cost next to nothing. */
static inline void stats_task_start(struct stats_task *st, const char *what)
{
	st->run = 0;
	st->client = stats_client;
	if (st->client)
		st->client->refs++;
	const char *name = mqlua_script_name();
	st->kind = name == stats_last.name && what == stats_last.what ? stats_last.kind
	         : stats_find_kind(name, what);
}

/* The task failed (its error is being logged): counts for its client and kind. */
static inline void stats_task_failed(struct stats_task *st)
{
	if (st->client)
		st->client->handlers.errors++;
	if (st->kind)
		st->kind->h.errors++;
}

/* The task has ended after running st->run ticks in total. */
static inline void stats_task_end(struct stats_task *st)
{
	uint64_t run = st->run > 0 ? (uint64_t)st->run : 0;
	unsigned b = stats_bucket(run);
	struct client_stats *c = st->client;
	if (c) {
		c->handlers.time.bucket[b]++;
		st->client = NULL;
		stats_client_release(c);
	}
	if (st->kind) {
		st->kind->h.time.bucket[b]++;
	}
}
/* The name of the task's script, for log lines. */
const char *stats_task_script(const struct stats_task *st);

/* mqlua.stats() */
int stats_l_stats(lua_State *L);
/* Pushes the stats document (the table mqlua.stats() returns, plus `time`). */
void stats_push(lua_State *L);
void stats_open(void);

/* stats_pub.c */
struct client;
/* Reads Client{stats_topic=, stats_interval=} at idx, idx + 1 (raising on bad
 * values) and starts the client's publishing timer. */
void stats_client_options(lua_State *L, struct client *c, int idx);
/* The process-wide topic of --stats-topic: published every interval seconds
 * through the first connected client. */
void stats_set_process_topic(const char *topic, double interval);
/* A clean disconnect of c is about to be sent: clears (empty retained
 * message) the stats topics c carries. */
void stats_client_disconnecting(struct client *c);
/* True (and forgotten) when mid is c's stats message: not the script's. */
bool stats_owns_mid(struct client *c, int mid);
/* c is being closed: stops its timer, forgets it as a carrier. */
void stats_client_close(struct client *c);

#endif
