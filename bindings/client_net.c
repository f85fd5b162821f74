/*
 * client_net.c - a client's connection on the shared loop: watching
 * libmosquitto's socket (re-read after every call, since libmosquitto
 * replaces it on its own), POLLOUT only while it has something to write,
 * loop_misc once a second, reconnecting with exponential backoff and jitter,
 * resubscribing when the broker kept no session, and the libmosquitto
 * callbacks that call the script's on_* functions through mqlua_pcall, in
 * the form paho gives them for the client's protocol and callback API
 * version (VERSION1: v3 and v5 forms as paho 1.6; VERSION2: paho 2.x's,
 * with reason codes made up from v3 return values as paho does).
 */
#include "bindings/client.h"
#include "bindings/filter_trie.h"
#include "bindings/properties.h"
#include "bindings/rc.h"
#include "runtime/netbuf.h"
#include "bindings/retained.h"
#include "runtime/log.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <mqtt_protocol.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

lua_State *client_callback_L(struct client *c)
{
	return mqlua_running_L ? mqlua_running_L : c->L;
}

/* ---- driving libmosquitto ---- */

void client_sync_io(struct client *c)
{
	struct loop *loop = loop_default();
	if (!c->attached || !c->mosq)
		return;
	int fd = mosquitto_socket(c->mosq);
	if (fd < 0) {
		loop_io_stop(loop, &c->io);
		c->io.fd = -1;
		return;
	}
	if (fd != c->io.fd) {
		loop_io_stop(loop, &c->io);
		c->io.fd = fd;
	}
	netbuf_hold(fd);   /* also when a new socket got the old one's number */
	if (c->connect_requested && !c->connack_seen)
		client_arm_connect_timer(c, true);
	short events = POLLIN | (mosquitto_want_write(c->mosq) ? POLLOUT : 0);
	if (!loop_io_active(&c->io) || c->io.events != events)
		loop_io_start(loop, &c->io, events);
}

static void io_cb(struct loop_io *io, short revents)
{
	struct client *c = io->data;
	int fd = io->fd;
	int rc = MOSQ_ERR_SUCCESS;
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		/* read what has arrived, in chunks (runtime/netbuf.h): 64 packets per
		 * wakeup, and then whatever the last chunk still holds, which poll()
		 * would not report */
		int prev = netbuf_begin(fd);
		bool filling = true;
		for (int i = 0;; i++) {
			if (i >= 64) {
				if (filling)
					netbuf_end(fd, prev);
				filling = false;
				if (netbuf_pending(fd) == 0)
					break;
			}
			errno = 0;
			rc = mosquitto_loop_read(c->mosq, 1);
			if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(c->mosq) != fd)
				break;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
		}
		if (filling)
			netbuf_end(fd, prev);
	}
	/* libmosquitto 2.0.11 closes the socket of a failed TLS handshake without
	 * calling on_disconnect: report the failed attempt (and retry) ourselves */
	if (rc == MOSQ_ERR_TLS && mosquitto_socket(c->mosq) < 0 && c->connect_requested && !c->connack_seen &&
	    !loop_timer_active(&c->reconnect_timer))
		client_connect_failed(c, rc);
	/* room for what was held back (runtime/netbuf.h) */
	if (revents & POLLOUT)
		netbuf_flush(fd);
	/* what the handlers just queued (acks, replies) goes out now, not after another poll */
	if (mosquitto_socket(c->mosq) == fd && ((revents & POLLOUT) || mosquitto_want_write(c->mosq)))
		mosquitto_loop_write(c->mosq, 1);
	client_sync_io(c);
}

static void misc_cb(struct loop_timer *t)
{
	struct client *c = t->data;
	mosquitto_loop_misc(c->mosq);
	client_sync_io(c);
}

static void prepare_cb(struct loop_hook *h)
{
	client_sync_io(h->data);
}

