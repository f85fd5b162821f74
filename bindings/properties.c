/*
 * properties.c - MQTT v5 properties with paho's names: Lua tables to
 * libmosquitto property lists (checked against the packet they go in) and
 * back, a flat byte form for the outbox, and paho's mqtt.Properties and
 * mqtt.PacketTypes.
 *
 * Values are Lua integers and strings; UserProperty is a list of
 * {name, value} pairs (order and repeated names kept) and a received
 * SubscriptionIdentifier is a list of integers, as paho gives lists.
 */
#include "bindings/properties.h"
#include "bindings/mqlua.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <mqtt_protocol.h>

struct propdef {
	const char *name;
	int id;
	int type;     /* MQTT_PROP_TYPE_* */
};

static const struct propdef defs[] = {
	{ "PayloadFormatIndicator", MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, MQTT_PROP_TYPE_BYTE },
	{ "MessageExpiryInterval", MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, MQTT_PROP_TYPE_INT32 },
	{ "ContentType", MQTT_PROP_CONTENT_TYPE, MQTT_PROP_TYPE_STRING },
	{ "ResponseTopic", MQTT_PROP_RESPONSE_TOPIC, MQTT_PROP_TYPE_STRING },
	{ "CorrelationData", MQTT_PROP_CORRELATION_DATA, MQTT_PROP_TYPE_BINARY },
	{ "SubscriptionIdentifier", MQTT_PROP_SUBSCRIPTION_IDENTIFIER, MQTT_PROP_TYPE_VARINT },
	{ "SessionExpiryInterval", MQTT_PROP_SESSION_EXPIRY_INTERVAL, MQTT_PROP_TYPE_INT32 },
	{ "AssignedClientIdentifier", MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER, MQTT_PROP_TYPE_STRING },
	{ "ServerKeepAlive", MQTT_PROP_SERVER_KEEP_ALIVE, MQTT_PROP_TYPE_INT16 },
	{ "AuthenticationMethod", MQTT_PROP_AUTHENTICATION_METHOD, MQTT_PROP_TYPE_STRING },
	{ "AuthenticationData", MQTT_PROP_AUTHENTICATION_DATA, MQTT_PROP_TYPE_BINARY },
	{ "RequestProblemInformation", MQTT_PROP_REQUEST_PROBLEM_INFORMATION, MQTT_PROP_TYPE_BYTE },
	{ "WillDelayInterval", MQTT_PROP_WILL_DELAY_INTERVAL, MQTT_PROP_TYPE_INT32 },
	{ "RequestResponseInformation", MQTT_PROP_REQUEST_RESPONSE_INFORMATION, MQTT_PROP_TYPE_BYTE },
	{ "ResponseInformation", MQTT_PROP_RESPONSE_INFORMATION, MQTT_PROP_TYPE_STRING },
	{ "ServerReference", MQTT_PROP_SERVER_REFERENCE, MQTT_PROP_TYPE_STRING },
	{ "ReasonString", MQTT_PROP_REASON_STRING, MQTT_PROP_TYPE_STRING },
	{ "ReceiveMaximum", MQTT_PROP_RECEIVE_MAXIMUM, MQTT_PROP_TYPE_INT16 },
	{ "TopicAliasMaximum", MQTT_PROP_TOPIC_ALIAS_MAXIMUM, MQTT_PROP_TYPE_INT16 },
	{ "TopicAlias", MQTT_PROP_TOPIC_ALIAS, MQTT_PROP_TYPE_INT16 },
	{ "MaximumQoS", MQTT_PROP_MAXIMUM_QOS, MQTT_PROP_TYPE_BYTE },
	{ "RetainAvailable", MQTT_PROP_RETAIN_AVAILABLE, MQTT_PROP_TYPE_BYTE },
	{ "UserProperty", MQTT_PROP_USER_PROPERTY, MQTT_PROP_TYPE_STRING_PAIR },
	{ "MaximumPacketSize", MQTT_PROP_MAXIMUM_PACKET_SIZE, MQTT_PROP_TYPE_INT32 },
	{ "WildcardSubscriptionAvailable", MQTT_PROP_WILDCARD_SUB_AVAILABLE, MQTT_PROP_TYPE_BYTE },
	{ "SubscriptionIdentifierAvailable", MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE, MQTT_PROP_TYPE_BYTE },
	{ "SharedSubscriptionAvailable", MQTT_PROP_SHARED_SUB_AVAILABLE, MQTT_PROP_TYPE_BYTE },
};
#define NDEFS (sizeof defs / sizeof defs[0])

