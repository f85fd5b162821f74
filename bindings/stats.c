/*
 * stats.c - the counters behind mqlua.stats(): log-bucket histograms of
 * handler run times, the per-script and per-handler-kind records, and the
 * document itself. The clients' own counters are bumped where the events
 * happen (client_net.c, client_pub.c, client_outbox.c); this file only reads
 * them. Everything here is fixed-size memory: a histogram is 10 KB whatever
 * the number of handlers it has seen. The cost per handler is two reads of
 * the time-stamp counter and two histogram increments (tests/bench/RESULTS.md).
 */
#include "bindings/client.h"
#include "bindings/stats.h"
#include "runtime/log.h"
#include "runtime/netbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct client_stats *stats_client;
bool stats_tsc;

struct stats_last stats_last;

/* A script's handlers, kind by kind (its totals are their sum). */
struct stats_script {
	char *name;
	const char *key;             /* the mqlua_script_name() pointer that found it last */
	struct stats_kind *kinds;
	struct stats_script *next;
};

static struct stats_script *scripts;
static struct stats_script *last_script;
static double started;
/* a (time-stamp counter, nanoseconds) pair read at start, to convert ticks */
static uint64_t tsc0;
static uint64_t ns0;

uint64_t stats_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether the time-stamp counter ticks at a constant rate (CPUID's
 * "invariant TSC"), so that ticks measure time. */
static bool invariant_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000000u), "c"(0));
	if (a < 0x80000007u)
		return false;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000007u), "c"(0));
	return (d >> 8) & 1;
#else
	return false;
#endif
}

/* Milliseconds per tick: measured against the monotonic clock since start. */
static double ms_per_tick(void)
{
	if (!stats_tsc)
		return 1e-6;
	uint64_t ticks = stats_ticks() - tsc0, ns = stats_clock_ns() - ns0;
	return ticks > 0 && ns > 0 ? (double)ns / (double)ticks / 1e6 : 0;
}

/* ---- histograms ---- */

/* The lowest value of bucket b and its width. */
static void bucket_range(unsigned b, double *low, double *width)
{
	if (b < (1u << STATS_SUB_BITS)) {
		*low = b;
		*width = 1;
		return;
	}
	unsigned e = (b >> STATS_SUB_BITS) + STATS_SUB_BITS - 1;
	unsigned sub = b & ((1u << STATS_SUB_BITS) - 1);
	double unit = (double)(1ull << (e - STATS_SUB_BITS));
	*low = (double)(1ull << e) + sub * unit;
	*width = unit;
}

static uint64_t hist_count(const struct stats_hist *h)
{
	uint64_t n = 0;
	for (unsigned b = 0; b < STATS_BUCKETS; b++)
		n += h->bucket[b];
	return n;
}

/* The upper end of the highest non-empty bucket (0 when empty): the maximum, within 3%. */
static double hist_max(const struct stats_hist *h)
{
	for (unsigned b = STATS_BUCKETS; b-- > 0;) {
		if (h->bucket[b]) {
			double low, width;
			bucket_range(b, &low, &width);
			return low + width;
		}
	}
	return 0;
}

/* The q-quantile (0 < q <= 1) in ticks: the middle of its bucket; 0 when empty. */
static double hist_quantile(const struct stats_hist *h, uint64_t count, double q)
{
	if (count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)count + 0.999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < STATS_BUCKETS; b++) {
		seen += h->bucket[b];
		if (seen >= rank) {
			double low, width;
			bucket_range(b, &low, &width);
			return low + width / 2;
		}
	}
	return 0;
}

static void hist_merge(struct stats_hist *into, const struct stats_hist *h)
{
	for (unsigned b = 0; b < STATS_BUCKETS; b++)
		into->bucket[b] += h->bucket[b];
}

/* ---- clients, scripts, tasks ---- */

struct client_stats *stats_client_new(void)
{
	struct client_stats *s = calloc(1, sizeof *s);
	if (s)
		s->refs = 1;
	return s;
}

void stats_client_free(struct client_stats *s)
{
	free(s->topic);
	free(s);
}

static struct stats_script *find_script(const char *name)
{
	if (last_script && last_script->key == name)
		return last_script;
	struct stats_script *s;
	for (s = scripts; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			break;
	if (!s) {
		s = calloc(1, sizeof *s);
		if (!s || !(s->name = strdup(name))) {
			free(s);
			return NULL;
		}
		s->next = scripts;
		scripts = s;
	}
	s->key = name;
	last_script = s;
	return s;
}

static struct stats_kind *find_kind(struct stats_script *s, const char *what)
{
	struct stats_kind **p, *k;
	for (p = &s->kinds; (k = *p); p = &k->next)
		if (k->what == what || strcmp(k->what, what) == 0)
			break;
	if (!k) {
		if (!(k = calloc(1, sizeof *k)))
			return NULL;
		k->what = what;
		k->script = s;
	} else if (k == s->kinds) {
		return k;
	} else {
		*p = k->next;     /* unlink: it moves to the front, where the next lookup starts */
	}
	k->next = s->kinds;
	s->kinds = k;
	return k;
}

static const char *current_script_name(void)
{
	const char *name = mqlua_script_name();
	return name ? name : "main";
}

struct stats_kind *stats_find_kind(const char *name, const char *what)
{
	struct stats_script *s = find_script(name ? name : "main");
	struct stats_kind *k = s ? find_kind(s, what) : NULL;
	if (k)
		stats_last = (struct stats_last){ name, what, k };
	return k;
}

const char *stats_task_script(const struct stats_task *st)
{
	return st->kind ? st->kind->script->name : current_script_name();
}

/* ---- the document ---- */

static void set_int(lua_State *L, const char *k, uint64_t v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, k);
}

