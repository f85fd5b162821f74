/*
 * fuzz_client_args.c - libFuzzer target for the argument conversion of
 * every Client method (bindings/client*.c and what they call): random Lua
 * values in every position, in a Lua state with mqlua loaded, no broker.
 *
 * The input is a small program (fuzz_lua.c reads the values): up to 24
 * operations, each one of
 *   make a Client (mqtt.Client with random arguments) into one of 4 slots,
 *   call a method of a slot's client (now and then with a random self),
 *   assign or read a field of a client (callbacks, paho's attributes),
 *   close a client, call a method or field of the last result (an
 *   MQTTMessageInfo, a ReasonCode ...), call a module function (timers,
 *   tasks and waits included; not mqlua.run or the broker).
 * Each operation runs under lua_pcall. A crash, a sanitizer report, a Lua
 * panic, or an error value that is not a string is a finding; raising an
 * error that names the argument is what the bindings should do.
 *
 * Nothing reaches the network or the disk, whatever the input says:
 * connect() is replaced for this program (it succeeds at once, with a
 * socketpair whose far end never answers), getaddrinfo only takes
 * numeric addresses, the SRV lookup of connect_srv finds nothing, poll and
 * pselect never wait, and every store a Client asks for is the memory store
 * (the link wraps mqlua_store). mqlua_interrupted is set, so every wait
 * (loop_forever, wait_message, wait_for_publish) returns at once.
 */
#include "bindings/mqlua.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "store/store.h"
#include "tests/fuzz/fuzz_lua.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <lualib.h>

/* ---- the fence around the network and the disk ---- */

/* The far ends of the "connections" of this input: closed after it. */
static int peers[256];
static int npeers;

/* Every connect() "succeeds" at once without leaving the process: fd becomes
 * one end of a socketpair whose other end nobody reads or answers, like a
 * broker that accepted the connection and then said nothing. */
int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	(void)addr; (void)len;
	int pair[2], fl = fcntl(fd, F_GETFL);
	if (fl < 0 || npeers == (int)(sizeof peers / sizeof peers[0]) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0) {
		errno = ECONNREFUSED;
		return -1;
	}
	int rc = dup2(pair[0], fd);
	close(pair[0]);
	if (rc < 0) {
		close(pair[1]);
		errno = ECONNREFUSED;
		return -1;
	}
	fcntl(fd, F_SETFL, fl);
	peers[npeers++] = pair[1];
	return 0;
}

static void close_peers(void)
{
	while (npeers > 0)
		close(peers[--npeers]);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	if (!real)
		real = (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
	struct addrinfo h = { 0 };
	if (hints)
		h = *hints;
	h.ai_flags |= AI_NUMERICHOST;   /* no name lookups */
	return real(node, service, &h, res);
}

int luaopen_mqlua(lua_State *L);
int res_nquery(res_state st, const char *dname, int class, int type, unsigned char *answer, int anslen)
{
	(void)dname; (void)class; (void)type; (void)answer; (void)anslen;
	st->res_h_errno = HOST_NOT_FOUND;
	return -1;
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	static int (*real)(struct pollfd *, nfds_t, int);
	(void)timeout;
	if (!real)
		real = (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT, "poll");
	return real(fds, n, 0);
}

int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout, const sigset_t *mask)
{
	static int (*real)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	static const struct timespec zero = { 0, 0 };
	(void)timeout;
	if (!real)
		real = (int (*)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *))dlsym(RTLD_NEXT, "pselect");
	return real(n, r, w, e, &zero, mask);
}

struct store *__real_mqlua_store(const char *path, int durability, char *err, size_t errlen);
struct store *__wrap_mqlua_store(const char *path, int durability, char *err, size_t errlen);
struct store *__wrap_mqlua_store(const char *path, int durability, char *err, size_t errlen)
{
	(void)path; (void)durability;
	return __real_mqlua_store(NULL, STORE_MEMORY, err, errlen);
}

/* ---- the program ---- */