/* paho's PacketTypes: CONNECT = 1 ... AUTH = 15, WILLMESSAGE = 99 */
static const char *const packet_names[] = { NULL, "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
	"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
	"DISCONNECT", "AUTH" };
#define PACKET_WILLMESSAGE 99

static const struct propdef *def_by_name(const char *name)
{
	for (size_t i = 0; i < NDEFS; i++)
		if (strcmp(defs[i].name, name) == 0)
			return &defs[i];
	return NULL;
}

static const struct propdef *def_by_id(int id)
{
	for (size_t i = 0; i < NDEFS; i++)
		if (defs[i].id == id)
			return &defs[i];
	return NULL;
}

const char *properties_packet_name(int command)
{
	if (command == CMD_WILL)
		return "WILLMESSAGE";
	int t = command >> 4;
	return t >= 1 && t <= 15 ? packet_names[t] : "?";
}

/* Raises "<argname>: <message>" as a bad-argument error at idx (0: a plain error). */
static int prop_error(lua_State *L, int idx, const char *argname, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	lua_pushfstring(L, "%s: ", argname);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	lua_concat(L, 2);
	if (idx)
		return luaL_argerror(L, idx, lua_tostring(L, -1));
	luaL_where(L, 1);
	lua_insert(L, -2);
	lua_concat(L, 2);
	return lua_error(L);
}

struct prop_ctx {
	lua_State *L;
	int idx;                /* the argument's stack index for errors (0: none) */
	const char *argname;
	int command;
};

/* The integer at vidx within [0, max], or raises naming d. */
static lua_Integer check_int(struct prop_ctx *x, const struct propdef *d, int vidx, lua_Integer max)
{
	lua_State *L = x->L;
	int isint;
	lua_Integer v = lua_tointegerx(L, vidx, &isint);
	if (lua_type(L, vidx) != LUA_TNUMBER || !isint)
		prop_error(L, x->idx, x->argname, "%s must be an integer, got %s", d->name,
		           lua_type(L, vidx) == LUA_TNUMBER ? "a float" : luaL_typename(L, vidx));
	if (v < 0 || v > max)
		prop_error(L, x->idx, x->argname, "%s must be between 0 and %I, got %I", d->name, max, v);
	return v;
}

static const char *check_str(struct prop_ctx *x, const char *what, int vidx, size_t *len)
{
	if (lua_type(x->L, vidx) != LUA_TSTRING)
		prop_error(x->L, x->idx, x->argname, "%s must be a string, got %s", what, luaL_typename(x->L, vidx));
	const char *s = lua_tolstring(x->L, vidx, len);
	if (*len > 65535)
		prop_error(x->L, x->idx, x->argname, "%s is longer than 65535 bytes", what);
	return s;
}

static void add_pair(struct prop_ctx *x, mosquitto_property **list, int pidx)
{
	lua_State *L = x->L;
	if (!lua_istable(L, pidx) || lua_rawlen(L, pidx) != 2)
		prop_error(L, x->idx, x->argname, "UserProperty must be a list of {name, value} pairs, got %s",
		           lua_istable(L, pidx) ? "a table that is not a pair" : luaL_typename(L, pidx));
	lua_rawgeti(L, pidx, 1);
	lua_rawgeti(L, pidx, 2);
	size_t nlen, vlen;
	const char *name = check_str(x, "a UserProperty name", -2, &nlen);
	const char *value = check_str(x, "a UserProperty value", -1, &vlen);
	int rc = mosquitto_property_add_string_pair(list, MQTT_PROP_USER_PROPERTY, name, value);
	if (rc == MOSQ_ERR_MALFORMED_UTF8 || strlen(name) != nlen || strlen(value) != vlen)
		prop_error(L, x->idx, x->argname, "UserProperty must be valid UTF-8 without NUL characters");
	if (rc != MOSQ_ERR_SUCCESS)
		luaL_error(L, "out of memory");
	lua_pop(L, 2);
}

