/*
 * client_auth.c - what a Client says about itself before connecting: its
 * will, its credentials, and TLS (verification on by default, TLS 1.2 at
 * least; turning a check off is logged). Passwords are handed to
 * libmosquitto and wiped from mqlua's own memory when replaced.
 *
 * libmosquitto fixes the CONNECT's clean flag when its handle is made, and
 * sends connect properties only with the CONNECT of mosquitto_connect*_v5.
 * For MQTT v5's clean_start (true, false, or clean only the first time) the
 * handle is remade when the flag must change, so every setting above is also
 * kept here (the password too, wiped when replaced or closed) to be told to
 * the new handle; connect properties are sent with every connection attempt.
 */
#include "bindings/client.h"
#include "bindings/properties.h"
#include "runtime/log.h"

#include <mqtt_protocol.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void will_forget(struct client *c)
{
	struct client_will *w = &c->will;
	free(w->topic);
	free(w->payload);
	mosquitto_property_free_all(&w->props);
	memset(w, 0, sizeof *w);
}

/* Tells the handle the kept will (a copy of its properties: libmosquitto takes them). */
static int will_apply(struct client *c)
{
	struct client_will *w = &c->will;
	mosquitto_property *props = NULL;
	if (w->props && mosquitto_property_copy_all(&props, w->props) != MOSQ_ERR_SUCCESS)
		return MOSQ_ERR_NOMEM;
	int rc = mosquitto_will_set_v5(c->mosq, w->topic, w->payloadlen, w->payload, w->qos, w->retain, props);
	if (rc != MOSQ_ERR_SUCCESS)
		mosquitto_property_free_all(&props);
	return rc;
}

/* client:will_set(topic, payload=nil, qos=0, retain=false, properties=nil) */
int client_will_set(lua_State *L)
{
	struct message_args a;
	struct client *c = client_check_message_args(L, &a);
	mosquitto_property *props = client_check_properties(L, c, 6, CMD_WILL, "properties");
	will_forget(c);
	struct client_will *w = &c->will;
	w->topic = strdup(a.topic);
	w->payload = malloc(a.payloadlen ? a.payloadlen : 1);
	w->payloadlen = (int)a.payloadlen;
	w->qos = a.qos;
	w->retain = a.retain;
	w->props = props;
	if (!w->topic || !w->payload) {
		will_forget(c);
		return luaL_error(L, "out of memory");
	}
	if (a.payloadlen)
		memcpy(w->payload, a.payload, a.payloadlen);
	int rc = will_apply(c);
	if (rc != MOSQ_ERR_SUCCESS) {
		will_forget(c);
		mosquitto_will_clear(c->mosq);
		return luaL_error(L, "will_set: %s", mosquitto_strerror(rc));
	}
	return 0;
}