static void schedule_reconnect(struct client *c)
{
	double delay = c->reconnect_min * pow(2.0, c->reconnect_attempts);
	if (delay > c->reconnect_max)
		delay = c->reconnect_max;
	delay *= 0.75 + 0.5 * drand48();   /* jitter, so a fleet does not reconnect in step */
	if (delay < c->reconnect_min)
		delay = c->reconnect_min;
	if (delay > c->reconnect_max)
		delay = c->reconnect_max;
	if (c->reconnect_attempts < 30)
		c->reconnect_attempts++;
	log_info("client \"%s\": reconnecting to %s:%d in %.1f s", c->client_id, c->host, c->port, delay);
	loop_timer_start(loop_default(), &c->reconnect_timer, delay, 0);
}

static void reconnect_cb(struct loop_timer *t)
{
	struct client *c = t->data;
	if (!c->connect_requested || !c->attached)
		return;
	c->connack_seen = false;
	errno = 0;
	int rc = client_start_connect(c, false, false);
	if (rc == MOSQ_ERR_SUCCESS)
		client_sync_io(c);
	else if (c->mosq && c->connect_requested)   /* else on_pre_connect called disconnect() */
		client_connect_failed(c, rc);
}

void client_run_once(struct client *c, double timeout)
{
	if (c->attached) {
		loop_run_once(loop_default(), timeout);
		return;
	}
	int ms = timeout >= INT_MAX / 1000.0 ? INT_MAX : (int)(timeout * 1000);
	int rc = mosquitto_loop(c->mosq, ms, 1);
	if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST)
		c->connected = false;
}

void client_net_init(struct client *c)
{
	loop_io_init(&c->io, -1, io_cb, c);
	loop_timer_init(&c->misc_timer, misc_cb, c);
	c->misc_timer.ref = false;
	loop_timer_init(&c->reconnect_timer, reconnect_cb, c);
	loop_hook_init(&c->prepare, prepare_cb, c);
	client_connect_timer_init(c);
}

/* Runs at the start of the next iteration, when no code of this client is on the stack. */
static void release_anchor(void *data)
{
	struct client *c = data;
	if (c->attached || c->anchor == LUA_NOREF)
		return;
	int ref = c->anchor;
	c->anchor = LUA_NOREF;
	luaL_unref(c->L, LUA_REGISTRYINDEX, ref);   /* c may be collected from here on */
}

void client_attach(struct client *c)
{
	if (c->attached || !c->mosq)
		return;
	struct loop *loop = loop_default();
	c->attached = true;
	if (c->anchor == LUA_NOREF) {
		client_push(c->L, c);
		c->anchor = luaL_ref(c->L, LUA_REGISTRYINDEX);
	}
	loop_hook_start(loop, &c->prepare);
	loop_timer_start(loop, &c->misc_timer, 1.0, 1.0);
	client_sync_io(c);
	if (c->connect_requested && !c->connected && mosquitto_socket(c->mosq) < 0 &&
	    !loop_timer_active(&c->reconnect_timer))
		loop_timer_start(loop, &c->reconnect_timer, 0, 0);
}

void client_stop_net(struct client *c)
{
	struct loop *loop = loop_default();
	loop_io_stop(loop, &c->io);
	loop_timer_stop(loop, &c->misc_timer);
	loop_timer_stop(loop, &c->reconnect_timer);
	loop_hook_stop(loop, &c->prepare);
	client_arm_connect_timer(c, false);
	c->attached = false;
}

void client_detach(struct client *c)
{
	if (!c->attached)
		return;
	client_stop_net(c);
	if (c->anchor != LUA_NOREF && loop_defer(loop_default(), release_anchor, c) != 0)
		release_anchor(c);
}

/* ---- words for failures ---- */