/* Appends the value at vidx as property d to *list (one node, or several for
 * UserProperty and a list of SubscriptionIdentifiers). Raises on a bad value;
 * *list stays the caller's to free. */
static void add_value(struct prop_ctx *x, mosquitto_property **list, const struct propdef *d, int vidx)
{
	lua_State *L = x->L;
	vidx = lua_absindex(L, vidx);
	int rc = MOSQ_ERR_SUCCESS;
	size_t len;
	const char *s;
	switch (d->type) {
	case MQTT_PROP_TYPE_BYTE:
		/* every byte property of MQTT v5 is 0 or 1 */
		rc = mosquitto_property_add_byte(list, d->id, (uint8_t)check_int(x, d, vidx, 1));
		break;
	case MQTT_PROP_TYPE_INT16:
		rc = mosquitto_property_add_int16(list, d->id, (uint16_t)check_int(x, d, vidx, 65535));
		break;
	case MQTT_PROP_TYPE_INT32:
		rc = mosquitto_property_add_int32(list, d->id, (uint32_t)check_int(x, d, vidx, 4294967295));
		break;
	case MQTT_PROP_TYPE_VARINT:
		if (lua_istable(L, vidx)) {   /* SubscriptionIdentifier: paho's list form */
			lua_Integer n = (lua_Integer)lua_rawlen(L, vidx);
			for (lua_Integer i = 1; i <= n && rc == MOSQ_ERR_SUCCESS; i++) {
				lua_rawgeti(L, vidx, i);
				rc = mosquitto_property_add_varint(list, d->id, (uint32_t)check_int(x, d, -1, 268435455));
				lua_pop(L, 1);
			}
		} else {
			rc = mosquitto_property_add_varint(list, d->id, (uint32_t)check_int(x, d, vidx, 268435455));
		}
		break;
	case MQTT_PROP_TYPE_BINARY:
		s = check_str(x, d->name, vidx, &len);
		rc = mosquitto_property_add_binary(list, d->id, s, (uint16_t)len);
		break;
	case MQTT_PROP_TYPE_STRING:
		s = check_str(x, d->name, vidx, &len);
		rc = strlen(s) != len ? MOSQ_ERR_MALFORMED_UTF8 : mosquitto_property_add_string(list, d->id, s);
		if (rc == MOSQ_ERR_MALFORMED_UTF8)
			prop_error(L, x->idx, x->argname, "%s must be valid UTF-8 without NUL characters", d->name);
		break;
	case MQTT_PROP_TYPE_STRING_PAIR:
		if (!lua_istable(L, vidx))
			prop_error(L, x->idx, x->argname, "UserProperty must be a list of {name, value} pairs, got %s",
			           luaL_typename(L, vidx));
		if (lua_rawgeti(L, vidx, 1) == LUA_TSTRING) {
			lua_pop(L, 1);
			add_pair(x, list, vidx);     /* a single {name, value} */
			break;
		}
		lua_pop(L, 1);
		for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, vidx); i <= n; i++) {
			lua_rawgeti(L, vidx, i);
			add_pair(x, list, lua_absindex(L, -1));
			lua_pop(L, 1);
		}
		break;
	}
	if (rc != MOSQ_ERR_SUCCESS)
		luaL_error(L, "out of memory");
}

