/*
 * client_auth.c - what a Client says about itself before connecting: its
 * will, its credentials, and TLS (verification on by default, TLS 1.2 at
 * least; turning a check off is logged). Passwords are handed to
 * libmosquitto and wiped from mqlua's own memory when replaced.
 */
#include "bindings/client.h"
#include "runtime/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* client:will_set(topic, payload=nil, qos=0, retain=false) */
int client_will_set(lua_State *L)
{
	struct message_args a;
	struct client *c = client_check_message_args(L, &a);
	int rc = mosquitto_will_set(c->mosq, a.topic, (int)a.payloadlen, a.payload, a.qos, a.retain);
	if (rc != MOSQ_ERR_SUCCESS)
		return luaL_error(L, "will_set: %s", mosquitto_strerror(rc));
	return 0;
}

int client_will_clear(lua_State *L)
{
	struct client *c = client_check(L, 1);
	mosquitto_will_clear(c->mosq);
	return 0;
}

/* client:username_pw_set(username, password=nil) */
int client_username_pw_set(lua_State *L)
{
	static const char *const names[] = { "username", "password", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	const char *user = luaL_optstring(L, 2, NULL);
	const char *pass = luaL_optstring(L, 3, NULL);
	if (pass && !user)
		luaL_argerror(L, 2, "username is required when a password is given");
	int rc = mosquitto_username_pw_set(c->mosq, user, pass);
	if (rc != MOSQ_ERR_SUCCESS)
		return luaL_error(L, "username_pw_set: %s", mosquitto_strerror(rc));
	client_set_string(&c->username, user);
	return 0;
}

/* OpenSSL's userdata here is the struct mosquitto, not our client. */
static int tls_password_cb(char *buf, int size, int rwflag, void *userdata)
{
	struct client *c = userdata ? mosquitto_userdata(userdata) : NULL;
	(void)rwflag;
	if (!c || !c->tls_keyfile_password)
		return 0;
	int n = (int)strlen(c->tls_keyfile_password);
	if (n >= size)
		n = size - 1;
	memcpy(buf, c->tls_keyfile_password, n);
	buf[n] = 0;
	return n;
}

static const char *check_file_arg(lua_State *L, int idx, const char *name)
{
	const char *path = luaL_optstring(L, idx, NULL);
	if (path && access(path, R_OK) != 0)
		luaL_argerror(L, idx, lua_pushfstring(L, "%s '%s' cannot be read: %s", name, path, strerror(errno)));
	return path;
}

/* client:tls_set(ca_certs, certfile, keyfile, cert_reqs=CERT_REQUIRED, tls_version, ciphers, keyfile_password) */
int client_tls_set(lua_State *L)
{
	static const char *const names[] = { "ca_certs", "certfile", "keyfile", "cert_reqs", "tls_version",
		"ciphers", "keyfile_password", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 8);
	if (c->tls)
		return luaL_error(L, "SSL/TLS has already been configured.");
	const char *ca = check_file_arg(L, 2, "ca_certs");
	const char *cert = check_file_arg(L, 3, "certfile");
	const char *key = check_file_arg(L, 4, "keyfile");
	lua_Integer reqs = luaL_optinteger(L, 5, 2);
	luaL_argcheck(L, reqs >= 0 && reqs <= 2, 5, "cert_reqs must be mqtt.CERT_NONE, CERT_OPTIONAL or CERT_REQUIRED");
	const char *version = luaL_optstring(L, 6, NULL);
	if (version && strcmp(version, "tlsv1.2") != 0 && strcmp(version, "tlsv1.3") != 0)
		luaL_argerror(L, 6, "tls_version must be \"tlsv1.2\" or \"tlsv1.3\" (older versions are refused)");
	const char *ciphers = luaL_optstring(L, 7, NULL);
	const char *password = luaL_optstring(L, 8, NULL);
	if ((cert != NULL) != (key != NULL))
		luaL_argerror(L, cert ? 4 : 3, "certfile and keyfile must be given together");

	client_wipe_string(&c->tls_keyfile_password);
	if (password)
		c->tls_keyfile_password = strdup(password);
	if (reqs == 0)
		log_warn("client \"%s\": TLS certificate verification is disabled (cert_reqs = CERT_NONE)", c->client_id);
	if (client_transport_tls_set(L, c, ca, cert, key, (int)reqs, version, ciphers)) {
		c->tls = true;   /* the WebSocket relay does TLS: libmosquitto must not */
		return 0;
	}
	int rc;
	if (ca) {
		rc = mosquitto_tls_set(c->mosq, ca, NULL, cert, key, tls_password_cb);
	} else {
		mosquitto_int_option(c->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
		rc = mosquitto_tls_set(c->mosq, NULL, "/etc/ssl/certs", cert, key, tls_password_cb);
	}
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_opts_set(c->mosq, reqs == 0 ? 0 : 1, version, ciphers);
	if (rc != MOSQ_ERR_SUCCESS)
		return luaL_error(L, "tls_set: %s", mosquitto_strerror(rc));
	c->tls = true;
	return 0;
}

/* client:tls_insecure_set(value): true skips the hostname check */
int client_tls_insecure_set(lua_State *L)
{
	struct client *c = client_check(L, 1);
	luaL_checktype(L, 2, LUA_TBOOLEAN);
	bool insecure = lua_toboolean(L, 2);
	if (!c->tls)
		return luaL_error(L, "Must configure SSL context before using tls_insecure_set.");
	if (!client_transport_tls_insecure_set(c, insecure))
		mosquitto_tls_insecure_set(c->mosq, insecure);
	if (insecure)
		log_warn("client \"%s\": TLS hostname verification is disabled (tls_insecure_set)", c->client_id);
	return 0;
}
