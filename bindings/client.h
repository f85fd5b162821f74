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
#include "runtime/loop.h"

/* Slots of the client userdata's user values. */
enum {
	CLIENT_UV_FIELDS = 1,    /* callbacks (on_*) and fields scripts set */
	CLIENT_UV_USERDATA,      /* the paho userdata value */
	CLIENT_UV_FILTERS,       /* array of {filter, fn} from message_callback_add */
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
	double reconnect_min, reconnect_max;
	int reconnect_attempts;
	char last_error[512];       /* words for the last connection failure */

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

/* client_auth.c: will, credentials, TLS */
int client_will_set(lua_State *L);
int client_will_clear(lua_State *L);
int client_username_pw_set(lua_State *L);
int client_tls_set(lua_State *L);
int client_tls_insecure_set(lua_State *L);

/* Checks an optional qos argument (0, 1 or 2), raising an error naming it. */
int client_check_qos(lua_State *L, int idx, int def);

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
                              int qos, bool retain, int *rc);
/* Hands committed messages to libmosquitto while connected, within the window. */
void client_outbox_dispatch(struct client *c);
void client_outbox_committed(struct client *c);
void client_outbox_commit_failed(struct client *c, const char *why);
/* libmosquitto says packet mid was acknowledged (reason < 0x80) or refused:
 * returns the message's id, or 0 if mid is not an outbox message. */
int64_t client_outbox_acked(struct client *c, int mid, int reason);
int client_queue_depth(lua_State *L);
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
/* Writes words for rc (and errno / the last TLS error) to c->last_error. */
const char *client_describe_rc(struct client *c, int rc);
void client_stop_net(struct client *c);
/* Runs one pass of whatever drives c: the shared loop when attached,
 * mosquitto_loop() on c alone otherwise. */
void client_run_once(struct client *c, double timeout);
/* The Lua thread callbacks run on: the one that entered the loop, else the main one. */
lua_State *client_callback_L(struct client *c);

extern struct client *client_all;

#endif
