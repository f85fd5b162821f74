/*
 * client_transport.c - how a client reaches its broker, other than plain
 * TCP: transport = "websockets" (ws:// and, after tls_set, wss://, through
 * the relay of runtime/relay.c, since libmosquitto has no WebSocket client),
 * transport = "unix" (libmosquitto connects to a Unix socket itself when
 * given port 0), and proxy_set() for a SOCKS5 proxy (mosquitto_socks5_set).
 * Also the words for failures that only these transports have.
 */
#include "bindings/client.h"
#include "runtime/log.h"
#include "runtime/relay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* PySocks' numbers, which paho's proxy_set takes. */
enum { PROXY_SOCKS4 = 1, PROXY_SOCKS5 = 2, PROXY_HTTP = 3 };

struct client_transport {
	enum { T_TCP, T_WEBSOCKETS, T_UNIX } kind;
	struct relay *relay;        /* websockets */
	char *proxy_host;           /* proxy_set(): NULL when none */
	int proxy_port;
	char *proxy_username;
	char *proxy_password;       /* wiped when replaced or closed */
};

static struct client_transport *tp(struct client *c) { return c->transport_state; }

void client_transport_init(lua_State *L, struct client *c, int idx)
{
	const char *name = luaL_optstring(L, idx, "tcp");
	int kind = strcmp(name, "tcp") == 0 ? T_TCP : strcmp(name, "websockets") == 0 ? T_WEBSOCKETS
	         : strcmp(name, "unix") == 0 ? T_UNIX : -1;
	if (kind < 0)
		luaL_argerror(L, idx, lua_pushfstring(L, "transport must be \"tcp\", \"websockets\" or \"unix\", got \"%s\"", name));
	client_set_string(&c->transport, name);
	struct client_transport *t = calloc(1, sizeof *t);
	if (!t)
		luaL_error(L, "out of memory");
	t->kind = kind;
	c->transport_state = t;
	if (kind == T_WEBSOCKETS) {
		char err[256];
		if (!(t->relay = relay_new(err, sizeof err)))
			luaL_error(L, "%s", err);
		relay_set_websocket(t->relay, "/mqtt", NULL, 0);
	}
}

void client_transport_close(struct client *c)
{
	struct client_transport *t = tp(c);
	if (!t)
		return;
	relay_free(t->relay);
	free(t->proxy_host);
	free(t->proxy_username);
	client_wipe_string(&t->proxy_password);
	free(t);
	c->transport_state = NULL;
}

bool client_transport_is_unix(struct client *c)
{
	return tp(c) && tp(c)->kind == T_UNIX;
}

bool client_transport_needs_loop(struct client *c)
{
	return tp(c) && tp(c)->relay;
}

int client_transport_prepare(struct client *c)
{
	struct client_transport *t = tp(c);
	if (!t)
		return MOSQ_ERR_SUCCESS;
	if (t->relay) {
		relay_clear_error(t->relay);
		return mosquitto_socks5_set(c->mosq, "127.0.0.1", relay_port(t->relay), relay_user(t->relay),
		                            relay_password(t->relay));
	}
	if (t->proxy_host)
		return mosquitto_socks5_set(c->mosq, t->proxy_host, t->proxy_port, t->proxy_username, t->proxy_password);
	return MOSQ_ERR_SUCCESS;
}

bool client_transport_tls_set(lua_State *L, struct client *c, const char *ca, const char *cert, const char *key, int cert_reqs,
                              const char *version, const char *ciphers)
{
	struct client_transport *t = tp(c);
	if (!t || !t->relay)
		return false;
	struct relay_tls o = { .ca_certs = ca, .certfile = cert, .keyfile = key, .cert_reqs = cert_reqs,
	                       .tls_version = version, .ciphers = ciphers, .keyfile_password = c->tls_keyfile_password };
	if (relay_set_tls(t->relay, &o) != 0)
		luaL_error(L, "tls_set: the certificates, key or ciphers cannot be used");
	return true;
}

bool client_transport_tls_insecure_set(struct client *c, bool insecure)
{
	struct client_transport *t = tp(c);
	if (!t || !t->relay)
		return false;
	relay_set_insecure(t->relay, insecure);
	return true;
}

bool client_transport_describe(struct client *c, int rc, int err)
{
	struct client_transport *t = tp(c);
	char *b = c->last_error;
	size_t n = sizeof c->last_error;
	if (!t)
		return false;
	if (t->relay) {
		const char *why = relay_error(t->relay);
		if (why)
			snprintf(b, n, "%s", why);
		else if (rc == MOSQ_ERR_PROXY)
			snprintf(b, n, "the WebSocket relay could not reach %s:%d", c->host ? c->host : "?", c->port);
		return why || rc == MOSQ_ERR_PROXY;
	}
	if (!t->proxy_host || c->connack_seen)
		return false;
	switch (rc) {
	case MOSQ_ERR_ERRNO:
		snprintf(b, n, "cannot reach the SOCKS5 proxy %s:%d: %s", t->proxy_host, t->proxy_port,
		         err ? strerror(err) : "connection failed");
		return true;
	case MOSQ_ERR_PROXY:
	case MOSQ_ERR_NO_CONN:   /* libmosquitto's answer to "connection refused" from the proxy */
		snprintf(b, n, "the SOCKS5 proxy %s:%d could not connect to %s:%d", t->proxy_host, t->proxy_port,
		         c->host ? c->host : "?", c->port);
		return true;
	case MOSQ_ERR_AUTH:
		snprintf(b, n, "the SOCKS5 proxy %s:%d refused the user name or password", t->proxy_host, t->proxy_port);
		return true;
	case MOSQ_ERR_CONN_LOST:
		snprintf(b, n, "the SOCKS5 proxy %s:%d closed the connection%s%s", t->proxy_host, t->proxy_port,
		         err && err != EAGAIN ? ": " : "", err && err != EAGAIN ? strerror(err) : "");
		return true;
	default:
		return false;
	}
}