const char *client_describe_rc(struct client *c, int rc)
{
	int err = errno;
	char *b = c->last_error;
	size_t n = sizeof c->last_error;
	if (c->connect_timed_out) {
		c->connect_timed_out = false;
		snprintf(b, n, "no CONNACK within connect_timeout (%g s)", c->connect_timeout);
		return b;
	}
	if (client_transport_describe(c, rc, err))
		return b;
	/* a TLS alert (e.g. the broker wants a client certificate) ends the
	 * connection with EPROTO: keep the words libmosquitto logged for it */
	if ((rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO) && err == EPROTO && c->tls) {
		if (strncmp(b, "TLS error", 9) != 0)
			snprintf(b, n, "TLS error: %s", strerror(err));
		return b;
	}
	switch (rc) {
	case MOSQ_ERR_ERRNO:
		snprintf(b, n, "%s", err ? strerror(err) : "connection failed");
		break;
	case MOSQ_ERR_EAI:
		snprintf(b, n, "cannot resolve host '%s'", c->host ? c->host : "");
		break;
	case MOSQ_ERR_TLS:
	case MOSQ_ERR_TLS_HANDSHAKE:
		/* libmosquitto said which check failed in its log: keep that */
		if (strncmp(b, "TLS error", 9) != 0)
			snprintf(b, n, "TLS error: handshake failed");
		break;
	case MOSQ_ERR_CONN_REFUSED:
		if (strncmp(b, "Connection Refused", 18) != 0)
			snprintf(b, n, "%s", rc_error_string(RC_CONN_REFUSED));
		break;
	case MOSQ_ERR_KEEPALIVE:
		snprintf(b, n, "no answer from the broker within the keepalive interval (%d s)", c->keepalive);
		break;
	case MOSQ_ERR_PROTOCOL:
	case MOSQ_ERR_MALFORMED_PACKET:
		snprintf(b, n, "the broker sent a malformed or unexpected packet (protocol error)");
		break;
	case MOSQ_ERR_CONN_LOST:
		snprintf(b, n, "connection lost%s%s", err && err != EAGAIN ? ": " : "",
		         err && err != EAGAIN ? strerror(err) : "");
		break;
	default:
		snprintf(b, n, "%s", mosquitto_strerror(rc));
	}
	return b;
}

/* ---- calling the script ---- */

/* Pushes the client's Lua object and returns its index, or pushes nothing
 * and returns 0 once it has been collected. */
static int push_client(lua_State *L, struct client *c)
{
	client_push(L, c);
	if (!lua_isnil(L, -1))
		return lua_gettop(L);
	lua_pop(L, 1);
	return 0;
}

/* Pushes fn, client, userdata for callback `name` and returns true; pushes
 * nothing and returns false when the callback is not set. */
static bool push_callback(lua_State *L, struct client *c, const char *name)
{
	client_push(L, c);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return false;
	}
	lua_getiuservalue(L, -1, CLIENT_UV_FIELDS);
	if (lua_getfield(L, -1, name) == LUA_TNIL) {
		lua_pop(L, 3);
		return false;
	}
	lua_replace(L, -2);                          /* ud fn */
	lua_insert(L, -2);                           /* fn ud */
	lua_getiuservalue(L, -1, CLIENT_UV_USERDATA); /* fn ud userdata */
	return true;
}

static void call_simple(struct client *c, const char *name)
{
	lua_State *L = client_callback_L(c);
	if (push_callback(L, c, name))
		client_pcall(c, L, 2, name, NULL);
}

/* paho's packet type numbers (PacketTypes) for the reason codes pushed here */
enum { PT_CONNACK = 2, PT_PUBACK = 4, PT_SUBACK = 9, PT_DISCONNECT = 14 };

static bool v5(const struct client *c)
{
	return c->protocol == MQTT_PROTOCOL_V5;
}

static bool api2(const struct client *c)
{
	return c->callback_api == 2;
}

void client_connect_failed(struct client *c, int rc)
{
	client_arm_connect_timer(c, false);
	client_describe_rc(c, rc);
	bool retry = c->attached && c->connect_requested;
	log_warn("client \"%s\": cannot connect to %s:%d: %s", c->client_id, c->host ? c->host : "?",
	         c->port, c->last_error);
	if (retry) {
		call_simple(c, "on_connect_fail");
		if (c->connect_requested && c->attached)
			schedule_reconnect(c);
	}
}