/* Checks that d may go in x->command and that the nodes from `from` on are valid. */
static void check_allowed(struct prop_ctx *x, const struct propdef *d, const mosquitto_property *from)
{
	if (mosquitto_property_check_command(x->command, d->id) != MOSQ_ERR_SUCCESS)
		prop_error(x->L, x->idx, x->argname, "%s is not valid for %s", d->name, properties_packet_name(x->command));
	if (from && mosquitto_property_check_all(x->command, from) != MOSQ_ERR_SUCCESS)
		prop_error(x->L, x->idx, x->argname, "%s has a value MQTT v5 does not allow", d->name);
}

static mosquitto_property *last_node(mosquitto_property *list)
{
	const mosquitto_property *p = list;
	while (p && mosquitto_property_next(p))
		p = mosquitto_property_next(p);
	return (mosquitto_property *)p;
}

/* The body of properties_check: may raise, leaving the list for the caller (a to-be-closed slot) to free. */
static void build_list(struct prop_ctx *x, int tidx, mosquitto_property **list)
{
	lua_State *L = x->L;
	lua_pushnil(L);
	while (lua_next(L, tidx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING || !def_by_name(lua_tostring(L, -1)))
			prop_error(L, x->idx, x->argname, "unknown property '%s'", luaL_tolstring(L, -1, NULL));
	}
	for (size_t i = 0; i < NDEFS; i++) {
		lua_pushstring(L, defs[i].name);
		if (lua_rawget(L, tidx) != LUA_TNIL) {
			check_allowed(x, &defs[i], NULL);
			mosquitto_property *before = last_node(*list);
			add_value(x, list, &defs[i], -1);
			check_allowed(x, &defs[i], before ? mosquitto_property_next(before) : *list);
		}
		lua_pop(L, 1);
	}
}

/* __close of the box holding a list being built: frees it when an error unwinds. */
static int list_box_close(lua_State *L)
{
	mosquitto_property **box = lua_touserdata(L, 1);
	mosquitto_property_free_all(box);
	return 0;
}

