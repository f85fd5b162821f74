/*
 * client_hostloop.c - the methods with which a host that has its own event
 * loop drives a client, as paho allows: socket() to watch, want_write() to
 * know when to watch for writing, loop_read(), loop_write() and loop_misc()
 * (keepalive) to call on readiness and about once a second. Under plain
 * lua5.4 with mqlua.so they are, with loop(), the only way a client runs.
 *
 * Queued QoS>0 messages go to libmosquitto after the store has committed
 * them; mqlua's loop does that once per turn, and these methods do it
 * themselves, so a host loop sends what publish() queued.
 */
#include "bindings/client.h"
#include "bindings/rc.h"

/* Commits the store and hands c's committed messages to libmosquitto,
 * as the shared loop does once per turn. */
static void flush_outbox(struct client *c)
{
	if (!c->connected)
		return;
	mqlua_store_commit_all();
	client_outbox_dispatch(c);
}

/* client:socket() -> the socket's file descriptor, or nil when not connected */
static int l_socket(lua_State *L)
{
	struct client *c = client_check(L, 1);
	int fd = mosquitto_socket(c->mosq);
	if (fd < 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, fd);
	return 1;
}

/* client:want_write() -> true when loop_write() has something to send */
static int l_want_write(lua_State *L)
{
	struct client *c = client_check(L, 1);
	MQLUA_ENTER(L);
	flush_outbox(c);
	MQLUA_LEAVE();
	lua_pushboolean(L, mosquitto_socket(c->mosq) >= 0 && mosquitto_want_write(c->mosq));
	return 1;
}

/* Runs fn on c with callbacks on L's thread, with the outbox flushed before
 * (so loop_write sends it) and after (on_connect may open the window);
 * returns paho's rc. */
static int drive(lua_State *L, struct client *c, int (*fn)(struct mosquitto *, int), int max_packets)
{
	if (mosquitto_socket(c->mosq) < 0)
		return RC_NO_CONN;
	MQLUA_ENTER(L);
	flush_outbox(c);
	int rc = fn(c->mosq, max_packets);
	flush_outbox(c);
	client_sync_io(c);
	MQLUA_LEAVE();
	return rc_from_mosq(rc);
}

static int check_max_packets(lua_State *L)
{
	lua_Integer n = luaL_optinteger(L, 2, 1);
	luaL_argcheck(L, n >= 1, 2, "max_packets must be at least 1");
	return n > 65535 ? 65535 : (int)n;
}

/* client:loop_read(max_packets=1) -> rc: reads what the socket has ready */
static int l_loop_read(lua_State *L)
{
	struct client *c = client_check(L, 1);
	int n = check_max_packets(L);
	lua_pushinteger(L, drive(L, c, mosquitto_loop_read, n));
	mqlua_check_interrupted(L);
	return 1;
}

/* client:loop_write() -> rc: writes what is waiting, as far as the socket takes it */
static int l_loop_write(lua_State *L)
{
	struct client *c = client_check(L, 1);
	lua_pushinteger(L, drive(L, c, mosquitto_loop_write, 1));
	return 1;
}

static int loop_misc(struct mosquitto *mosq, int unused)
{
	(void)unused;
	return mosquitto_loop_misc(mosq);
}

/* client:loop_misc() -> rc: keepalive (PINGREQ) and timeouts; call it about once a second */
static int l_loop_misc(lua_State *L)
{
	struct client *c = client_check(L, 1);
	lua_pushinteger(L, drive(L, c, loop_misc, 1));
	return 1;
}

const luaL_Reg client_hostloop_methods[] = {
	{ "socket", l_socket },
	{ "want_write", l_want_write },
	{ "loop_read", l_loop_read },
	{ "loop_write", l_loop_write },
	{ "loop_misc", l_loop_misc },
	{ NULL, NULL }
};
