/*
 * client.h - the Client type, shared by client.c (the Lua methods) and
 * client_net.c (the connection's life on the shared loop and the
 * libmosquitto callbacks that call into Lua).
 */
#ifndef MQLUA_CLIENT_H
#define MQLUA_CLIENT_H

#include <stdbool.h>
#include <mosquitto.h>
#include "bindings/mqlua.h"
#include "bindings/stats.h"
#include "runtime/loop.h"

/* Slots of the client userdata's user values. */
enum {
	CLIENT_UV_FIELDS = 1,    /* callbacks (on_*) and fields scripts set */
	CLIENT_UV_USERDATA,      /* the paho userdata value */
	CLIENT_UV_FILTERS,       /* message_callback_add's set (filter_trie.h), nil before the first */
	CLIENT_UV_SUBS,          /* filter -> qos the script subscribed to */
	CLIENT_UV_INFOS,         /* mid -> MQTTMessageInfo waiting for its ack (weak) */
	CLIENT_UV_TOUCHED,       /* filters subscribed during the running on_connect */
	CLIENT_UV_SUBGROUPS,     /* packet mid -> group, for a subscribe split by qos */
	CLIENT_NUV = CLIENT_UV_SUBGROUPS
};

struct client {
	struct mosquitto *mosq;     /* NULL once closed */
	lua_State *L;               /* the main thread */
	char *client_id;
	bool clean_session;
	int protocol;               /* MQTT_PROTOCOL_V31 / V311 / V5 */
	int callback_api;           /* mqtt.CallbackAPIVersion: 1 (paho 1.x forms) or 2 */
	char *transport;
	struct client_transport *transport_state;   /* client_transport.c */

	char *host;                 /* set by connect() */
	int port;
	int keepalive;
	char *bind_address;
	char *username;             /* for tostring/introspection; the password stays in libmosquitto */
	char *tls_keyfile_password;
	bool tls;

	struct loop_io io;
	struct loop_timer misc_timer;      /* mosquitto_loop_misc about once a second */
	struct loop_timer reconnect_timer; /* backoff before mosquitto_reconnect_async */
	struct loop_hook prepare;          /* refreshes the socket and POLLOUT before poll */

	bool attached;              /* driven by the shared loop */
	int anchor;                 /* registry ref keeping the userdata alive while attached */
	bool connect_requested;     /* connect() was called and disconnect() was not */
	bool connected;             /* CONNACK accepted, not disconnected since */
	bool in_on_connect;         /* resubscription bookkeeping */
	bool connack_seen;          /* this connection attempt got a CONNACK */
	bool publishing;            /* inside mosquitto_publish: on_publish may come early */
	int early_published_mid;
	bool has_on_log;            /* the script set on_log */
	bool has_logger;            /* enable_logger() or client.logger is set */
	bool retarget;              /* host/port/keepalive set as attributes: connect anew */
	bool manual_ack;            /* manual_ack_set(true): recorded, see client_attrs.c */
	bool reused;                /* run mode: taken over by a loading script version; connect() is a no-op */
	double message_retry;       /* message_retry_set(): accepted, no effect */
	double connect_timeout;     /* seconds from socket to CONNACK (paho's default 5) */
	struct loop_timer connect_timer;
	bool connect_timed_out;     /* the attempt was ended by connect_timer */
	double reconnect_min, reconnect_max;
	int reconnect_attempts;
	char last_error[512];       /* words for the last connection failure */
	int handler_budget;         /* instructions per handler slice; -1: mqlua_handler_budget, 0: none */

	/* the outbox (client_outbox.c) */
	struct store *store;        /* where its queue lives (a memory store for store = false) */
	bool random_id;             /* generated id: its queue lives in memory */
	bool queue_qos0;            /* QoS 0 while disconnected is queued too */
	bool drop_oldest;           /* queue_policy "drop_oldest" instead of MQTT_ERR_QUEUE_SIZE */
	int64_t max_queued;         /* 0: unlimited */
	int64_t queued;             /* rows of this client in the outbox, -1 until counted */
	int64_t sent_upto;          /* highest id handed to libmosquitto */
	int64_t txn_first;          /* first id appended in the open transaction, 0 if none */
	bool store_failed;          /* the last commit failed (a full disk): commit every publish */
	bool backlog;               /* rows may wait beyond sent_upto */
	int max_inflight;           /* our send window (max_inflight_messages_set) */
	int broker_receive_max;     /* the broker's Receive Maximum (v5 CONNACK), 0: none given */
	int ninflight;
	struct inflight { int mid; int64_t id; } *inflight;

	/* MQTT v5 sessions (client_auth.c) */
	int clean_start;            /* connect()'s clean_start: 0, 1 or MQLUA_CLEAN_START_FIRST_ONLY */
	bool handle_clean;          /* the clean flag the libmosquitto handle was made with */
	bool session_started;       /* a CONNACK accepted this Client: FIRST_ONLY no longer cleans */
	mosquitto_property *connect_props;  /* connect()'s properties, sent with every CONNECT */
	/* what the libmosquitto handle was told, so that it can be remade with another clean flag */
	char *password;
	struct client_will { char *topic; void *payload; int payloadlen, qos; bool retain;
	                     mosquitto_property *props; } will;
	struct client_tls { char *ca_certs, *certfile, *keyfile, *version, *ciphers; int cert_reqs;
	                    bool insecure; } tls_args;