static void set_num(lua_State *L, const char *k, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, k);
}

static double wall_now(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* handler_errors and handler_time = {count, p50, p99, max} (milliseconds) */
static void push_handlers(lua_State *L, const struct stats_handlers *h)
{
	double ms = ms_per_tick();
	uint64_t count = hist_count(&h->time);
	set_int(L, "handler_errors", h->errors);
	lua_createtable(L, 0, 4);
	set_int(L, "count", count);
	set_num(L, "p50", hist_quantile(&h->time, count, 0.50) * ms);
	set_num(L, "p99", hist_quantile(&h->time, count, 0.99) * ms);
	set_num(L, "max", hist_max(&h->time) * ms);
	lua_setfield(L, -2, "handler_time");
}

static void push_by_qos(lua_State *L, const char *k, const uint64_t v[3])
{
	lua_createtable(L, 0, 3);
	set_int(L, "qos0", v[0]);
	set_int(L, "qos1", v[1]);
	set_int(L, "qos2", v[2]);
	lua_setfield(L, -2, k);
}

static void push_client(lua_State *L, struct client *c)
{
	const struct client_stats *s = c->stats;
	lua_createtable(L, 0, 16);
	lua_pushboolean(L, c->connected);
	lua_setfield(L, -2, "connected");
	if (c->connected && s->connected_since > 0)
		set_num(L, "connected_since", s->connected_since);
	set_int(L, "connections", s->connections);
	set_int(L, "reconnects", s->connections > 0 ? s->connections - 1 : 0);
	set_int(L, "messages_in", s->received[0] + s->received[1] + s->received[2]);
	set_int(L, "messages_out", s->published[0] + s->published[1] + s->published[2]);
	push_by_qos(L, "received", s->received);
	push_by_qos(L, "published", s->published);
	set_int(L, "bytes_in", s->bytes_in);
	set_int(L, "bytes_out", s->bytes_out);
	set_int(L, "queue_depth", (uint64_t)client_outbox_depth(c));
	set_int(L, "dead_letters", s->dead_letters);
	push_handlers(L, &s->handlers);
}

static void push_script(lua_State *L, const struct stats_script *s)
{
	static struct stats_handlers all;   /* 9 KB: not on the stack */
	memset(&all, 0, sizeof all);
	for (const struct stats_kind *k = s->kinds; k; k = k->next) {
		hist_merge(&all.time, &k->h.time);
		all.errors += k->h.errors;
	}
	lua_createtable(L, 0, 3);
	push_handlers(L, &all);
	lua_newtable(L);
	for (const struct stats_kind *k = s->kinds; k; k = k->next) {
		lua_createtable(L, 0, 2);
		push_handlers(L, &k->h);
		lua_setfield(L, -2, k->what);
	}
	lua_setfield(L, -2, "handlers");
}

/* rss in KiB from /proc/self/statm, 0 when it cannot be read */
static uint64_t rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, rss = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

static void push_process(lua_State *L)
{
	lua_createtable(L, 0, 8);
	set_int(L, "pid", (uint64_t)getpid());
	set_num(L, "uptime", loop_now() - started);
	set_int(L, "rss_kb", rss_kb());
	set_int(L, "lua_kb", (uint64_t)lua_gc(L, LUA_GCCOUNT, 0));
	set_int(L, "loop_iterations", loop_iterations(loop_default()));
	set_int(L, "socket_reads", netbuf_socket_reads);
	set_int(L, "socket_writes", netbuf_socket_writes);
	set_int(L, "handler_errors", mqlua_callback_errors);
	int n = 0;
	for (struct client *c = client_all; c; c = c->next)
		n++;
	set_int(L, "clients", (uint64_t)n);
	lua_pushliteral(L, MQLUA_VERSION);
	lua_setfield(L, -2, "version");
}

void stats_push(lua_State *L)
{
	luaL_checkstack(L, 8, "stats");
	/* no collection while walking client_all: a collected Client's __gc would
	 * unlink and free what the walk is reading */
	bool gc_was_running = lua_gc(L, LUA_GCISRUNNING);
	lua_gc(L, LUA_GCSTOP);
	lua_createtable(L, 0, 4);
	set_num(L, "time", wall_now());
	lua_newtable(L);
	for (struct client *c = client_all; c; c = c->next) {
		if (!c->mosq || !c->stats)
			continue;
		push_client(L, c);
		lua_setfield(L, -2, c->client_id);
	}
	lua_setfield(L, -2, "clients");
	lua_newtable(L);
	for (const struct stats_script *s = scripts; s; s = s->next) {
		push_script(L, s);
		lua_setfield(L, -2, s->name);
	}
	lua_setfield(L, -2, "scripts");
	push_process(L);
	lua_setfield(L, -2, "process");
	if (gc_was_running)
		lua_gc(L, LUA_GCRESTART);
}

/* mqlua.stats() -> { time =, clients = {[id] = ...}, scripts = {[name] = ...}, process = {...} } */
int stats_l_stats(lua_State *L)
{
	stats_push(L);
	return 1;
}

void stats_open(void)
{
	if (started != 0)
		return;
	started = loop_now();
	stats_tsc = invariant_tsc();
	ns0 = stats_clock_ns();
	tsc0 = stats_ticks();
}
