/*
 * info.c - MQTTMessageInfo, what publish() returns: rc, mid, is_published()
 * and wait_for_publish(timeout), which runs whatever drives the client until
 * libmosquitto reports the message sent (QoS 0) or acknowledged (QoS 1, 2).
 * The info keeps its client alive through its user value.
 */
#include "bindings/client.h"
#include "bindings/rc.h"

#include <string.h>

struct info {
	int rc;          /* paho's rc, or the broker's v5 reason code (>= 128) for a refusal */
	int64_t mid;     /* the outbox id for QoS>0, libmosquitto's packet id for QoS 0 */
	int qos;
	bool published;
	bool done;       /* published, refused or lost: nothing more will happen */
};

int info_push(lua_State *L, int client_idx, int rc, int64_t mid, int qos, bool published)
{
	struct info *i = lua_newuserdatauv(L, sizeof *i, 1);
	i->rc = rc;
	i->mid = mid;
	i->qos = qos;
	i->published = published;
	i->done = published || rc != 0;
	luaL_setmetatable(L, MQLUA_INFO_T);
	lua_pushvalue(L, client_idx);
	lua_setiuservalue(L, -2, 1);
	return 1;
}

/* Finds the waiting info under key in c's table; pushes nothing, returns NULL if none. */
static struct info *take_info(lua_State *L, struct client *c, int64_t key)
{
	struct info *i = NULL;
	client_push(L, c);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return NULL;
	}
	lua_getiuservalue(L, -1, CLIENT_UV_INFOS);
	if (lua_rawgeti(L, -1, key) == LUA_TUSERDATA) {
		i = lua_touserdata(L, -1);    /* stays alive: its client holds the weak table, we hold it */
		lua_pushnil(L);
		lua_rawseti(L, -3, key);
	}
	lua_pop(L, 3);
	return i;
}

void client_publish_done(lua_State *L, struct client *c, int64_t key, int reason)
{
	struct info *i = take_info(L, c, key);
	if (i) {
		i->done = true;
		i->published = reason < 0x80;
		if (reason >= 0x80)
			i->rc = reason;
	}
}

void client_fail_infos(lua_State *L, struct client *c, int64_t from_key, int rc)
{
	client_push(L, c);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	lua_getiuservalue(L, -1, CLIENT_UV_INFOS);
	int t = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_tointeger(L, -2) >= from_key) {
			struct info *i = lua_touserdata(L, -1);
			i->rc = rc;
			i->done = true;
			lua_pushvalue(L, -2);
			lua_pushnil(L);
			lua_rawset(L, t);    /* clearing an existing field during next() is allowed */
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
}

static struct info *check_info(lua_State *L)
{
	return luaL_checkudata(L, 1, MQLUA_INFO_T);
}

static int info_is_published(lua_State *L)
{
	lua_pushboolean(L, check_info(L)->published);
	return 1;
}

struct info_wait { struct info *info; struct client *c; };

static bool info_done(void *ud)
{
	struct info_wait *w = ud;
	return w->info->done || !w->c->mosq;
}

/* How wait_for_publish ends: true when published, false on timeout, an
 * error when the message failed. */
static int info_result(lua_State *L, struct info *i)
{
	mqlua_check_interrupted(L);
	if (i->done && !i->published)
		return luaL_error(L, "message publish failed: %s", i->rc >= 0x80 ? mosquitto_reason_string(i->rc)
		                  : rc_error_string(i->rc));
	lua_pushboolean(L, i->published);
	return 1;
}

static int info_waited(lua_State *L, int status, lua_KContext ctx)
{
	(void)status; (void)ctx;
	return info_result(L, check_info(L));
}

/* info:wait_for_publish(timeout=nil) -> true when published, false on timeout.
 * In a task it lets the loop run meanwhile. */
static int info_wait_for_publish(lua_State *L)
{
	struct info *i = check_info(L);
	double timeout = luaL_optnumber(L, 2, -1);
	if (i->rc == RC_QUEUE_SIZE)
		return luaL_error(L, "message publish failed: message queue full");
	if (i->rc != RC_SUCCESS && !i->published)
		return luaL_error(L, "message publish failed: %s", i->rc >= 0x80 ? mosquitto_reason_string(i->rc)
		                  : rc_error_string(i->rc));
	lua_getiuservalue(L, 1, 1);
	struct client *c = luaL_checkudata(L, -1, MQLUA_CLIENT_T);
	if (!i->published && c->attached && task_can_wait(L)) {
		/* the info (index 1) and client stay on the task's stack while it waits */
		lua_settop(L, 1);
		lua_getiuservalue(L, 1, 1);
		struct info_wait *w = lua_newuserdatauv(L, sizeof *w, 0);
		w->info = i;
		w->c = c;
		return task_wait(L, info_done, w, timeout, info_waited, 0);
	}
	if (!i->published && loop_io_active(&c->io) && c->io.busy)
		return luaL_error(L, "wait_for_publish cannot wait inside a callback of the client that "
		                  "published: the acknowledgement arrives only after the callback returns "
		                  "(use on_publish instead)");
	struct info_wait w = { i, c };
	double deadline = timeout >= 0 ? loop_now() + timeout : -1;
	MQLUA_ENTER(L);
	while (!info_done(&w) && !mqlua_interrupted) {
		double left = deadline < 0 ? 1.0 : deadline - loop_now();
		if (left <= 0 || loop_stopping(loop_default()))
			break;
		client_run_once(c, left > 1.0 ? 1.0 : left);
	}
	MQLUA_LEAVE();
	return info_result(L, i);
}

static int info_index(lua_State *L)
{
	struct info *i = check_info(L);
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "rc") == 0)
		lua_pushinteger(L, i->rc);
	else if (strcmp(k, "mid") == 0)
		lua_pushinteger(L, i->mid);
	else if (strcmp(k, "is_published") == 0)
		lua_pushcfunction(L, info_is_published);
	else if (strcmp(k, "wait_for_publish") == 0)
		lua_pushcfunction(L, info_wait_for_publish);
	else
		return luaL_error(L, "MQTTMessageInfo has no field '%s' (fields: rc, mid, is_published, wait_for_publish)", k);
	return 1;
}

static int info_tostring(lua_State *L)
{
	struct info *i = check_info(L);
	lua_pushfstring(L, "MQTTMessageInfo(mid=%I, rc=%d, %s)", (lua_Integer)i->mid, i->rc,
	                i->published ? "published" : i->done ? "failed" : "pending");
	return 1;
}

void info_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__index", info_index },
		{ "__tostring", info_tostring },
		{ NULL, NULL }
	};
	if (luaL_newmetatable(L, MQLUA_INFO_T)) {
		luaL_setfuncs(L, meta, 0);
		lua_pushliteral(L, "MQTTMessageInfo");
		lua_setfield(L, -2, "__name");
	}
	lua_pop(L, 1);
}
