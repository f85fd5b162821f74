/*
 * stats.c - the counters behind mqlua.stats(): log-bucket histograms of
 * handler run times, the per-script and per-handler-kind records, and the
 * document itself. The clients' own counters are bumped where the events
 * happen (client_net.c, client_pub.c, client_outbox.c); this file only reads
 * them. Everything here is fixed-size memory: a histogram is 4.6 KB whatever
 * the number of handlers it has seen.
 */
#include "bindings/client.h"
#include "bindings/stats.h"
#include "runtime/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct client_stats *stats_client;

/* One handler kind of one script ("on_message", "mqlua.every callback"...). */
struct stats_kind {
	const char *what;            /* the caller's static string */
	struct stats_handlers h;
	struct stats_kind *next;
};

struct stats_script {
	char *name;
	struct stats_handlers all;
	struct stats_kind *kinds;
	struct stats_script *next;
};

static struct stats_script *scripts;
static struct stats_script *last_script;
static double started;

int64_t stats_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- histograms ---- */

static unsigned bucket_of(uint64_t ns)
{
	if (ns < (1u << STATS_SUB_BITS))
		return (unsigned)ns;
	unsigned e = 63 - (unsigned)__builtin_clzll(ns);   /* >= STATS_SUB_BITS */
	if (e > STATS_MAX_EXP)
		return STATS_BUCKETS - 1;
	unsigned sub = (unsigned)(ns >> (e - STATS_SUB_BITS)) & ((1u << STATS_SUB_BITS) - 1);
	return ((e - STATS_SUB_BITS + 1) << STATS_SUB_BITS) + sub;
}

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

void stats_hist_add(struct stats_hist *h, uint64_t ns)
{
	h->count++;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->bucket[bucket_of(ns)]++;
}

double stats_hist_quantile(const struct stats_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < STATS_BUCKETS; b++) {
		seen += h->bucket[b];
		if (seen >= rank) {
			double low, width;
			bucket_range(b, &low, &width);
			double mid = low + width / 2;
			return mid > (double)h->max_ns ? (double)h->max_ns : mid;
		}
	}
	return (double)h->max_ns;
}

/* ---- clients, scripts, tasks ---- */

struct client_stats *stats_client_new(void)
{
	struct client_stats *s = calloc(1, sizeof *s);
	if (s)
		s->refs = 1;
	return s;
}

void stats_client_release(struct client_stats *s)
{
	if (s && --s->refs == 0) {
		free(s->topic);
		free(s);
	}
}

static struct stats_script *find_script(const char *name)
{
	if (last_script && strcmp(last_script->name, name) == 0)
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
	last_script = s;
	return s;
}

static struct stats_handlers *find_kind(struct stats_script *s, const char *what)
{
	struct stats_kind **p, *k;
	for (p = &s->kinds; (k = *p); p = &k->next)
		if (k->what == what || strcmp(k->what, what) == 0)
			break;
	if (!k) {
		if (!(k = calloc(1, sizeof *k)))
			return NULL;
		k->what = what;
	} else {
		*p = k->next;     /* unlink: it moves to the front, where the next lookup starts */
	}
	k->next = s->kinds;
	s->kinds = k;
	return &k->h;
}

static const char *current_script_name(void)
{
	const char *name = mqlua_script_name();
	return name ? name : "main";
}

void stats_task_start(struct stats_task *st, const char *what)
{
	st->run_ns = 0;
	st->client = stats_client;
	if (st->client)
		st->client->refs++;
	st->script = what ? find_script(current_script_name()) : NULL;   /* the main chunk is no handler */
	st->kind = st->script ? find_kind(st->script, what) : NULL;
}

void stats_task_end(struct stats_task *st, bool failed)
{
	uint64_t ns = st->run_ns > 0 ? (uint64_t)st->run_ns : 0;
	struct stats_handlers *hs[] = { st->client ? &st->client->handlers : NULL,
		st->script ? &st->script->all : NULL, st->kind };
	for (int i = 0; i < 3; i++) {
		if (!hs[i])
			continue;
		stats_hist_add(&hs[i]->time, ns);
		hs[i]->errors += failed;
	}
	stats_client_release(st->client);
	st->client = NULL;
}

const char *stats_task_script(const struct stats_task *st)
{
	return st->script ? st->script->name : current_script_name();
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
	set_int(L, "handler_errors", h->errors);
	lua_createtable(L, 0, 4);
	set_int(L, "count", h->time.count);
	set_num(L, "p50", stats_hist_quantile(&h->time, 0.50) / 1e6);
	set_num(L, "p99", stats_hist_quantile(&h->time, 0.99) / 1e6);
	set_num(L, "max", (double)h->time.max_ns / 1e6);
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
	lua_createtable(L, 0, 3);
	push_handlers(L, &s->all);
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
}

/* mqlua.stats() -> { time =, clients = {[id] = ...}, scripts = {[name] = ...}, process = {...} } */
int stats_l_stats(lua_State *L)
{
	stats_push(L);
	return 1;
}

void stats_open(void)
{
	if (started == 0)
		started = loop_now();
}