static const char *const methods[] = {
	"reinitialise", "connect", "connect_async", "reconnect", "disconnect", "is_connected", "last_error", "loop",
	"loop_forever", "loop_start", "loop_stop", "publish", "subscribe", "unsubscribe", "will_set", "will_clear",
	"username_pw_set", "tls_set", "tls_insecure_set", "user_data_set", "user_data_get", "message_callback_add",
	"message_callback_remove", "reconnect_delay_set", "max_inflight_messages_set", "max_queued_messages_set",
	"queue_depth", "queue_oldest_age", "dead_letters", "retained", "wait_message", "connect_srv", "socket",
	"want_write", "loop_read", "loop_write", "loop_misc", "enable_bridge_mode", "enable_logger",
	"disable_logger", "manual_ack_set", "ack", "message_retry_set", "ws_set_options", "proxy_set",
	"publish", "subscribe", "connect", "will_set", "tls_set",
};
#define NMETHODS (sizeof methods / sizeof methods[0])

static const char *const fields[] = {
	"on_connect", "on_disconnect", "on_message", "on_publish", "on_subscribe", "on_unsubscribe", "on_log",
	"on_connect_fail", "on_pre_connect", "on_other", "host", "port", "keepalive", "connect_timeout",
	"max_inflight_messages", "max_queued_messages", "logger", "suppress_exceptions", "client_id", "protocol",
	"clean_session", "will_topic", "will_payload", "manual_ack", "username", "password", "transport", "x",
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static const char *const result_fields[] = {
	"rc", "mid", "is_published", "wait_for_publish", "value", "getName", "json", "packetType", "names", "name",
};
#define NRESULT_FIELDS (sizeof result_fields / sizeof result_fields[0])

static const char *const module_fns[] = {
	"Client", "topic_matches_sub", "validate_topic", "validate_filter", "connack_string", "error_string",
	"Properties", "ReasonCode", "SubscribeOptions", "time", "after", "every", "at", "sleep", "wait_until",
	"spawn",
};
#define NMODULE_FNS (sizeof module_fns / sizeof module_fns[0])

#define NSLOTS 4
#define CTX 1            /* stack index of the context table: [1..NSLOTS] clients, .mod, .last */

/* Pushes up to 5 random arguments; returns their number. */
static int push_args(lua_State *L, struct fz *in)
{
	int n = fz_byte(in) % 6;
	for (int i = 0; i < n; i++)
		fz_push_value(L, in, 3);
	return n;
}

/* Pushes the client of slot, making a plain one first if the slot is empty
 * (an MQTT v5 one for the upper half of the slots). */
static void push_client(lua_State *L, int slot)
{
	if (lua_rawgeti(L, CTX, slot) != LUA_TNIL)
		return;
	lua_pop(L, 1);
	lua_getfield(L, CTX, "mod");
	lua_getfield(L, -1, "Client");
	lua_pushfstring(L, "fuzz-%d", slot);
	lua_pushnil(L);
	lua_pushnil(L);
	lua_pushinteger(L, slot > NSLOTS / 2 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	lua_call(L, 4, 1);
	lua_remove(L, -2);
	lua_pushvalue(L, -1);
	lua_rawseti(L, CTX, slot);
}

/* One operation; runs under lua_pcall with the context at CTX. */
static int run_op(lua_State *L)
{
	struct fz *in = lua_touserdata(L, 2);
	lua_settop(L, 1);
	uint8_t op = fz_byte(in), arg = fz_byte(in);
	int slot = arg % NSLOTS + 1;
	int base = lua_gettop(L);
	switch (op % 8) {
	case 0:                                  /* a Client from random arguments */
		lua_getfield(L, CTX, "mod");
		lua_getfield(L, -1, "Client");
		lua_remove(L, -2);
		lua_call(L, push_args(L, in), 1);
		lua_rawseti(L, CTX, slot);
		break;
	case 1: case 2: case 3: {                /* a method */
		push_client(L, slot);
		lua_getfield(L, -1, methods[fz_byte(in) % NMETHODS]);
		lua_insert(L, -2);
		if (arg >= 240) {                    /* a wrong self */
			lua_pop(L, 1);
			fz_push_value(L, in, 1);
		}
		lua_call(L, 1 + push_args(L, in), 1);
		lua_setfield(L, CTX, "last");
		break;
	}
	case 4:                                  /* assign a field */
		push_client(L, slot);
		if (arg & 0x80)
			fz_push_value(L, in, 0);
		else
			lua_pushstring(L, fields[fz_byte(in) % NFIELDS]);
		if (lua_isnil(L, -1))
			break;
		fz_push_value(L, in, 2);
		lua_settable(L, -3);
		break;
	case 5:                                  /* read a field, tostring, or close */
		push_client(L, slot);
		if (arg & 0x40) {
			luaL_getmetafield(L, -1, "__close");
			lua_insert(L, -2);
			lua_call(L, 1, 0);
			break;
		}
		lua_pushstring(L, fields[fz_byte(in) % NFIELDS]);
		lua_gettable(L, -2);
		luaL_tolstring(L, -2, NULL);
		break;
	case 6: {                                /* the last result: a field, called if it is a function */
		lua_getfield(L, CTX, "last");
		int t = lua_type(L, -1);
		if (t != LUA_TUSERDATA && t != LUA_TTABLE)
			break;
		lua_getfield(L, -1, result_fields[fz_byte(in) % NRESULT_FIELDS]);
		luaL_tolstring(L, -2, NULL);
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TFUNCTION) {
			lua_insert(L, -2);
			lua_call(L, 1 + push_args(L, in), 0);
		}
		break;
	}
	default: {                               /* a module function */
		lua_getfield(L, CTX, "mod");
		lua_getfield(L, -1, module_fns[fz_byte(in) % NMODULE_FNS]);
		if (lua_isnil(L, -1))
			break;
		lua_call(L, push_args(L, in), 1);
		lua_setfield(L, CTX, "last");
		break;
	}
	}
	lua_settop(L, base);
	return 0;
}

static int panic(lua_State *L)
{
	fprintf(stderr, "fuzz_client_args: Lua panic: %s\n", lua_tostring(L, -1));
	abort();
}

/* Empties the memory store every Client of an input used. */
static void reset_store(void)
{
	char err[256];
	mqlua_store_commit_all();
	struct store *s = __real_mqlua_store(NULL, STORE_MEMORY, err, sizeof err);
	if (s && !store_db(s))
		return;   /* a memory store opens SQLite at its first write: nothing was written */
	if (!s || sqlite3_exec(store_db(s), "DELETE FROM outbox; DELETE FROM dead_letters; DELETE FROM retained; "
	                       "DELETE FROM state; DELETE FROM timers;", NULL, NULL, NULL) != SQLITE_OK)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	signal(SIGPIPE, SIG_IGN);
	log_threshold = -1;                      /* the bindings' log lines would only be noise */
	mqlua_interrupted = 1;
	mqlua_set_default_broker("127.0.0.1", 1883, NULL, NULL, false);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = { data, size, 160 };
	lua_State *L = luaL_newstate();
	if (!L)
		return 0;
	lua_atpanic(L, panic);
	luaL_openlibs(L);
	lua_createtable(L, NSLOTS, 2);           /* CTX */
	luaL_requiref(L, "mqlua", luaopen_mqlua, 0);
	lua_setfield(L, CTX, "mod");
	for (int ops = 0; ops < 24 && in.n > 0; ops++) {
		lua_pushcfunction(L, run_op);
		lua_pushvalue(L, CTX);
		lua_pushlightuserdata(L, &in);
		if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
			if (lua_type(L, -1) != LUA_TSTRING) {
				fprintf(stderr, "fuzz_client_args: an error value that is not a string: %s\n", luaL_typename(L, -1));
				abort();
			}
			lua_pop(L, 1);
		}
		if (lua_gettop(L) != CTX) {
			fprintf(stderr, "fuzz_client_args: the stack holds %d values after an operation\n", lua_gettop(L));
			abort();
		}
	}
	/* what the loop deferred (releasing clients) runs while they exist */
	loop_run_once(loop_default(), 0);
	lua_close(L);
	close_peers();
	reset_store();
	return 0;
}
