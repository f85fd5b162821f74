/*
 * retained.h - the retained-message cache: the last retained message of
 * every topic a client received or published, by (client_id, topic), so a
 * script knows the last state of things while the broker is away. An empty
 * payload deletes the entry, as MQTT does on the broker.
 */
#ifndef MQLUA_RETAINED_H
#define MQLUA_RETAINED_H

#include "store/store.h"

struct retained_msg {
	const char *topic;
	const void *payload;
	int payloadlen;
	int qos;
	double updated;       /* store_now() when it was stored */
};

/* Upserts (or, for an empty payload, deletes) inside the open transaction. */
int retained_put(struct store *s, const char *client, const char *topic,
                 const void *payload, size_t len, int qos);
/* Calls fn for every cached topic of client that matches filter (MQTT
 * wildcards), in topic order. match(filter, topic) decides; NULL matches all.
 * Returns the count or -1. */
typedef bool (*retained_fn)(const struct retained_msg *m, void *ud);
typedef bool (*retained_match)(const char *filter, const char *topic);
int retained_each(struct store *s, const char *client, const char *filter,
                  retained_match match, retained_fn fn, void *ud);

#endif
