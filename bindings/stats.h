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
#include "runtime/loop.h"

/* Buckets: values below 32 ns one each, then 32 per power of two up to 2^40 ns
 * (18 minutes; longer runs land in the last bucket). */
#define STATS_SUB_BITS 5
#define STATS_MAX_EXP 40
#define STATS_BUCKETS ((STATS_MAX_EXP - STATS_SUB_BITS + 1) << STATS_SUB_BITS)

struct stats_hist {
	uint64_t count;
	uint64_t max_ns;
	uint32_t bucket[STATS_BUCKETS];
};

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

/* A task's attribution and accumulated run time (task.c keeps one per task). */
struct stats_task {
	struct client_stats *client;
	struct stats_script *script;
	struct stats_handlers *kind;
	int64_t run_ns;
};

/* The client whose callback the next task_call runs (NULL: none), set around
 * mqlua_pcall by client_pcall(). */
extern struct client_stats *stats_client;

/* Monotonic nanoseconds, cheap enough to read twice per handler. */
int64_t stats_clock(void);
void stats_hist_add(struct stats_hist *h, uint64_t ns);
/* The q-quantile (0 < q <= 1) in nanoseconds: the middle of its bucket; 0 when empty. */
double stats_hist_quantile(const struct stats_hist *h, double q);

struct client_stats *stats_client_new(void);
void stats_client_release(struct client_stats *s);

/* A task starts (what: the handler kind; its script is mqlua_script_name()'s)
 * / has ended after running run_ns in total, failed or not. */
void stats_task_start(struct stats_task *st, const char *what);
void stats_task_end(struct stats_task *st, bool failed);
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
