/*
 * filter_trie.h - a trie of MQTT topic filters over topic levels (filter_trie.c),
 * and the set of message_callback_add callbacks built on it.
 *
 * The trie part is plain C (the unit tests use it alone): each filter maps to
 * a value > 0, and a topic finds the values of every filter that matches it
 * in time that depends on the topic's levels, not on the number of filters.
 * '+' and '#' follow topic_matches(): "a/#" also matches "a", and a filter
 * starting with a wildcard does not match a topic starting with '$'.
 */
#ifndef MQLUA_FILTER_TRIE_H
#define MQLUA_FILTER_TRIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lua.h>

struct filter_trie;

/* A new empty trie, or NULL when out of memory. */
struct filter_trie *filter_trie_new(void);
void filter_trie_free(struct filter_trie *t);
/* Maps filter (checked by the caller) to value > 0, replacing any value it had.
 * Returns the previous value, 0 if there was none, -1 when out of memory. */
int64_t filter_trie_set(struct filter_trie *t, const char *filter, size_t flen, int64_t value);
/* The value of filter, 0 if it is not in the trie. */
int64_t filter_trie_get(const struct filter_trie *t, const char *filter, size_t flen);
/* Removes filter; returns the value it had, 0 if it was not there. */
int64_t filter_trie_remove(struct filter_trie *t, const char *filter, size_t flen);
/* Calls fn(value, arg) once for every filter that matches topic, in no
 * particular order. Returns how many matched. */
size_t filter_trie_match(const struct filter_trie *t, const char *topic, size_t tlen,
                         void (*fn)(int64_t value, void *arg), void *arg);

/* The callbacks of message_callback_add: a Lua userdata the client keeps
 * (nil until the first add); every function takes the set's stack index and
 * accepts nil there where it only reads or removes. An entry is a filter, its
 * callback and its sequence number (> 0), which orders the callbacks.
 * msgfilters_new pushes an empty set.
 * msgfilters_add maps filter to the function at fn_idx, or replaces the
 * function of a filter already there (which keeps its place in the order).
 * msgfilters_get pushes filter's function (nil when absent) and returns its
 * sequence number (0 when absent); msgfilters_put makes filter's entry
 * exactly that again: sequence number seq with the function at fn_idx, or
 * no entry when seq is 0.
 * msgfilters_remove_if removes every entry whose function pred accepts
 * (pred must not change the set) and returns how many it removed.
 * msgfilters_push_matches pushes, for every filter that matches topic in
 * the order of the sequence numbers, its function then the filter string,
 * and returns the number of pairs (0 for a nil set); it never raises. */
void msgfilters_new(lua_State *L);
void msgfilters_add(lua_State *L, int idx, const char *filter, size_t flen, int fn_idx);
void msgfilters_remove(lua_State *L, int idx, const char *filter, size_t flen);
int64_t msgfilters_get(lua_State *L, int idx, const char *filter, size_t flen);
void msgfilters_put(lua_State *L, int idx, const char *filter, size_t flen, int64_t seq, int fn_idx);
int msgfilters_remove_if(lua_State *L, int idx, bool (*pred)(lua_State *L, int fn_idx, void *arg), void *arg);
int msgfilters_push_matches(lua_State *L, int idx, const char *topic, size_t tlen);

#endif
