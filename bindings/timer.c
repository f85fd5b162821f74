/*
 * timer.c - the Timer type: mqlua.after(seconds, fn), mqlua.every(seconds,
 * fn) and mqlua.at(spec, fn) run fn on the loop, once, repeatedly, or at
 * calendar times (runtime/cron.h), until timer:cancel(). An armed timer
 * keeps the script running and keeps itself alive (a registry reference),
 * so a script needs no variable for it. fn gets the timer as its argument;
 * an error in it is logged with its traceback and a repeating timer goes on.
 * A timer in a <close> variable is cancelled when its scope ends.
 *
 * Given a name (mqlua.after(s, "name", fn)), a timer is durable: its due
 * time is a row of the process's store (store/timers.c), so a restarted
 * script that registers the same name gets it back at its original time, or
 * at once - once - if it fell due while the process was down. A one-shot
 * timer's row is deleted after its function ran, a repeating one's moves to
 * the next run; cancel() deletes it. Registering a name that is armed in
 * this process replaces that timer (a reloaded script keeps the due time).
 *
 * Anonymous after/every timers run on the loop's monotonic clock. Calendar
 * and durable timers are due at a wall-clock time: the loop's monotonic
 * timer is armed for the difference, at most WALL_CHECK seconds, and the
 * wall clock is read again on wake, so a step of the clock (NTP) neither
 * makes them fire early nor more than WALL_CHECK seconds late.
 */
#include "bindings/mqlua.h"
#include "runtime/cron.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "store/store.h"
#include "store/timers.h"

#include <math.h>
#include <string.h>
#include <time.h>

#define MQLUA_TIMER_T "mqlua.Timer"
#define WALL_CHECK 1.0

enum timer_kind { TIMER_AFTER, TIMER_EVERY, TIMER_AT };
static const char *const kind_names[] = { "after", "every", "at" };

struct timer {
	struct loop_timer t;
	lua_State *L;           /* the main thread */
	int self;               /* registry ref to the userdata while armed */
	int fn;                 /* registry ref to the callback */
	enum timer_kind kind;
	double interval;        /* every: the period; 0 otherwise */
	bool wall;              /* due on the wall clock (at, durable) */
	double due;             /* wall: epoch seconds of the next run */
	struct cron cron;       /* at */
	const char *name;       /* durable: its row (the string is the user value); else NULL */
	struct store *store;    /* durable: where the row is */
	bool firing;            /* a one-shot's callback is running */
	struct timer *next_named;   /* the list of armed durable timers */
	struct mqlua_owner *owner;  /* run mode: the script version that made it */
	struct timer *next_owned;   /* the list of armed timers with an owner */
	unsigned long runs;
};

static struct timer *named;    /* armed durable timers of this process */
static struct timer *owned;    /* armed timers of scripts (run mode) */

static struct timer *check_timer(lua_State *L)
{
	return luaL_checkudata(L, 1, MQLUA_TIMER_T);
}

static struct timer *find_named(const char *name)
{
	for (struct timer *tm = named; tm; tm = tm->next_named)
		if (strcmp(tm->name, name) == 0)
			return tm;
	return NULL;
}

static void unlink_named(struct timer *tm)
{
	for (struct timer **p = &named; *p; p = &(*p)->next_named) {
		if (*p == tm) {
			*p = tm->next_named;
			break;
		}
	}
	tm->next_named = NULL;
}

static void unlink_owned(struct timer *tm)
{
	for (struct timer **p = &owned; *p; p = &(*p)->next_owned) {
		if (*p == tm) {
			*p = tm->next_owned;
			break;
		}
	}
	tm->next_owned = NULL;
}

static void save_due(struct timer *tm)
{
	if (tm->name && timers_set(tm->store, tm->name, tm->due) != 0)
		log_warn("timer \"%s\": %s", tm->name, store_error(tm->store));
}

/* Stops the timer and drops the references that kept it alive; with
 * forget, a durable timer's row goes too. */