static void resubscribe(lua_State *L, struct client *c, int ud)
{
	lua_getiuservalue(L, ud, CLIENT_UV_SUBS);
	lua_getiuservalue(L, ud, CLIENT_UV_TOUCHED);
	int subs = lua_gettop(L) - 1, touched = subs + 1, count = 0;
	lua_pushnil(L);
	while (lua_next(L, subs)) {
		lua_pushvalue(L, -2);
		bool again = lua_rawget(L, touched) != LUA_TNIL;
		lua_pop(L, 1);
		/* options byte, or {options byte, properties as bytes} */
		mosquitto_property *props = NULL;
		if (lua_istable(L, -1)) {
			lua_rawgeti(L, -1, 2);
			size_t len;
			const char *bytes = lua_tolstring(L, -1, &len);
			props = properties_decode((const unsigned char *)bytes, len);
			lua_pop(L, 1);
			lua_rawgeti(L, -1, 1);
			lua_replace(L, -2);
		}
		int options = (int)lua_tointeger(L, -1), mid = 0;
		int rc = again ? MOSQ_ERR_INVAL : mosquitto_subscribe_v5(c->mosq, &mid, lua_tostring(L, -2), options & 3, options & ~3, props);
		mosquitto_property_free_all(&props);
		if (rc == MOSQ_ERR_SUCCESS) {
			count++;
			lua_getiuservalue(L, ud, CLIENT_UV_SUBGROUPS);
			lua_pushboolean(L, 1);   /* marks a mid the script never saw */
			lua_rawseti(L, -2, mid);
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
	if (count)
		log_info("client \"%s\": the broker kept no session, subscribed again to %d filter%s",
		         c->client_id, count, count == 1 ? "" : "s");
}

/* Calls the script's on_connect for a CONNACK with rc, flags and props (the
 * client at ud), in the form the client's protocol and callback API ask for. */
static void call_on_connect(lua_State *L, struct client *c, int ud, int rc, int flags, const mosquitto_property *props)
{
	lua_newtable(L);
	lua_setiuservalue(L, ud, CLIENT_UV_TOUCHED);
	if (!push_callback(L, c, "on_connect"))
		return;
	lua_createtable(L, 0, 2);
	lua_pushboolean(L, flags & 1);
	lua_setfield(L, -2, "session_present");
	lua_pushinteger(L, flags & 1);
	lua_setfield(L, -2, "session present");
	int nargs = 4;
	if (!v5(c) && !api2(c)) {
		lua_pushinteger(L, rc);
	} else {
		/* (flags, reason_code, properties); a v3 CONNACK code becomes its v5 reason */
		reasoncode_push(L, PT_CONNACK, v5(c) ? rc : reasoncode_from_connack(rc));
		properties_push(L, props);
		nargs = 5;
	}
	c->in_on_connect = true;
	client_pcall(c, L, nargs, "on_connect", NULL);
	c->in_on_connect = false;
}

static void on_connect_cb(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct client *c = obj;
	lua_State *L = client_callback_L(c);
	(void)mosq;
	c->connack_seen = true;
	client_arm_connect_timer(c, false);
	uint16_t receive_max = 0;
	c->broker_receive_max = mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM, &receive_max, false)
	                        ? receive_max : 0;
	if (rc == 0) {
		c->connected = true;
		c->stats->connections++;
		c->stats->connected_since = (double)time(NULL);
		c->session_started = true;
		c->reconnect_attempts = 0;
		c->last_error[0] = 0;
		client_update_log(c);
		log_debug("client \"%s\": connected to %s:%d", c->client_id, c->host, c->port);
	} else {
		snprintf(c->last_error, sizeof c->last_error, "%s", c->protocol == MQTT_PROTOCOL_V5
		         ? mosquitto_reason_string(rc) : rc_connack_string(rc));
		log_warn("client \"%s\": %s:%d refused the connection: %s", c->client_id, c->host, c->port, c->last_error);
	}
	int top = lua_gettop(L);
	int ud = push_client(L, c);
	if (!ud)
		return;
	call_on_connect(L, c, ud, rc, flags, props);
	if (rc == 0 && c->connected && !(flags & 1))
		resubscribe(L, c, ud);
	lua_settop(L, top);
}

void client_replay_on_connect(struct client *c)
{
	lua_State *L = client_callback_L(c);
	int top = lua_gettop(L);
	int ud = push_client(L, c);
	if (ud && c->connected)
		call_on_connect(L, c, ud, 0, 1, NULL);
	lua_settop(L, top);
}

/* Calls on_disconnect in the client's form: (rc) for v3 and VERSION1; (reason_code,
 * properties) for v5 VERSION1 (rc and nil unless the broker sent a DISCONNECT);
 * (disconnect_flags, reason_code, properties) for VERSION2. reason >= 0 is the
 * reason of the broker's DISCONNECT, -1 a local disconnection with result rc. */
static void call_on_disconnect(lua_State *L, struct client *c, int rc, int reason, const mosquitto_property *props)
{
	if (!push_callback(L, c, "on_disconnect"))
		return;
	bool from_broker = reason >= 0;
	int nargs = 3;
	if (api2(c)) {
		lua_createtable(L, 0, 1);
		lua_pushboolean(L, from_broker);
		lua_setfield(L, -2, "is_disconnect_packet_from_server");
		reasoncode_push(L, PT_DISCONNECT, from_broker ? reason : reasoncode_from_rc(rc));
		properties_push(L, props);
		nargs = 5;
	} else if (v5(c) && from_broker) {
		reasoncode_push(L, PT_DISCONNECT, reason);
		properties_push(L, props);
		nargs = 4;
	} else {
		lua_pushinteger(L, rc);
		if (v5(c)) {
			lua_pushnil(L);
			nargs = 4;
		}
	}
	client_pcall(c, L, nargs, "on_disconnect", NULL);
}

static void on_disconnect_cb(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
	struct client *c = obj;
	lua_State *L = client_callback_L(c);
	(void)mosq;
	bool refused = c->connack_seen && !c->connected;   /* on_connect already said why */
	c->connected = false;
	if (!c->connect_requested || rc == MOSQ_ERR_SUCCESS) {
		log_debug("client \"%s\": disconnected", c->client_id);
		c->connect_requested = false;
		call_on_disconnect(L, c, RC_SUCCESS, -1, NULL);
		client_detach(c);
		return;
	}
	if (!c->connack_seen) {
		/* the attempt failed before the broker answered */
		client_connect_failed(c, rc);
		return;
	}
	/* libmosquitto passes the reason of a broker's v5 DISCONNECT (>= 0x80) as rc */
	int reason = v5(c) && rc >= 0x80 && rc <= 0xff ? rc : -1;
	if (reason >= 0)
		snprintf(c->last_error, sizeof c->last_error, "the broker disconnected the client: %s",
		         reasoncode_name(PT_DISCONNECT, reason));
	else if (!refused)
		client_describe_rc(c, rc);
	log_warn("client \"%s\": disconnected from %s:%d: %s", c->client_id, c->host, c->port, c->last_error);
	call_on_disconnect(L, c, reason >= 0 ? RC_SUCCESS : rc_from_mosq(rc), reason, props);
	if (c->attached && c->connect_requested)
		schedule_reconnect(c);
}

static void notify_published(lua_State *L, struct client *c, int64_t key, int reason, const mosquitto_property *props);

static void on_publish_cb(struct mosquitto *mosq, void *obj, int mid, int reason, const mosquitto_property *props)
{
	struct client *c = obj;
	lua_State *L = client_callback_L(c);
	(void)mosq;
	if (stats_owns_mid(c, mid))
		return;
	if (c->publishing) {
		/* written inside mosquitto_publish(): its caller finishes the job */
		c->early_published_mid = mid;
		return;
	}
	int64_t id = client_outbox_acked(c, mid, reason);
	notify_published(L, c, id ? id : -mid, reason, props);
}

/* client_publish_done() and on_publish: (mid) for VERSION1, (mid, reason_code,
 * properties) for VERSION2 (Success and no properties on v3 and for QoS 0). */
static void notify_published(lua_State *L, struct client *c, int64_t key, int reason, const mosquitto_property *props)
{
	client_publish_done(L, c, key, reason);
	if (push_callback(L, c, "on_publish")) {
		lua_pushinteger(L, key < 0 ? -key : key);
		if (api2(c)) {
			reasoncode_push(L, PT_PUBACK, reason);
			properties_push(L, props);
		}
		client_pcall(c, L, api2(c) ? 5 : 3, "on_publish", NULL);
	}
}

void client_notify_published(lua_State *L, struct client *c, int64_t key, int reason)
{
	notify_published(L, c, key, reason, NULL);
}

static void on_message_cb(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
                          const mosquitto_property *props)
{
	struct client *c = obj;
	lua_State *L = client_callback_L(c);
	(void)mosq; (void)props;
	int top = lua_gettop(L);
	c->stats->received[m->qos & 3]++;
	c->stats->bytes_in += (uint64_t)m->payloadlen;
	if (m->retain)
		retained_cache_message(c, m->topic, m->payload, (size_t)m->payloadlen, m->qos);
	int ud = push_client(L, c);
	if (!ud)
		return;
	lua_getiuservalue(L, ud, CLIENT_UV_USERDATA);
	message_push(L, m->mid, m->topic, m->payload, (size_t)m->payloadlen, m->qos, m->retain, false,
	             props, c->protocol == MQTT_PROTOCOL_V5);
	int userdata = top + 2, msg = top + 3;
	client_wait_deliver(L, ud, msg, m->topic);
	lua_getiuservalue(L, ud, CLIENT_UV_FILTERS);
	/* every matching callback and its filter, in the order added, taken
	 * before any runs: a callback may add or remove filters */
	int n = msgfilters_push_matches(L, top + 4, m->topic, strlen(m->topic));
	for (int i = 0; i < n; i++) {
		int fn = top + 5 + 2 * i;
		lua_pushvalue(L, fn);
		lua_pushvalue(L, ud);
		lua_pushvalue(L, userdata);
		lua_pushvalue(L, msg);
		client_pcall(c, L, 3, "message callback", lua_tostring(L, fn + 1));
	}
	if (n == 0) {
		lua_getiuservalue(L, ud, CLIENT_UV_FIELDS);
		if (lua_getfield(L, -1, "on_message") != LUA_TNIL) {
			lua_pushvalue(L, ud);
			lua_pushvalue(L, userdata);
			lua_pushvalue(L, msg);
			client_pcall(c, L, 3, "on_message", m->topic);
		}
	}
	lua_settop(L, top);
}

static void on_subscribe_cb(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted,
                            const mosquitto_property *props)
{
	struct client *c = obj;
	lua_State *L = client_callback_L(c);
	(void)mosq;
	int top = lua_gettop(L);
	int ud = push_client(L, c);
	if (!ud)
		return;
	/* a subscribe() split by qos reports once, when its last part is acknowledged */
	lua_getiuservalue(L, ud, CLIENT_UV_SUBGROUPS);
	int groups = top + 2;
	int script_mid = mid;
	int kind = lua_rawgeti(L, groups, mid);
	if (kind == LUA_TBOOLEAN) {
		lua_pushnil(L);
		lua_rawseti(L, groups, mid);
		lua_settop(L, top);
		return;
	}
	if (kind == LUA_TTABLE) {
		int part = lua_gettop(L);
		lua_pushnil(L);
		lua_rawseti(L, groups, mid);
		lua_getfield(L, part, "group");
		int group = lua_gettop(L);
		lua_getfield(L, group, "granted");
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			lua_newtable(L);
			lua_pushvalue(L, -1);
			lua_setfield(L, group, "granted");
		}
		for (int i = 0; i < count; i++) {
			lua_pushinteger(L, granted[i]);
			lua_rawgeti(L, part, i + 1);
			lua_pushvalue(L, -2);
			lua_rawset(L, -4);
			lua_pop(L, 1);
		}
		lua_getfield(L, group, "pending");
		lua_Integer pending = lua_tointeger(L, -1) - 1;
		lua_pop(L, 1);
		lua_pushinteger(L, pending);
		lua_setfield(L, group, "pending");
		lua_getfield(L, group, "mid");
		script_mid = (int)lua_tointeger(L, -1);
		if (pending > 0) {
			lua_settop(L, top);
			return;
		}
		lua_pop(L, 1);                 /* granted stays on top */
	} else {
		lua_pop(L, 1);
		lua_createtable(L, count, 0);
		for (int i = 0; i < count; i++) {
			lua_pushinteger(L, granted[i]);
			lua_rawseti(L, -2, i + 1);
		}
	}
	int granted_idx = lua_gettop(L);
	if (push_callback(L, c, "on_subscribe")) {
		lua_pushinteger(L, script_mid);
		lua_pushvalue(L, granted_idx);
		int nargs = 4;
		if (v5(c) || api2(c)) {
			/* (mid, reason_codes, properties): the granted qos (or failure) as SUBACK reasons */
			int n = (int)lua_rawlen(L, -1);
			lua_createtable(L, n, 0);
			for (int i = 1; i <= n; i++) {
				lua_rawgeti(L, granted_idx, i);
				reasoncode_push(L, PT_SUBACK, (int)lua_tointeger(L, -1));
				lua_rawseti(L, -3, i);
				lua_pop(L, 1);
			}
			lua_replace(L, -2);
			properties_push(L, props);
			nargs = 5;
		}
		client_pcall(c, L, nargs, "on_subscribe", NULL);
	}
	lua_settop(L, top);
}

