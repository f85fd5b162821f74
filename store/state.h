/*
 * state.h - scripts' persistent key/value state, committed in the same
 * transaction as the outbox, so that a counter and the messages published
 * with it never disagree after a crash. Values are stored with their type:
 * 's' string, 'n' number (as text, exact), 'i' integer, 'b' boolean,
 * 'j' table as JSON (the Lua side encodes and decodes).
 */
#ifndef MQLUA_STATE_H
#define MQLUA_STATE_H

#include "store/store.h"

struct state_value {
	char type;             /* 's', 'n', 'i', 'b', 'j' */
	const char *data;      /* text form, valid until the next call on the store */
	size_t len;
};

/* Sets scope/key inside the open transaction; a NULL value deletes it. */
int state_set(struct store *s, const char *scope, const char *key, const struct state_value *v);
/* 1 and *v filled when found, 0 when absent, -1 on error. */
int state_get(struct store *s, const char *scope, const char *key, struct state_value *v);
/* Calls fn for every key of scope, in key order. Returns the count or -1. */
typedef bool (*state_fn)(const char *key, const struct state_value *v, void *ud);
int state_each(struct store *s, const char *scope, state_fn fn, void *ud);

#endif
