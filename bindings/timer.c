/*
 * timer.c - the Timer type: mqlua.after(seconds, fn) and
 * mqlua.every(seconds, fn) run fn on the loop, once or repeatedly, until
 * timer:cancel(). An armed timer keeps the script running and keeps
 * itself alive (a registry reference), so a script needs no variable for
 * it. fn gets the timer as its argument; an error in it is logged with its
 * traceback and a repeating timer goes on.
 */
#include "bindings/mqlua.h"
#include "runtime/loop.h"

#define MQLUA_TIMER_T "mqlua.Timer"

struct timer {
	struct loop_timer t;
	lua_State *L;           /* the main thread */
	int self;               /* registry ref to the userdata while armed */
	int fn;                 /* registry ref to the callback */
	double interval;        /* 0 for mqlua.after */
	unsigned long runs;
};

static struct timer *check_timer(lua_State *L)
{
	return luaL_checkudata(L, 1, MQLUA_TIMER_T);
}

/* Stops the timer and drops the references that kept it alive. */
static void disarm(struct timer *tm)
{
	loop_timer_stop(loop_default(), &tm->t);
	if (tm->self != LUA_NOREF) {
		luaL_unref(tm->L, LUA_REGISTRYINDEX, tm->self);
		tm->self = LUA_NOREF;
	}
}

static void fire(struct loop_timer *t)
{
	struct timer *tm = t->data;
	lua_State *L = mqlua_running_L ? mqlua_running_L : tm->L;
	tm->runs++;
	int top = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, tm->fn);
	lua_rawgeti(L, LUA_REGISTRYINDEX, tm->self);   /* the timer, alive until disarm() */
	bool once = tm->interval <= 0;
	mqlua_pcall(L, 1, 0, once ? "mqlua.after callback" : "mqlua.every callback");
	lua_settop(L, top);
	if (once)
		disarm(tm);   /* safe: no Lua runs before the loop is done with tm */
}

static int start(lua_State *L, bool repeat)
{
	double s = luaL_checknumber(L, 1);
	luaL_argcheck(L, s >= 0 && s < 1e9, 1, "seconds must be between 0 and 1e9");
	luaL_argcheck(L, !repeat || s > 0, 1, "the interval of mqlua.every must be positive");
	luaL_checktype(L, 2, LUA_TFUNCTION);
	struct timer *tm = lua_newuserdatauv(L, sizeof *tm, 0);
	loop_timer_init(&tm->t, fire, tm);
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	tm->L = lua_tothread(L, -1);
	lua_pop(L, 1);
	tm->fn = LUA_NOREF;
	tm->self = LUA_NOREF;
	tm->interval = repeat ? s : 0;
	tm->runs = 0;
	luaL_setmetatable(L, MQLUA_TIMER_T);
	lua_pushvalue(L, 2);
	tm->fn = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, -1);
	tm->self = luaL_ref(L, LUA_REGISTRYINDEX);
	loop_timer_start(loop_default(), &tm->t, s, repeat ? s : 0);
	return 1;
}

/* mqlua.after(seconds, fn) -> timer: fn(timer) once, seconds from now */
static int l_after(lua_State *L) { return start(L, false); }
/* mqlua.every(seconds, fn) -> timer: fn(timer) every seconds, until cancel() */
static int l_every(lua_State *L) { return start(L, true); }

static int l_cancel(lua_State *L)
{
	disarm(check_timer(L));
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

static int l_index(lua_State *L)
{
	struct timer *tm = check_timer(L);
	const char *k = luaL_checkstring(L, 2);
	if (k[0] == 'c' && k[1] == 'a')   /* cancel */
		lua_pushcfunction(L, l_cancel);
	else if (k[0] == 'a')             /* active */
		lua_pushboolean(L, loop_timer_active(&tm->t));
	else if (k[0] == 'r')             /* runs */
		lua_pushinteger(L, (lua_Integer)tm->runs);
	else if (k[0] == 'i')             /* interval */
		lua_pushnumber(L, tm->interval);
	else
		return luaL_error(L, "Timer has no field '%s' (fields: cancel, active, runs, interval)", k);
	return 1;
}

static int l_tostring(lua_State *L)
{
	struct timer *tm = check_timer(L);
	lua_pushfstring(L, "mqlua.Timer(%s, %s, %d runs)", tm->interval > 0 ? "every" : "after",
	                loop_timer_active(&tm->t) ? "armed" : "done", (int)tm->runs);
	return 1;
}

void timer_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__index", l_index },
		{ "__gc", l_gc },
		{ "__tostring", l_tostring },
		{ NULL, NULL }
	};
	static const luaL_Reg fns[] = {
		{ "after", l_after },
		{ "every", l_every },
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
