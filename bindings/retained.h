/*
 * retained.h - the Lua face of the retained-message cache (store/retained.c):
 * client:retained(filter), and the hook the client calls for every retained
 * message it receives or publishes.
 */
#ifndef MQLUA_BINDINGS_RETAINED_H
#define MQLUA_BINDINGS_RETAINED_H

#include <stddef.h>
#include <lua.h>

struct client;

/* client:retained(filter = "#") -> array of {topic=, payload=, qos=, time=}
 * (time: wall-clock seconds when cached), sorted by topic; works offline.
 * Raises on a malformed filter or when the store cannot be read. A client
 * without a store has nothing cached: {}. */
int client_retained(lua_State *L);

/* Caches (or, for an empty payload, forgets) the retained message of topic
 * for client c, in the loop iteration's transaction. Does nothing when c has
 * no store; a failure is logged, never raised (it runs from callbacks). */
void retained_cache_message(struct client *c, const char *topic, const void *payload,
                            size_t len, int qos);

#endif