int client_will_clear(lua_State *L)
{
	struct client *c = client_check(L, 1);
	will_forget(c);
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
	client_wipe_string(&c->password);
	c->password = pass ? strdup(pass) : NULL;
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

static void tls_forget(struct client *c)
{
	struct client_tls *t = &c->tls_args;
	free(t->ca_certs);
	free(t->certfile);
	free(t->keyfile);
	free(t->version);
	free(t->ciphers);
	memset(t, 0, sizeof *t);
}

/* Tells the handle the kept TLS settings (no CA file: the system's certificates;
 * no version: TLS 1.2 at least). */
static int tls_apply(struct client *c)
{
	const struct client_tls *t = &c->tls_args;
	int rc;
	if (t->ca_certs) {
		rc = mosquitto_tls_set(c->mosq, t->ca_certs, NULL, t->certfile, t->keyfile, tls_password_cb);
	} else {
		mosquitto_int_option(c->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
		rc = mosquitto_tls_set(c->mosq, NULL, "/etc/ssl/certs", t->certfile, t->keyfile, tls_password_cb);
	}
	/* libmosquitto leaves TLS 1.0/1.1 to OpenSSL's configuration without a
	 * version: "tlsv1.2" makes 1.2 the minimum (1.3 stays allowed) */
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_opts_set(c->mosq, t->cert_reqs == 0 ? 0 : 1, t->version ? t->version : "tlsv1.2",
		                            t->ciphers);
	if (rc == MOSQ_ERR_SUCCESS && t->insecure)
		rc = mosquitto_tls_insecure_set(c->mosq, true);
	return rc;
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
	struct client_tls *t = &c->tls_args;
	tls_forget(c);
	client_set_string(&t->ca_certs, ca);
	client_set_string(&t->certfile, cert);
	client_set_string(&t->keyfile, key);
	client_set_string(&t->version, version);
	client_set_string(&t->ciphers, ciphers);
	t->cert_reqs = (int)reqs;
	int rc = tls_apply(c);
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
	if (!client_transport_tls_insecure_set(c, insecure)) {
		mosquitto_tls_insecure_set(c->mosq, insecure);
		c->tls_args.insecure = insecure;
	}
	if (insecure)
		log_warn("client \"%s\": TLS hostname verification is disabled (tls_insecure_set)", c->client_id);
	return 0;
}

void client_use_default_broker(struct client *c, const struct mqlua_default_broker *d)
{
	if (d->username && !c->username) {
		mosquitto_username_pw_set(c->mosq, d->username, d->password);
		client_set_string(&c->username, d->username);
		client_wipe_string(&c->password);
		c->password = d->password ? strdup(d->password) : NULL;
	}
	if (d->tls && !c->tls) {
		tls_forget(c);
		c->tls_args.cert_reqs = 2;
		c->tls = tls_apply(c) == MOSQ_ERR_SUCCESS;
	}
}

void client_auth_free(struct client *c)
{
	will_forget(c);
	tls_forget(c);
	client_wipe_string(&c->password);
	mosquitto_property_free_all(&c->connect_props);
}

/* Remakes the libmosquitto handle with the clean flag `clean` and tells it
 * everything the old one was told. What libmosquitto was still sending is
 * gone with the old handle: the outbox sends its rows again. */
static int remake_handle(struct client *c, bool clean)
{
	int rc = mosquitto_reinitialise(c->mosq, c->client_id, clean, c);
	if (rc != MOSQ_ERR_SUCCESS)
		return rc;
	c->handle_clean = clean;
	mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, c->protocol);
	mosquitto_int_option(c->mosq, MOSQ_OPT_SEND_MAXIMUM, c->max_inflight);
	client_set_callbacks(c);
	client_update_log(c);
	if (c->username)
		rc = mosquitto_username_pw_set(c->mosq, c->username, c->password);
	if (rc == MOSQ_ERR_SUCCESS && c->tls)
		rc = tls_apply(c);
	if (rc == MOSQ_ERR_SUCCESS && c->will.topic)
		rc = will_apply(c);
	c->ninflight = 0;
	c->sent_upto = 0;
	c->backlog = true;
	log_debug("client \"%s\": libmosquitto handle remade with clean start %s", c->client_id,
	          clean ? "on" : "off");
	return rc;
}

int client_start_connect(struct client *c, bool blocking, bool first)
{
	if (!first && !client_pre_connect(c))
		return MOSQ_ERR_NO_CONN;   /* on_pre_connect called disconnect() */
	bool clean = c->clean_session;
	if (c->protocol == MQTT_PROTOCOL_V5)
		clean = c->clean_start == 1 ||
		        (c->clean_start == MQLUA_CLEAN_START_FIRST_ONLY && !c->session_started);
	bool remade = false;
	if (clean != c->handle_clean) {
		int rc = remake_handle(c, clean);
		if (rc != MOSQ_ERR_SUCCESS)
			return rc;
		remade = true;
	}
	int rc = client_transport_prepare(c);   /* the WebSocket relay or a SOCKS5 proxy */
	if (rc != MOSQ_ERR_SUCCESS)
		return rc;
	if (c->connect_props)   /* only the blocking connect of libmosquitto 2.0 sends properties */
		return mosquitto_connect_bind_v5(c->mosq, c->host, c->port, c->keepalive, c->bind_address,
		                                 c->connect_props);
	if (first || remade || c->retarget) {
		/* libmosquitto keeps the address of its last connect: a new one needs connect_bind */
		c->retarget = false;
		return blocking ? mosquitto_connect_bind(c->mosq, c->host, c->port, c->keepalive, c->bind_address)
		                : mosquitto_connect_bind_async(c->mosq, c->host, c->port, c->keepalive, c->bind_address);
	}
	return blocking ? mosquitto_reconnect(c->mosq) : mosquitto_reconnect_async(c->mosq);
}