/* Copies headers (a table name -> value) at idx into a "Name: value" array.
 * Raises on anything that is not a string pair or would break the request. */
static int collect_headers(lua_State *L, int idx, const char ***out)
{
	int n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		n++;
		lua_pop(L, 1);
	}
	const char **list = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *list, 0);   /* freed by the GC */
	int i = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		luaL_checkstack(L, 4, "too many headers");
		if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
			luaL_argerror(L, idx, "headers must map header names to string values");
		const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
		if (!*k || strpbrk(k, ":\r\n \t") || strpbrk(v, "\r\n"))
			luaL_argerror(L, idx, lua_pushfstring(L, "header '%s' has a name or value that cannot be sent", k));
		list[i++] = lua_pushfstring(L, "%s: %s", k, v);
		lua_insert(L, -3);   /* keep the string alive below the key */
		lua_pop(L, 1);
	}
	*out = list;
	return i;
}

/* client:ws_set_options(path="/mqtt", headers=nil) */
static int l_ws_set_options(lua_State *L)
{
	static const char *const names[] = { "path", "headers", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 3);
	const char *path = luaL_optstring(L, 2, "/mqtt");
	if (*path != '/' || strpbrk(path, " \r\n"))
		luaL_argerror(L, 2, "path must start with '/' and contain no spaces or line breaks");
	const char **headers = NULL;
	int n = 0;
	if (lua_isfunction(L, 3))
		luaL_argerror(L, 3, "headers must be a table (a function is not supported)");
	if (!lua_isnil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		n = collect_headers(L, 3, &headers);
	}
	struct client_transport *t = tp(c);
	if (t->relay && relay_set_websocket(t->relay, path, headers, n) != 0)
		return luaL_error(L, "out of memory");
	return 0;
}

/* client:proxy_set(proxy_type, proxy_addr, proxy_port=1080, proxy_rdns=true,
 *                  proxy_username=nil, proxy_password=nil) */
static int l_proxy_set(lua_State *L)
{
	static const char *const names[] = { "proxy_type", "proxy_addr", "proxy_port", "proxy_rdns",
		"proxy_username", "proxy_password", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 7);
	struct client_transport *t = tp(c);
	if (lua_isnil(L, 2) || lua_isnil(L, 3))
		return luaL_error(L, "proxy_type and proxy_addr are required");
	lua_Integer type = luaL_checkinteger(L, 2);
	if (type == PROXY_SOCKS4 || type == PROXY_HTTP)
		luaL_argerror(L, 2, lua_pushfstring(L, "proxy_type mqtt.%s is not supported: libmosquitto only "
		              "speaks SOCKS5 (use mqtt.SOCKS5)", type == PROXY_HTTP ? "HTTP" : "SOCKS4"));
	luaL_argcheck(L, type == PROXY_SOCKS5, 2, "proxy_type must be mqtt.SOCKS5 (mqtt.SOCKS4 and mqtt.HTTP are not supported)");
	const char *addr = luaL_checkstring(L, 3);
	luaL_argcheck(L, *addr, 3, "proxy_addr must not be empty");
	lua_Integer port = luaL_optinteger(L, 4, 1080);
	luaL_argcheck(L, port > 0 && port <= 65535, 4, "proxy_port must be between 1 and 65535");
	if (!mqlua_optboolean(L, 5, true, "proxy_rdns"))
		luaL_argerror(L, 5, "proxy_rdns = false is not supported: libmosquitto lets the proxy resolve host names");
	const char *user = luaL_optstring(L, 6, NULL);
	const char *password = luaL_optstring(L, 7, NULL);
	if (password && !user)
		luaL_argerror(L, 7, "proxy_password needs a proxy_username");
	if (t->kind != T_TCP)
		return luaL_error(L, "proxy_set: a proxy works with transport \"tcp\" only, not \"%s\"", c->transport);
	int rc = mosquitto_socks5_set(c->mosq, addr, (int)port, user, password);
	if (rc != MOSQ_ERR_SUCCESS)
		return luaL_error(L, "proxy_set: %s", mosquitto_strerror(rc));
	client_set_string(&t->proxy_host, addr);
	client_set_string(&t->proxy_username, user);
	client_wipe_string(&t->proxy_password);
	if (password)
		t->proxy_password = strdup(password);
	t->proxy_port = (int)port;
	log_debug("client \"%s\": through the SOCKS5 proxy %s:%d%s", c->client_id, addr, (int)port,
	          user ? " with a user name and password" : "");
	return 0;
}

void client_transport_open(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "ws_set_options", l_ws_set_options },
		{ "proxy_set", l_proxy_set },
		{ NULL, NULL }
	};
	luaL_setfuncs(L, methods, 0);
}