static void disarm(struct timer *tm, bool forget)
{
	loop_timer_stop(loop_default(), &tm->t);
	tm->firing = false;
	if (tm->name && tm->self != LUA_NOREF) {
		unlink_named(tm);
		if (forget && timers_delete(tm->store, tm->name) != 0)
			log_warn("timer \"%s\": %s", tm->name, store_error(tm->store));
	}
	if (tm->owner && tm->self != LUA_NOREF)
		unlink_owned(tm);
	if (tm->self != LUA_NOREF) {
		luaL_unref(tm->L, LUA_REGISTRYINDEX, tm->self);
		tm->self = LUA_NOREF;
	}
}

/* True once the wall clock reached tm->due, as both clocks a script may
 * read see it: time() (os.time, os.date) lags clock_gettime by a few ms. */
static bool wall_due(const struct timer *tm)
{
	return store_now() >= tm->due && (double)time(NULL) >= floor(tm->due);
}

/* Arms the loop timer of a wall-clock timer towards tm->due. */
static void arm_wall(struct timer *tm)
{
	double left = tm->due - store_now();
	if (left < 0.001)
		left = wall_due(tm) ? 0 : 0.001;
	loop_timer_start(loop_default(), &tm->t, left > WALL_CHECK ? WALL_CHECK : left, 0);
}

/* For a wall-clock timer that fell due at `now`: the time of its next run,
 * or -1 when it has none. Missed runs are skipped, not caught up. */
static double next_due(const struct timer *tm, double now)
{
	if (tm->kind == TIMER_EVERY)
		return tm->due + (floor((now - tm->due) / tm->interval) + 1) * tm->interval;
	if (tm->kind == TIMER_AT)
		return (double)cron_next(&tm->cron, (time_t)floor(now));
	return -1;
}

/* The function a firing runs: fn(timer); for a one-shot, then cancel() -
 * through a to-be-closed slot, so that it also happens when fn raised, or
 * after fn waited when it runs as a task. */
static int run_done(lua_State *L, int status, lua_KContext ctx)
{
	(void)L, (void)status, (void)ctx;
	return 0;
}

static int run(lua_State *L)
{
	struct timer *tm = check_timer(L);
	if (lua_toboolean(L, 2))
		lua_toclose(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, tm->fn);
	lua_pushvalue(L, 1);
	lua_callk(L, 1, 0, 0, run_done);
	return 0;
}

static void fire(struct loop_timer *t)
{
	struct timer *tm = t->data;
	bool once = tm->kind == TIMER_AFTER;
	if (tm->wall) {
		if (!wall_due(tm)) {   /* an early wake: capped sleep, or the clock went back */
			arm_wall(tm);
			return;
		}
		double next = next_due(tm, store_now());
		if (next >= 0) {       /* armed again before fn runs, so that fn may cancel() */
			tm->due = next;
			save_due(tm);
			arm_wall(tm);
		} else {
			once = true;
		}
	}
	static const char *const what[] = { "mqlua.after callback", "mqlua.every callback", "mqlua.at callback" };
	lua_State *L = mqlua_running_L ? mqlua_running_L : tm->L;
	tm->runs++;
	tm->firing = once;
	int top = lua_gettop(L);
	/* the timer stays on this stack until the loop is done with tm: once
	 * cancelled, nothing else keeps it from the collector */
	lua_rawgeti(L, LUA_REGISTRYINDEX, tm->self);
	if (tm->owner) {   /* a closure of its own, claimed, so the task is the script's */
		lua_pushboolean(L, 1);
		lua_pushcclosure(L, run, 1);
		owner_claim_as(L, -1, tm->owner);
	} else {
		lua_pushcfunction(L, run);
	}
	lua_pushvalue(L, -2);
	lua_pushboolean(L, once);
	mqlua_pcall(L, 2, 0, what[tm->kind]);
	lua_settop(L, top);
}