	struct client_stats *stats; /* mqlua.stats()'s counters (stats.h); NULL once closed */
	struct client *next;        /* every live client, for a clean shutdown */
};

/* client.c */
struct client *client_check(lua_State *L, int idx);
/* Replaces the malloc'ed string *dst by a copy of src (NULL allowed). */
void client_set_string(char **dst, const char *src);
/* Overwrites a secret with zeros, frees it, and sets *s to NULL. */
void client_wipe_string(char **s);
/* Pushes the Lua object of c, or nil once it has been collected. */
void client_push(lua_State *L, struct client *c);
/* The message under key (outbox id, or -packet id for direct QoS 0) is done:
 * published when reason < 0x80, else refused with that v5 reason. */
void client_publish_done(lua_State *L, struct client *c, int64_t key, int reason);
/* client_publish_done() and the script's on_publish(client, userdata, mid). */
void client_notify_published(lua_State *L, struct client *c, int64_t key, int reason);
/* Marks every waiting info with key >= from_key as failed with rc. */
void client_fail_infos(lua_State *L, struct client *c, int64_t from_key, int rc);

/* The (topic, payload, qos, retain) arguments of publish() and will_set(),
 * checked with errors that name the argument (client at index 1). */
struct message_args {
	const char *topic;
	const char *payload;
	size_t payloadlen;
	int qos;
	bool retain;
};
struct client *client_check_message_args(lua_State *L, struct message_args *a);
/* The MQTT v5 properties at idx for command (CMD_PUBLISH, CMD_WILL...), NULL when nil;
 * raises naming argname, also when the client does not speak MQTT v5. Free with
 * mosquitto_property_free_all(). */
mosquitto_property *client_check_properties(lua_State *L, struct client *c, int idx, int command,
                                            const char *argname);

/* client_pub.c: client:publish(topic, payload=nil, qos=0, retain=false, properties=nil) */
int client_publish(lua_State *L);

/* client_auth.c: will, credentials, TLS */
int client_will_set(lua_State *L);
int client_will_clear(lua_State *L);
int client_username_pw_set(lua_State *L);
int client_tls_set(lua_State *L);
int client_tls_insecure_set(lua_State *L);
/* Records and applies the default broker's credentials / TLS (connect() without a host). */
void client_use_default_broker(struct client *c, const struct mqlua_default_broker *d);
/* Starts a connection attempt (blocking: connect(), else the loop's reconnects and
 * connect_async()) with the clean flag and properties connect() asked for, remaking
 * the libmosquitto handle when the clean flag must change, and giving libmosquitto
 * the address again when the host/port/keepalive attributes changed. A reconnect
 * (first false) calls on_pre_connect first: MOSQ_ERR_NO_CONN when it called
 * disconnect(). Returns a MOSQ_ERR_* code. */
int client_start_connect(struct client *c, bool blocking, bool first);
/* Frees what client_auth.c keeps (will, credentials, TLS, connect properties). */
void client_auth_free(struct client *c);

/* Checks an optional qos argument (0, 1 or 2), raising an error naming it. */
int client_check_qos(lua_State *L, int idx, int def);

/* Methods living in their own files, added to the Client's method table. */
extern const luaL_Reg client_srv_methods[];      /* client_srv.c: connect_srv */
extern const luaL_Reg client_hostloop_methods[]; /* client_hostloop.c: socket, want_write, loop_read... */
extern const luaL_Reg client_attrs_methods[];    /* client_attrs.c: enable_logger, manual_ack_set... */

/* client_attrs.c: paho 2.x's attributes (client.connect_timeout, client.logger...).
 * attr_get pushes the value of attribute k and returns 1, or returns 0 when k is
 * not one; attr_set assigns the value at index 3 (raising on a bad value or a
 * read-only attribute) and returns 1, or returns 0 when k is not one. */
int client_attr_get(lua_State *L, struct client *c, const char *k);
int client_attr_set(lua_State *L, struct client *c, const char *k);
/* connect_timeout: sets up c's timer; arms it (when not yet armed) or stops it.
 * Armed while an attempt waits for its CONNACK on the shared loop; on expiry
 * the socket is shut down and the attempt fails with connect_timed_out set. */
void client_connect_timer_init(struct client *c);
void client_arm_connect_timer(struct client *c, bool on);
/* Calls the script's on_pre_connect(client, userdata), if set, before an attempt
 * to connect. Returns false when it called disconnect() (no attempt then). */
bool client_pre_connect(struct client *c);
/* Hands a libmosquitto log line to the logger of enable_logger(), if any. */
void client_logger_emit(struct client *c, int level, const char *text);

