/*
 * outbox.h - the queue of outgoing QoS>0 messages, per client_id, in the
 * store. A message's id is its row id: mqlua's 64-bit message id, stable
 * across reconnects and restarts, increasing in publish order.
 */
#ifndef MQLUA_OUTBOX_H
#define MQLUA_OUTBOX_H

#include "store/store.h"

struct outbox_msg {
	int64_t id;
	const char *topic;
	const void *payload;
	int payloadlen;
	int qos;
	bool retain;
	double created;
	const void *props;      /* MQTT v5 properties, opaque bytes (NULL, 0: none) */
	int propslen;
};

/* Appends a message, with its properties' bytes (NULL/0: none), inside the
 * open transaction (opening one). Returns its id, or -1 (store_error() says
 * why: a full disk, say). */
int64_t outbox_append(struct store *s, const char *client, const char *topic,
                      const void *payload, size_t len, int qos, bool retain,
                      const void *props, size_t propslen);
/* The broker acknowledged id: the row goes. 0 or -1. */
int outbox_ack(struct store *s, int64_t id);
/* The broker refused id (v5 reason >= 0x80): the row moves to dead letters. */
int outbox_dead(struct store *s, int64_t id, int reason, const char *reason_text);
/* Calls fn for at most max messages of client with id > after, in id order.
 * The message's pointers are valid during the call only. Returns the number
 * of messages passed, or -1. fn returns false to stop early. */
typedef bool (*outbox_fn)(const struct outbox_msg *m, void *ud);
int outbox_fetch(struct store *s, const char *client, int64_t after, int max, outbox_fn fn, void *ud);
/* Number of queued messages of client, or -1; with qos >= 0 only those of that qos. */
int64_t outbox_count(struct store *s, const char *client);
int64_t outbox_count_qos(struct store *s, const char *client, int qos);
/* Creation time (store_now()) of the oldest queued message, or 0 if none. */
double outbox_oldest(struct store *s, const char *client);
/* Drops the oldest queued message of client (for queue_policy "drop_oldest"). */
int outbox_drop_oldest(struct store *s, const char *client);
/* Dead letters of client, newest last, at most max. */
typedef bool (*dead_fn)(const struct outbox_msg *m, int reason, const char *text, double failed, void *ud);
int outbox_dead_letters(struct store *s, const char *client, int max, dead_fn fn, void *ud);

#endif
