/*
 * fuzz_lua.c - see fuzz_lua.h.
 */
#include "tests/fuzz/fuzz_lua.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

const char *const fz_names[] = {
	/* Client(), connect(), publish(), subscribe() ... parameters */
	"client_id", "clean_session", "userdata", "protocol", "transport", "store", "durability", "queue_policy",
	"queue_qos0", "callback_api_version", "host", "port", "keepalive", "bind_address", "bind_port",
	"clean_start", "properties", "topic", "payload", "qos", "retain", "options", "reasoncode", "username",
	"password", "ca_certs", "certfile", "keyfile", "cert_reqs", "tls_version", "ciphers", "keyfile_password",
	"min_delay", "max_delay", "domain", "dns_server", "path", "headers", "proxy_type", "proxy_addr",
	"proxy_port", "proxy_rdns", "timeout", "filter", "value", "noLocal", "retainAsPublished", "retainHandling",
	"QoS", "no_local", "retain_as_published", "retain_handling", "packetType",
	/* MQTT v5 properties */
	"PayloadFormatIndicator", "MessageExpiryInterval", "ContentType", "ResponseTopic", "CorrelationData",
	"SubscriptionIdentifier", "SessionExpiryInterval", "AssignedClientIdentifier", "ServerKeepAlive",
	"AuthenticationMethod", "AuthenticationData", "RequestProblemInformation", "WillDelayInterval",
	"RequestResponseInformation", "ResponseInformation", "ServerReference", "ReasonString", "ReceiveMaximum",
	"TopicAliasMaximum", "TopicAlias", "MaximumQoS", "RetainAvailable", "UserProperty", "MaximumPacketSize",
	"WildcardSubscriptionAvailable", "SubscriptionIdentifierAvailable", "SharedSubscriptionAvailable",
	/* callbacks and attributes */
	"on_connect", "on_disconnect", "on_message", "on_publish", "on_subscribe", "on_unsubscribe", "on_log",
	"on_connect_fail", "on_pre_connect", "on_bogus", "connect_timeout", "logger", "suppress_exceptions",
	"will_topic", "will_payload", "max_inflight_messages", "max_queued_messages", "reconnect_on_failure",
	/* option words and values */
	"tcp", "websockets", "unix", "memory", "normal", "full", "error", "drop_oldest", "tlsv1.2", "ALL",
	"127.0.0.1", "::1", "localhost", "/nonexistent/ca.crt", "a/b", "a/+", "#", "+/#", "$SYS/x", "$share/g/a",
	"a/#/b", "", "x",
	NULL
};
#define NNAMES (sizeof fz_names / sizeof fz_names[0] - 1)

const char *const *fz_keys = fz_names;
size_t fz_nkeys = NNAMES;

static const lua_Integer ints[] = {
	0, 1, -1, 2, 3, 4, 5, 60, 99, 127, 128, 255, 256, 1883, 8883, 65535, 65536, 2147483647, 2147483648,
	4294967295, 4294967296, 268435455, 268435456, LUA_MAXINTEGER, LUA_MININTEGER, -65536, 100000
};
static const double floats[] = {
	0.0, -0.0, 0.5, 1.0, 1.5, -1.5, 60.0, 65535.0, 4294967296.0, 1e300, -1e300, 1e-300, 9.3e18, -9.3e18
};
static const size_t long_lengths[] = { 65535, 65536, 100000, 300 };

uint8_t fz_byte(struct fz *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t fz_bytes(struct fz *in, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | fz_byte(in);
	return v;
}

static int noop(lua_State *L) { (void)L; return 0; }
static int raiser(lua_State *L) { return luaL_error(L, "raised by a fuzzed function"); }
static int truthy(lua_State *L) { lua_pushboolean(L, 1); return 1; }

void fz_push_table(lua_State *L, struct fz *in, int depth)
{
	int n = fz_byte(in) % 7;
	lua_createtable(L, 0, 0);
	for (int i = 0; i < n && in->budget > 0; i++) {
		uint8_t how = fz_byte(in) % 4;
		if (how == 0) {                      /* list item */
			fz_push_value(L, in, depth - 1);
			lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
			continue;
		}
		if (how == 3)
			fz_push_value(L, in, 0);         /* any key */
		else
			lua_pushstring(L, fz_keys[fz_byte(in) % fz_nkeys]);
		if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER && isnan(lua_tonumber(L, -1)))) {
			lua_pop(L, 1);                   /* not a key */
			continue;
		}
		fz_push_value(L, in, depth - 1);
		lua_rawset(L, -3);
	}
}

void fz_push_value(lua_State *L, struct fz *in, int depth)
{
	if (in->budget <= 0) {
		lua_pushnil(L);
		return;
	}
	in->budget--;
	uint8_t tag = fz_byte(in);
	switch (tag % 16) {
	case 0: lua_pushnil(L); break;
	case 1: lua_pushboolean(L, tag & 16); break;
	case 2: lua_pushinteger(L, (int8_t)fz_byte(in)); break;
	case 3: lua_pushinteger(L, ints[fz_byte(in) % (sizeof ints / sizeof ints[0])]); break;
	case 4: lua_pushinteger(L, (lua_Integer)fz_bytes(in, 8)); break;
	case 5: {
		uint8_t k = fz_byte(in);
		double specials[] = { NAN, INFINITY, -INFINITY };
		lua_pushnumber(L, k < 3 ? specials[k] : floats[k % (sizeof floats / sizeof floats[0])]);
		break;
	}
	case 6: {
		uint64_t bits = fz_bytes(in, 8);
		double d;
		memcpy(&d, &bits, sizeof d);
		lua_pushnumber(L, d);
		break;
	}
	case 7: case 8: {                        /* bytes of the input */
		size_t len = fz_byte(in) % 64;
		if (len > in->n)
			len = in->n;
		lua_pushlstring(L, (const char *)in->p, len);
		in->p += len;
		in->n -= len;
		break;
	}
	case 9: case 10: case 11:
		lua_pushstring(L, fz_names[fz_byte(in) % NNAMES]);
		break;
	case 12: {                               /* long strings around the limits */
		uint8_t k = fz_byte(in);
		size_t len = long_lengths[k % 4];
		luaL_Buffer b;
		char *p = luaL_buffinitsize(L, &b, len);
		memset(p, k & 4 ? 'a' : '/', len);
		luaL_pushresultsize(&b, len);
		break;
	}
	case 13:
		if (depth > 0)
			fz_push_table(L, in, depth);
		else
			lua_pushinteger(L, 1);
		break;
	case 14: {
		static const lua_CFunction fns[] = { noop, raiser, truthy };
		lua_pushcfunction(L, fns[fz_byte(in) % 3]);
		break;
	}
	default:
		if (tag & 16)
			lua_pushlightuserdata(L, NULL);
		else
			lua_newthread(L);
		break;
	}
}