/* on_unsubscribe: (mid) on v3 with VERSION1, (mid, properties, reason_codes) on v5
 * with VERSION1, (mid, reason_code_list, properties) with VERSION2. libmosquitto
 * 2.0.11 does not pass on the UNSUBACK's reason codes, so the list is empty (as
 * paho's for v3) rather than made up. */
static void on_unsubscribe_cb(struct mosquitto *mosq, void *obj, int mid, const mosquitto_property *props)
{
	struct client *c = obj;
	lua_State *L = client_callback_L(c);
	(void)mosq;
	if (!push_callback(L, c, "on_unsubscribe"))
		return;
	lua_pushinteger(L, mid);
	if (api2(c)) {
		lua_newtable(L);
		properties_push(L, props);
	} else if (v5(c)) {
		properties_push(L, props);
		lua_newtable(L);
	}
	client_pcall(c, L, api2(c) || v5(c) ? 5 : 3, "on_unsubscribe", NULL);
}

static void on_log_cb(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	struct client *c = obj;
	(void)mosq;
	if (level == MOSQ_LOG_ERR && (strstr(str, "OpenSSL") || strstr(str, "TLS") || strstr(str, "SSL")))
		snprintf(c->last_error, sizeof c->last_error, "TLS error: %s", str);
	log_debug("client \"%s\": libmosquitto: %s", c->client_id, str);
	lua_State *L = client_callback_L(c);
	if (push_callback(L, c, "on_log")) {
		lua_pushinteger(L, level);
		lua_pushstring(L, str);
		client_pcall(c, L, 4, "on_log", NULL);
	}
	client_logger_emit(c, level, str);
}

void client_update_log(struct client *c)
{
	/* libmosquitto formats every log line it has a callback for, two per
	 * message: keep the callback only while it is read (TLS errors during
	 * a connection attempt, -v, or the script's on_log). */
	bool want = !c->connected || c->has_on_log || c->has_logger || log_threshold >= LOG_LEVEL_DEBUG;
	mosquitto_log_callback_set(c->mosq, want ? on_log_cb : NULL);
}

void client_set_callbacks(struct client *c)
{
	mosquitto_connect_v5_callback_set(c->mosq, on_connect_cb);
	mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect_cb);
	mosquitto_publish_v5_callback_set(c->mosq, on_publish_cb);
	mosquitto_message_v5_callback_set(c->mosq, on_message_cb);
	mosquitto_subscribe_v5_callback_set(c->mosq, on_subscribe_cb);
	mosquitto_unsubscribe_v5_callback_set(c->mosq, on_unsubscribe_cb);
	mosquitto_log_callback_set(c->mosq, on_log_cb);
}
