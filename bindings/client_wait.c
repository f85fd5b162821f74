/*
 * client_wait.c - client:wait_message(filter[, timeout]): the next message
 * that arrives on a filter, for scripts and test fixtures that send a request
 * and wait for the answer. In a task it lets the loop run meanwhile; outside
 * one it runs the loop until the message comes.
 *
 * The client must be subscribed to a filter covering it: waiting does not
 * subscribe. A message a waiter takes still goes to the message callbacks.
 */
#include "bindings/client.h"
#include "bindings/mqlua.h"
#include "runtime/loop.h"

#include <string.h>

struct waiter {
	struct client *c;
	bool got;           /* its message is in user value 1 */
	bool registered;    /* in the client's waiter table */
};

static int total_waiters;   /* across clients: on_message skips all this while 0 */
static const char waiters_key;   /* registry: client userdata -> {waiter -> filter} (weak keys) */

/* Pushes the waiter table of the client at index ud (creating it if asked),
 * or nil. */
static int push_table(lua_State *L, int ud, bool create)
{
	ud = lua_absindex(L, ud);
	mqlua_push_weak_table(L, &waiters_key);
	int type = mqlua_push_subtable(L, -1, ud, create);
	lua_remove(L, -2);
	return type;
}

/* Takes the waiter at index wi out of the table of the client at ud. */
static void unregister(lua_State *L, int ud, int wi, struct waiter *w)
{
	if (!w->registered)
		return;
	wi = lua_absindex(L, wi);
	w->registered = false;
	total_waiters--;
	if (push_table(L, ud, false) == LUA_TTABLE) {
		lua_pushvalue(L, wi);
		lua_pushnil(L);
		lua_rawset(L, -3);
	}
	lua_pop(L, 1);
}

void client_wait_deliver(lua_State *L, int ud, int msg, const char *topic)
{
	if (total_waiters == 0)
		return;
	ud = lua_absindex(L, ud);
	msg = lua_absindex(L, msg);
	if (push_table(L, ud, false) != LUA_TTABLE) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	size_t tlen = strlen(topic);
	lua_newtable(L);   /* the waiters served, removed after the walk */
	int served = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		size_t flen;
		const char *f = lua_tolstring(L, -1, &flen);
		struct waiter *w = lua_touserdata(L, -2);
		if (f && w && !w->got && topic_matches(f, flen, topic, tlen)) {
			w->got = true;
			lua_pushvalue(L, msg);
			lua_setiuservalue(L, -3, 1);
			lua_pushvalue(L, -2);
			lua_rawseti(L, t + 1, ++served);
		}
		lua_pop(L, 1);
	}
	for (int i = 1; i <= served; i++) {
		lua_rawgeti(L, t + 1, i);
		unregister(L, ud, -1, lua_touserdata(L, -1));
		lua_pop(L, 1);
	}
	lua_settop(L, t - 1);
}

static bool waiter_done(void *ud)
{
	struct waiter *w = ud;
	return w->got || !w->c->mosq;
}

/* The end of a wait: the client at 1, the waiter at 4. */
static int wait_result(lua_State *L, int status, lua_KContext ctx)
{
	(void)status; (void)ctx;
	struct waiter *w = lua_touserdata(L, 4);
	unregister(L, 1, 4, w);
	mqlua_check_interrupted(L);
	if (w->got) {
		lua_getiuservalue(L, 4, 1);
		return 1;
	}
	lua_pushnil(L);
	if (!w->c->mosq)
		lua_pushliteral(L, "client closed");
	else
		lua_pushliteral(L, "timeout");
	return 2;
}

/* client:wait_message(filter[, timeout]) -> msg | nil, "timeout" */
int client_wait_message(lua_State *L)
{
	struct client *c = client_check(L, 1);
	size_t flen;
	const char *filter = luaL_checklstring(L, 2, &flen);
	const char *bad = topic_check_filter(filter, flen);
	if (bad)
		return luaL_argerror(L, 2, lua_pushfstring(L, "invalid topic filter '%s': %s", filter, bad));
	double timeout = luaL_optnumber(L, 3, -1);
	lua_settop(L, 3);
	struct waiter *w = lua_newuserdatauv(L, sizeof *w, 1);   /* index 4 */
	w->c = c;
	w->got = false;
	push_table(L, 1, true);
	lua_pushvalue(L, 4);
	lua_pushvalue(L, 2);
	lua_rawset(L, -3);
	lua_pop(L, 1);
	w->registered = true;
	total_waiters++;
	if (c->attached && task_can_wait(L))
		return task_wait(L, waiter_done, w, timeout, wait_result, 0);
	MQLUA_ENTER(L);
	if (c->attached) {
		mqlua_wait(waiter_done, w, timeout);
	} else {
		double deadline = timeout >= 0 ? loop_now() + timeout : -1;
		while (c->mosq && !waiter_done(w) && !mqlua_interrupted) {
			double left = deadline < 0 ? 1.0 : deadline - loop_now();
			if (left <= 0)
				break;
			client_run_once(c, left > 1.0 ? 1.0 : left);
		}
	}
	MQLUA_LEAVE();
	return wait_result(L, LUA_OK, 0);
}