/* Sets up a durable timer named by the string at index name_idx: takes over
 * from an armed timer of that name and sets tm->due from its row, if it
 * has one, else to fresh_due (for mqlua.at, a row due in the future is
 * recomputed from the spec: the script may have changed it). */
static void make_durable(lua_State *L, struct timer *tm, int name_idx, double fresh_due)
{
	char err[512];
	struct store *s = mqlua_store(NULL, STORE_NORMAL, err, sizeof err);
	if (!s)
		luaL_error(L, "mqlua.%s: %s", kind_names[tm->kind], err);
	const char *name = lua_tostring(L, name_idx);
	struct timer *old = find_named(name);
	bool consumed = old && old->firing;   /* re-registered from its own callback */
	/* a new version of the script that armed it: the old one stays armed
	 * until that version is retired (it goes on if the new one fails) */
	bool sibling = old && old->owner != tm->owner && owner_same_script(old->owner, tm->owner);
	if (old && !sibling)
		disarm(old, false);   /* its callback, if running, then leaves the row alone */
	double due = fresh_due;
	int found = consumed ? 0 : timers_get(s, name, &due);
	if (found < 0)
		luaL_error(L, "mqlua.%s: %s", kind_names[tm->kind], store_error(s));
	if (found && tm->kind == TIMER_AT && due > store_now())
		due = fresh_due;
	lua_pushvalue(L, name_idx);
	lua_setiuservalue(L, -2, 1);
	tm->name = name;
	tm->store = s;
	tm->wall = true;
	tm->due = due;
	tm->next_named = named;
	named = tm;
	save_due(tm);
}

/* mqlua.after/every/at: (when, [name,] fn) -> timer */
static int start(lua_State *L, enum timer_kind kind)
{
	double s = 0;
	struct cron cron = { 0 };
	if (kind == TIMER_AT) {
		char err[300];
		if (cron_parse(&cron, luaL_checkstring(L, 1), err, sizeof err) != 0)
			return luaL_argerror(L, 1, err);
	} else {
		s = luaL_checknumber(L, 1);
		luaL_argcheck(L, s >= 0 && s < 1e9, 1, "seconds must be between 0 and 1e9");
		luaL_argcheck(L, kind == TIMER_AFTER || s > 0, 1, "the interval of mqlua.every must be positive");
	}
	int fn_idx = 2, name_idx = 0;
	if (!lua_isfunction(L, 2) && !lua_isnoneornil(L, 3)) {
		size_t len;
		if (lua_type(L, 2) != LUA_TSTRING || (lua_tolstring(L, 2, &len), len == 0))
			return luaL_argerror(L, 2, "the name of a durable timer must be a non-empty string");
		name_idx = 2;
		fn_idx = 3;
	}
	luaL_checktype(L, fn_idx, LUA_TFUNCTION);
	struct timer *tm = lua_newuserdatauv(L, sizeof *tm, 1);
	memset(tm, 0, sizeof *tm);
	loop_timer_init(&tm->t, fire, tm);
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	tm->L = lua_tothread(L, -1);
	lua_pop(L, 1);
	tm->fn = LUA_NOREF;
	tm->self = LUA_NOREF;
	tm->kind = kind;
	tm->owner = mqlua_run_mode ? task_owner() : NULL;
	tm->interval = kind == TIMER_EVERY ? s : 0;
	tm->cron = cron;
	luaL_setmetatable(L, MQLUA_TIMER_T);
	double now = store_now();
	double fresh = kind == TIMER_AT ? (double)cron_next(&cron, (time_t)floor(now)) : now + s;
	luaL_argcheck(L, fresh >= 0, 1, "the spec does not run in the next ten years");
	if (kind == TIMER_AT) {
		tm->wall = true;
		tm->due = fresh;
	}
	if (name_idx)
		make_durable(L, tm, name_idx, fresh);
	owner_claim(L, fn_idx);
	lua_pushvalue(L, fn_idx);
	tm->fn = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, -1);
	tm->self = luaL_ref(L, LUA_REGISTRYINDEX);
	if (tm->owner) {
		tm->next_owned = owned;
		owned = tm;
	}
	if (tm->wall)
		arm_wall(tm);
	else
		loop_timer_start(loop_default(), &tm->t, s, kind == TIMER_EVERY ? s : 0);
	return 1;
}