static mosquitto_property **push_list_box(lua_State *L)
{
	mosquitto_property **box = lua_newuserdatauv(L, sizeof *box, 0);
	*box = NULL;
	if (luaL_newmetatable(L, "mqlua.property_list")) {
		lua_pushcfunction(L, list_box_close);
		lua_setfield(L, -2, "__close");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	return box;
}

mosquitto_property *properties_check(lua_State *L, int idx, int command, const char *argname)
{
	if (lua_isnoneornil(L, idx))
		return NULL;
	idx = lua_absindex(L, idx);
	if (!lua_istable(L, idx))
		luaL_argerror(L, idx, lua_pushfstring(L, "%s must be a table of properties, got %s", argname,
		                                      luaL_typename(L, idx)));
	struct prop_ctx x = { L, idx, argname, command };
	int top = lua_gettop(L);
	int values = idx;
	if (luaL_getmetafield(L, idx, "packetType") != LUA_TNIL && luaL_getmetafield(L, idx, "__index") == LUA_TTABLE)
		values = lua_gettop(L);   /* a Properties object */
	mosquitto_property **box = push_list_box(L);
	build_list(&x, values, box);
	mosquitto_property *list = *box;
	*box = NULL;
	lua_settop(L, top);   /* closes the (now empty) box */
	return list;
}

static void push_value(lua_State *L, const mosquitto_property *p, const struct propdef *d)
{
	uint8_t b;
	uint16_t i16;
	uint32_t i32;
	void *bin;
	char *s, *v;
	switch (d->type) {
	case MQTT_PROP_TYPE_BYTE:
		mosquitto_property_read_byte(p, d->id, &b, false);
		lua_pushinteger(L, b);
		break;
	case MQTT_PROP_TYPE_INT16:
		mosquitto_property_read_int16(p, d->id, &i16, false);
		lua_pushinteger(L, i16);
		break;
	case MQTT_PROP_TYPE_INT32:
		mosquitto_property_read_int32(p, d->id, &i32, false);
		lua_pushinteger(L, i32);
		break;
	case MQTT_PROP_TYPE_VARINT:
		mosquitto_property_read_varint(p, d->id, &i32, false);
		lua_pushinteger(L, i32);
		break;
	case MQTT_PROP_TYPE_BINARY:
		bin = NULL;
		i16 = 0;
		mosquitto_property_read_binary(p, d->id, &bin, &i16, false);
		lua_pushlstring(L, bin ? bin : "", i16);
		free(bin);
		break;
	case MQTT_PROP_TYPE_STRING:
		s = NULL;
		mosquitto_property_read_string(p, d->id, &s, false);
		lua_pushstring(L, s ? s : "");
		free(s);
		break;
	case MQTT_PROP_TYPE_STRING_PAIR:
		s = v = NULL;
		mosquitto_property_read_string_pair(p, d->id, &s, &v, false);
		lua_createtable(L, 2, 0);
		lua_pushstring(L, s ? s : "");
		lua_rawseti(L, -2, 1);
		lua_pushstring(L, v ? v : "");
		lua_rawseti(L, -2, 2);
		free(s);
		free(v);
		break;
	}
}

void properties_push(lua_State *L, const mosquitto_property *props)
{
	lua_newtable(L);
	for (const mosquitto_property *p = props; p; p = mosquitto_property_next(p)) {
		const struct propdef *d = def_by_id(mosquitto_property_identifier(p));
		if (!d)
			continue;
		if (d->type == MQTT_PROP_TYPE_STRING_PAIR || d->id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
			/* lists: append */
			if (lua_getfield(L, -1, d->name) == LUA_TNIL) {
				lua_pop(L, 1);
				lua_newtable(L);
				lua_pushvalue(L, -1);
				lua_setfield(L, -3, d->name);
			}
			push_value(L, p, d);
			lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
			lua_pop(L, 1);
		} else {
			push_value(L, p, d);
			lua_setfield(L, -2, d->name);
		}
	}
}

/* ---- flat bytes: per property its identifier byte, then its value as on the wire
 * (big-endian integers, 2-byte length before binary and strings), varints as 4 bytes ---- */

struct buf {
	unsigned char *data;
	size_t len, cap;
	bool failed;
};

static void buf_put(struct buf *b, const void *src, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		while (cap < b->len + n)
			cap *= 2;
		unsigned char *grown = realloc(b->data, cap);
		if (!grown) {
			b->failed = true;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, src, n);
	b->len += n;
}

static void buf_uint(struct buf *b, uint32_t v, int bytes)
{
	unsigned char be[4];
	for (int i = 0; i < bytes; i++)
		be[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	buf_put(b, be, (size_t)bytes);
}

static void buf_bytes(struct buf *b, const void *p, uint16_t len)
{
	buf_uint(b, len, 2);
	buf_put(b, p, len);
}

int properties_encode(const mosquitto_property *props, unsigned char **out, size_t *len)
{
	struct buf b = { 0 };
	for (const mosquitto_property *p = props; p; p = mosquitto_property_next(p)) {
		int id = mosquitto_property_identifier(p);
		const struct propdef *d = def_by_id(id);
		if (!d)
			continue;
		uint8_t b8;
		uint16_t i16 = 0;
		uint32_t i32;
		void *bin = NULL;
		char *s = NULL, *v = NULL;
		buf_uint(&b, (uint32_t)id, 1);
		switch (d->type) {
		case MQTT_PROP_TYPE_BYTE:
			mosquitto_property_read_byte(p, id, &b8, false);
			buf_uint(&b, b8, 1);
			break;
		case MQTT_PROP_TYPE_INT16:
			mosquitto_property_read_int16(p, id, &i16, false);
			buf_uint(&b, i16, 2);
			break;
		case MQTT_PROP_TYPE_INT32:
			mosquitto_property_read_int32(p, id, &i32, false);
			buf_uint(&b, i32, 4);
			break;
		case MQTT_PROP_TYPE_VARINT:
			mosquitto_property_read_varint(p, id, &i32, false);
			buf_uint(&b, i32, 4);
			break;
		case MQTT_PROP_TYPE_BINARY:
			mosquitto_property_read_binary(p, id, &bin, &i16, false);
			buf_bytes(&b, bin, i16);
			break;
		case MQTT_PROP_TYPE_STRING:
			mosquitto_property_read_string(p, id, &s, false);
			buf_bytes(&b, s, s ? (uint16_t)strlen(s) : 0);
			break;
		case MQTT_PROP_TYPE_STRING_PAIR:
			mosquitto_property_read_string_pair(p, id, &s, &v, false);
			buf_bytes(&b, s, s ? (uint16_t)strlen(s) : 0);
			buf_bytes(&b, v, v ? (uint16_t)strlen(v) : 0);
			break;
		}
		free(bin);
		free(s);
		free(v);
	}
	if (b.failed) {
		free(b.data);
		return ENOMEM;
	}
	*out = b.data;
	*len = b.len;
	return 0;
}

struct reader {
	const unsigned char *p, *end;
	bool bad;
};

static uint32_t read_uint(struct reader *r, int bytes)
{
	uint32_t v = 0;
	if (r->end - r->p < bytes) {
		r->bad = true;
		return 0;
	}
	for (int i = 0; i < bytes; i++)
		v = (v << 8) | *r->p++;
	return v;
}

/* A NUL-terminated copy of the next length-prefixed field (NULL when bad;
 * for text, also when it holds a NUL, which no encoded string does). */
static char *read_bytes(struct reader *r, uint16_t *len, bool text)
{
	*len = (uint16_t)read_uint(r, 2);
	if (r->bad || r->end - r->p < *len || (text && memchr(r->p, 0, *len))) {
		r->bad = true;
		return NULL;
	}
	char *s = malloc((size_t)*len + 1);
	if (!s) {
		r->bad = true;
		return NULL;
	}
	memcpy(s, r->p, *len);
	s[*len] = '\0';
	r->p += *len;
	return s;
}

mosquitto_property *properties_decode(const unsigned char *data, size_t len)
{
	bool expired;
	return properties_decode_aged(data, len, 0, &expired);
}

mosquitto_property *properties_decode_aged(const unsigned char *data, size_t len, uint32_t waited, bool *expired)
{
	*expired = false;
	if (len == 0)
		return NULL;   /* also keeps (NULL, 0) away from pointer arithmetic */
	struct reader r = { data, data + len, false };
	uint32_t n;
	mosquitto_property *list = NULL;
	while (!r.bad && r.p < r.end) {
		const struct propdef *d = def_by_id((int)read_uint(&r, 1));
		if (!d) {
			r.bad = true;   /* not a byte properties_encode writes, also as the last one */
			break;
		}
		int rc = MOSQ_ERR_SUCCESS;
		uint16_t n1, n2;
		char *s = NULL, *v = NULL;
		switch (d->type) {
		case MQTT_PROP_TYPE_BYTE: rc = mosquitto_property_add_byte(&list, d->id, (uint8_t)read_uint(&r, 1)); break;
		case MQTT_PROP_TYPE_INT16: rc = mosquitto_property_add_int16(&list, d->id, (uint16_t)read_uint(&r, 2)); break;
		case MQTT_PROP_TYPE_INT32:
			n = read_uint(&r, 4);
			if (d->id == MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) {
				*expired = *expired || waited >= n;
				n = waited >= n ? 0 : n - waited;
			}
			rc = mosquitto_property_add_int32(&list, d->id, n);
			break;
		case MQTT_PROP_TYPE_VARINT: rc = mosquitto_property_add_varint(&list, d->id, read_uint(&r, 4)); break;
		case MQTT_PROP_TYPE_BINARY:
			s = read_bytes(&r, &n1, false);
			if (s)
				rc = mosquitto_property_add_binary(&list, d->id, s, n1);
			break;
		case MQTT_PROP_TYPE_STRING:
			s = read_bytes(&r, &n1, true);
			if (s)
				rc = mosquitto_property_add_string(&list, d->id, s);
			break;
		case MQTT_PROP_TYPE_STRING_PAIR:
			s = read_bytes(&r, &n1, true);
			v = s ? read_bytes(&r, &n2, true) : NULL;
			if (s && v)
				rc = mosquitto_property_add_string_pair(&list, d->id, s, v);
			break;
		}
		free(s);
		free(v);
		if (rc != MOSQ_ERR_SUCCESS)
			r.bad = true;
	}
	if (r.bad || r.p != r.end) {
		mosquitto_property_free_all(&list);
		return NULL;
	}
	return list;
}

/* ---- mqtt.Properties(packetType) and mqtt.PacketTypes ---- */

static int properties_next(lua_State *L)
{
	lua_settop(L, 2);
	return lua_next(L, 1) ? 2 : (lua_pushnil(L), 1);
}

static int packet_command(lua_State *L, int idx)
{
	int isint;
	lua_Integer t = lua_tointegerx(L, idx, &isint);
	if (isint && t == PACKET_WILLMESSAGE)
		return CMD_WILL;
	if (!isint || t < 1 || t > 15)
		luaL_argerror(L, idx, "packetType must be one of mqtt.PacketTypes");
	return (int)(t << 4);
}

/* A Properties object is an empty proxy: its metatable holds packetType and,
 * as __index, the table of values, so that every assignment is checked. */

/* __newindex of a Properties object: only names valid for its packet type, with valid values. */
static int l_properties_newindex(lua_State *L)
{
	lua_getmetatable(L, 1);
	lua_getfield(L, -1, "packetType");
	struct prop_ctx x = { L, 0, "Properties", packet_command(L, -1) };
	lua_pop(L, 2);
	const struct propdef *d = lua_type(L, 2) == LUA_TSTRING ? def_by_name(lua_tostring(L, 2)) : NULL;
	if (!d)
		return prop_error(L, 0, x.argname, "unknown property '%s'", luaL_tolstring(L, 2, NULL));
	if (!lua_isnil(L, 3)) {
		check_allowed(&x, d, NULL);
		mosquitto_property **box = push_list_box(L);
		add_value(&x, box, d, 3);
		check_allowed(&x, d, *box);
		lua_settop(L, 3);
	}
	luaL_getmetafield(L, 1, "__index");
	lua_insert(L, 2);
	lua_rawset(L, 2);
	return 0;
}

static int l_properties_pairs(lua_State *L)
{
	lua_pushcfunction(L, properties_next);
	luaL_getmetafield(L, 1, "__index");
	lua_pushnil(L);
	return 3;
}

static int l_properties_tostring(lua_State *L)
{
	lua_getmetatable(L, 1);
	lua_getfield(L, -1, "packetType");
	lua_pushfstring(L, "Properties(%s)", properties_packet_name(packet_command(L, -1)));
	return 1;
}

/* mqtt.Properties(packetType) -> an empty object that only takes properties valid for packetType */
static int l_properties_new(lua_State *L)
{
	packet_command(L, 1);
	lua_newtable(L);
	lua_createtable(L, 0, 6);
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "packetType");
	lua_newtable(L);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_properties_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushcfunction(L, l_properties_pairs);
	lua_setfield(L, -2, "__pairs");
	lua_pushcfunction(L, l_properties_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushliteral(L, "Properties");
	lua_setfield(L, -2, "__name");
	lua_setmetatable(L, -2);
	return 1;
}

void properties_open(lua_State *L)
{
	lua_createtable(L, 0, 16);
	for (int t = 1; t <= 15; t++) {
		lua_pushinteger(L, t);
		lua_setfield(L, -2, packet_names[t]);
	}
	lua_pushinteger(L, PACKET_WILLMESSAGE);
	lua_setfield(L, -2, "WILLMESSAGE");
	lua_setfield(L, -2, "PacketTypes");
	lua_pushcfunction(L, l_properties_new);
	lua_setfield(L, -2, "Properties");
	lua_pushinteger(L, MQLUA_CLEAN_START_FIRST_ONLY);
	lua_setfield(L, -2, "MQTT_CLEAN_START_FIRST_ONLY");
}