/* client_sub.c: the subscription methods */
int client_subscribe(lua_State *L);
int client_unsubscribe(lua_State *L);
int client_message_callback_add(lua_State *L);
int client_message_callback_remove(lua_State *L);

/* info.c: MQTTMessageInfo */
void info_open(lua_State *L);
int info_push(lua_State *L, int client_idx, int rc, int64_t mid, int qos, bool published);

/* client_outbox.c: the store in front of QoS>0 publishing */
/* Reads Client{store=, durability=, queue_policy=, queue_qos0=} (a table at idx, or none) and
 * opens the client's store. Raises on bad options or a store that cannot be opened. */
void client_outbox_open(lua_State *L, struct client *c, int opts_idx);
void client_outbox_close(struct client *c);
/* Queues a message; returns its id (> 0), or 0 with *rc set (RC_QUEUE_SIZE, RC_ERRNO...). */
int64_t client_outbox_publish(struct client *c, const char *topic, const void *payload, size_t len,
                              int qos, bool retain, const mosquitto_property *props, int *rc);
/* Hands committed messages to libmosquitto while connected, within the window. */
void client_outbox_dispatch(struct client *c);
void client_outbox_committed(struct client *c);
void client_outbox_commit_failed(struct client *c, const char *why);
/* libmosquitto says packet mid was acknowledged (reason < 0x80) or refused:
 * returns the message's id, or 0 if mid is not an outbox message. */
int64_t client_outbox_acked(struct client *c, int mid, int reason);
/* The client's store; raises when a failed reinitialise() left it without one. */
struct store *client_need_store(lua_State *L, struct client *c);
int client_queue_depth(lua_State *L);
/* The number of messages of c in the outbox. */
int64_t client_outbox_depth(struct client *c);
int client_queue_oldest_age(lua_State *L);
int client_dead_letters(lua_State *L);
int client_max_queued_messages_set(lua_State *L);

/* client_transport.c: websockets, unix sockets, SOCKS5 proxies */
/* Checks the transport argument at idx and sets c up for it; raises on a bad one. */
void client_transport_init(lua_State *L, struct client *c, int idx);
void client_transport_close(struct client *c);
bool client_transport_is_unix(struct client *c);
/* True when the client only works on the shared loop (the WebSocket relay runs there). */
bool client_transport_needs_loop(struct client *c);
/* Just before a connection attempt: points libmosquitto at the relay or proxy. */
int client_transport_prepare(struct client *c);
/* tls_set / tls_insecure_set for a websockets client (the relay does TLS, not
 * libmosquitto): false when c is not one. */
bool client_transport_tls_set(lua_State *L, struct client *c, const char *ca, const char *cert, const char *key, int cert_reqs,
                              const char *version, const char *ciphers);
bool client_transport_tls_insecure_set(struct client *c, bool insecure);
/* Writes words for rc to c->last_error when the transport knows better
 * (the relay's or the proxy's failure); false otherwise. */
bool client_transport_describe(struct client *c, int rc, int err);
/* Adds ws_set_options and proxy_set to the method table on top. */
void client_transport_open(lua_State *L);

/* client_net.c */
void client_net_init(struct client *c);
/* Attach to / detach from the shared loop. */
void client_attach(struct client *c);
void client_detach(struct client *c);
/* Watch the current socket of libmosquitto with the right events. */
void client_sync_io(struct client *c);
void client_set_callbacks(struct client *c);
/* Installs libmosquitto's log callback only while something reads it. */
void client_update_log(struct client *c);
/* Records a failed connect and, when attached, schedules a reconnect. */
void client_connect_failed(struct client *c, int rc);
/* Checks a handler_budget value at idx (nil: -1, else an integer >= 0). */
int client_check_budget(lua_State *L, int idx);
/* Writes words for rc (and errno / the last TLS error) to c->last_error. */
const char *client_describe_rc(struct client *c, int rc);
void client_stop_net(struct client *c);
/* Runs one pass of whatever drives c: the shared loop when attached,
 * mosquitto_loop() on c alone otherwise. */
void client_run_once(struct client *c, double timeout);
/* mqlua_pcall(L, nargs, 0, what) for a callback of c, with c's instruction
 * budget: its errors and run time count for c, and its error log line names
 * detail (a filter, a topic; may be NULL). */
static inline int client_pcall(struct client *c, lua_State *L, int nargs, const char *what, const char *detail)
{
	stats_client = c->stats;
	task_detail = detail;
	return mqlua_pcall_budget(L, nargs, what, c->handler_budget);   /* which consumes both */
}
/* The Lua thread callbacks run on: the one that entered the loop, else the main one. */
lua_State *client_callback_L(struct client *c);

/* client_wait.c: client:wait_message */
int client_wait_message(lua_State *L);
/* Hands the message at index msg, on topic, to the wait_message calls of
 * the client at index ud whose filter matches. */
void client_wait_deliver(lua_State *L, int ud, int msg, const char *topic);

extern struct client *client_all;

#endif