void timer_cancel_owner(const struct mqlua_owner *o)
{
	struct timer *tm = owned;
	while (tm) {
		struct timer *next = tm->next_owned;
		if (tm->owner == o)
			disarm(tm, false);
		tm = next;
	}
}

/* mqlua.after(seconds, [name,] fn) -> timer: fn(timer) once, seconds from now */
static int l_after(lua_State *L) { return start(L, TIMER_AFTER); }
/* mqlua.every(seconds, [name,] fn) -> timer: fn(timer) every seconds, until cancel() */
static int l_every(lua_State *L) { return start(L, TIMER_EVERY); }
/* mqlua.at(spec, [name,] fn) -> timer: fn(timer) at the local times of spec */
static int l_at(lua_State *L) { return start(L, TIMER_AT); }

static int l_cancel(lua_State *L)
{
	disarm(check_timer(L), true);
	return 0;
}

static int l_gc(lua_State *L)
{
	struct timer *tm = check_timer(L);
	loop_timer_stop(loop_default(), &tm->t);   /* only reached once disarmed */
	if (tm->fn != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, tm->fn);
	tm->fn = LUA_NOREF;
	return 0;
}

/* Pushes the wall-clock time of the next run, or nil when not armed. */
static void push_next(lua_State *L, const struct timer *tm)
{
	if (!loop_timer_active(&tm->t))
		lua_pushnil(L);
	else if (tm->wall)
		lua_pushnumber(L, tm->due);
	else
		lua_pushnumber(L, store_now() + (double)(tm->t.due_ns - loop_now_ns()) / 1e9);
}

static int l_index(lua_State *L)
{
	struct timer *tm = check_timer(L);
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "cancel") == 0)
		lua_pushcfunction(L, l_cancel);
	else if (strcmp(k, "active") == 0)
		lua_pushboolean(L, loop_timer_active(&tm->t));
	else if (strcmp(k, "runs") == 0)
		lua_pushinteger(L, (lua_Integer)tm->runs);
	else if (strcmp(k, "interval") == 0)
		lua_pushnumber(L, tm->interval);
	else if (strcmp(k, "next") == 0)
		push_next(L, tm);
	else if (strcmp(k, "name") == 0)
		lua_getiuservalue(L, 1, 1);
	else
		return luaL_error(L, "Timer has no field '%s' (fields: cancel, active, runs, interval, next, name)", k);
	return 1;
}

static int l_tostring(lua_State *L)
{
	struct timer *tm = check_timer(L);
	lua_pushfstring(L, "mqlua.Timer(%s%s%s%s, %s, %d runs)", kind_names[tm->kind],
	                tm->name ? " \"" : "", tm->name ? tm->name : "", tm->name ? "\"" : "",
	                loop_timer_active(&tm->t) ? "armed" : "done", (int)tm->runs);
	return 1;
}

void timer_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__index", l_index },
		{ "__gc", l_gc },
		{ "__close", l_cancel },
		{ "__tostring", l_tostring },
		{ NULL, NULL }
	};
	static const luaL_Reg fns[] = {
		{ "after", l_after },
		{ "every", l_every },
		{ "at", l_at },
		{ NULL, NULL }
	};
	if (luaL_newmetatable(L, MQLUA_TIMER_T)) {
		luaL_setfuncs(L, meta, 0);
		lua_pushliteral(L, "Timer");
		lua_setfield(L, -2, "__name");
	}
	lua_pop(L, 1);
	luaL_setfuncs(L, fns, 0);
}
