/*
 * filter_trie.c - message_callback_add's filters as a trie over topic levels,
 * so that dispatching a message costs the same with 10,000 filters as with
 * one (see filter_trie.h for the contract).
 *
 * A node is one level of a filter. Its literal children live in an
 * open-addressed hash table keyed by the level text; the "+" and "#"
 * children have their own pointers. A filter's value sits on the node of its
 * last level. Removing a filter frees the nodes it alone used.
 *
 * The second half is the Lua face: the "mqlua.filters" userdata holding a
 * trie whose values are sequence numbers (the order filters were first
 * added) and, as its user values, tables sequence number -> callback and
 * sequence number -> filter (to name the filter in logs and to remove
 * entries by callback, for run mode's owners). A sequence number is never
 * handed out twice, so a removed entry put back with its old number
 * (msgfilters_put, run mode's undo) takes its old place.
 */
#include "bindings/filter_trie.h"

#include <lauxlib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *parent;
	int64_t value;              /* > 0 when a filter ends here */
	struct node *plus, *hash;   /* the "+" and "#" children */
	struct node **kids;         /* literal children, open addressing, cap a power of two */
	uint32_t nkids, cap;
	uint32_t code;              /* hash of level */
	size_t len;
	char level[];               /* the level's text (literal children only) */
};

struct filter_trie {
	struct node *root;
};

static uint32_t level_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;   /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static struct node *node_new(const char *level, size_t len, struct node *parent)
{
	struct node *n = calloc(1, sizeof *n + len + 1);
	if (!n)
		return NULL;
	n->parent = parent;
	n->len = len;
	n->code = level_hash(level, len);
	memcpy(n->level, level, len);
	return n;
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; i < n->cap; i++)
		node_free(n->kids[i]);
	free(n->kids);
	node_free(n->plus);
	node_free(n->hash);
	free(n);
}

/* The slot of the literal child with this level, or of the empty slot where it would go. */
static uint32_t kid_slot(const struct node *n, const char *level, size_t len, uint32_t code)
{
	uint32_t mask = n->cap - 1, i = code & mask;
	for (; n->kids[i]; i = (i + 1) & mask) {
		const struct node *k = n->kids[i];
		if (k->code == code && k->len == len && memcmp(k->level, level, len) == 0)
			break;
	}
	return i;
}

static struct node *kid_find(const struct node *n, const char *level, size_t len)
{
	if (!n->nkids)
		return NULL;
	return n->kids[kid_slot(n, level, len, level_hash(level, len))];
}

/* Puts k into n's table, growing it to keep the load at most one half; false when out of memory. */
static bool kid_put(struct node *n, struct node *k)
{
	if ((n->nkids + 1) * 2 > n->cap) {
		uint32_t cap = n->cap ? n->cap * 2 : 4;
		struct node **old = n->kids, **kids = calloc(cap, sizeof *kids);
		uint32_t oldcap = n->cap;
		if (!kids)
			return false;
		n->kids = kids;
		n->cap = cap;
		for (uint32_t i = 0; i < oldcap; i++)
			if (old[i])
				n->kids[kid_slot(n, old[i]->level, old[i]->len, old[i]->code)] = old[i];
		free(old);
	}
	n->kids[kid_slot(n, k->level, k->len, k->code)] = k;
	n->nkids++;
	return true;
}

/* Takes k out of its parent's table, moving the rest of its probe run back into place. */
static void kid_drop(struct node *n, struct node *k)
{
	uint32_t mask = n->cap - 1, i = kid_slot(n, k->level, k->len, k->code);
	n->kids[i] = NULL;
	n->nkids--;
	for (i = (i + 1) & mask; n->kids[i]; i = (i + 1) & mask) {
		struct node *moved = n->kids[i];
		n->kids[i] = NULL;
		n->kids[kid_slot(n, moved->level, moved->len, moved->code)] = moved;
	}
}

struct filter_trie *filter_trie_new(void)
{
	struct filter_trie *t = malloc(sizeof *t);
	if (t && !(t->root = node_new("", 0, NULL))) {
		free(t);
		t = NULL;
	}
	return t;
}

void filter_trie_free(struct filter_trie *t)
{
	if (t) {
		node_free(t->root);
		free(t);
	}
}

/* The node of filter's last level; with create, the missing nodes are made
 * (NULL when out of memory), else NULL when filter is not in the trie. */
static struct node *walk(const struct filter_trie *t, const char *filter, size_t flen, bool create)
{
	struct node *n = t->root;
	size_t start = 0;
	for (;;) {
		const char *lv = filter + start, *slash = memchr(lv, '/', flen - start);
		size_t len = slash ? (size_t)(slash - lv) : flen - start;
		struct node **special = len == 1 && lv[0] == '+' ? &n->plus : len == 1 && lv[0] == '#' ? &n->hash : NULL;
		struct node *next = special ? *special : kid_find(n, lv, len);
		if (!next) {
			if (!create || !(next = node_new(lv, len, n)))
				return NULL;
			if (special) {
				*special = next;
			} else if (!kid_put(n, next)) {
				free(next);
				return NULL;
			}
		}
		n = next;
		if (!slash)
			return n;
		start += len + 1;
	}
}

/* Frees n and its ancestors while they hold neither a value nor a child. */
static void prune(struct filter_trie *t, struct node *n)
{
	while (n != t->root && !n->value && !n->plus && !n->hash && !n->nkids) {
		struct node *p = n->parent;
		if (p->plus == n)
			p->plus = NULL;
		else if (p->hash == n)
			p->hash = NULL;
		else
			kid_drop(p, n);
		free(n->kids);
		free(n);
		n = p;
	}
}

int64_t filter_trie_set(struct filter_trie *t, const char *filter, size_t flen, int64_t value)
{
	struct node *n = walk(t, filter, flen, true);
	if (!n)
		return -1;   /* nodes made before the failure stay, empty: they match nothing */
	int64_t old = n->value;
	n->value = value;
	return old;
}

int64_t filter_trie_get(const struct filter_trie *t, const char *filter, size_t flen)
{
	const struct node *n = walk(t, filter, flen, false);
	return n ? n->value : 0;
}

int64_t filter_trie_remove(struct filter_trie *t, const char *filter, size_t flen)
{
	struct node *n = walk(t, filter, flen, false);
	if (!n)
		return 0;
	int64_t old = n->value;
	n->value = 0;
	prune(t, n);
	return old;
}

struct match {
	const char *topic;
	size_t tlen;
	bool dollar;     /* the topic starts with '$': no wildcard matches its first level */
	void (*fn)(int64_t value, void *arg);
	void *arg;
	size_t count;
};

static void report(struct match *m, const struct node *n)
{
	if (n && n->value) {
		m->count++;
		m->fn(n->value, m->arg);
	}
}

/* Reports the filters under n matching the topic's levels from start on
 * (start > tlen: every level has been consumed). */
static void match_from(struct match *m, const struct node *n, size_t start)
{
	if (start > m->tlen) {
		report(m, n);
		report(m, n->hash);   /* "a/#" matches "a" */
		return;
	}
	bool wild = !(m->dollar && start == 0);
	if (wild)
		report(m, n->hash);
	const char *lv = m->topic + start, *slash = memchr(lv, '/', m->tlen - start);
	size_t len = slash ? (size_t)(slash - lv) : m->tlen - start;
	if (wild && n->plus)
		match_from(m, n->plus, start + len + 1);
	const struct node *k = kid_find(n, lv, len);
	if (k)
		match_from(m, k, start + len + 1);
}

size_t filter_trie_match(const struct filter_trie *t, const char *topic, size_t tlen,
                         void (*fn)(int64_t value, void *arg), void *arg)
{
	struct match m = { topic, tlen, tlen > 0 && topic[0] == '$', fn, arg, 0 };
	match_from(&m, t->root, 0);
	return m.count;
}

/* ---- the Lua face: message_callback_add's set ---- */

#define MSGFILTERS_T "mqlua.filters"
#define INLINE_MATCHES 64
enum { UV_FNS = 1, UV_NAMES };   /* seq -> callback, seq -> filter */

struct msgfilters {
	struct filter_trie *trie;
	int64_t next_seq;   /* the last sequence number handed out */
};

static int l_gc(lua_State *L)
{
	struct msgfilters *s = luaL_checkudata(L, 1, MSGFILTERS_T);
	filter_trie_free(s->trie);
	s->trie = NULL;
	return 0;
}

void msgfilters_new(lua_State *L)
{
	struct msgfilters *s = lua_newuserdatauv(L, sizeof *s, 2);
	s->trie = NULL;
	s->next_seq = 0;
	if (luaL_newmetatable(L, MSGFILTERS_T)) {
		lua_pushcfunction(L, l_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lua_newtable(L);
	lua_setiuservalue(L, -2, UV_FNS);
	lua_newtable(L);
	lua_setiuservalue(L, -2, UV_NAMES);
	if (!(s->trie = filter_trie_new()))
		luaL_error(L, "not enough memory");
}

/* The set at idx, or NULL when idx holds none (nil: no filter added yet). */
static struct msgfilters *to_set(lua_State *L, int idx)
{
	struct msgfilters *s = luaL_testudata(L, idx, MSGFILTERS_T);
	return s && s->trie ? s : NULL;
}

/* Sets slot seq of the set's user value uv to the value on top (popped). */
static void set_slot(lua_State *L, int idx, int uv, int64_t seq)
{
	lua_getiuservalue(L, idx, uv);
	lua_rotate(L, -2, 1);
	lua_rawseti(L, -2, seq);
	lua_pop(L, 1);
}

static void clear_entry(lua_State *L, int idx, int64_t seq)
{
	lua_pushnil(L);
	set_slot(L, idx, UV_FNS, seq);
	lua_pushnil(L);
	set_slot(L, idx, UV_NAMES, seq);
}

int64_t msgfilters_get(lua_State *L, int idx, const char *filter, size_t flen)
{
	struct msgfilters *s = to_set(L, idx);
	int64_t seq = s ? filter_trie_get(s->trie, filter, flen) : 0;
	if (seq > 0) {
		lua_getiuservalue(L, idx, UV_FNS);
		lua_rawgeti(L, -1, seq);
		lua_remove(L, -2);
	} else {
		lua_pushnil(L);
	}
	return seq;
}

void msgfilters_put(lua_State *L, int idx, const char *filter, size_t flen, int64_t seq, int fn_idx)
{
	idx = lua_absindex(L, idx);
	fn_idx = lua_absindex(L, fn_idx);
	struct msgfilters *s = luaL_checkudata(L, idx, MSGFILTERS_T);
	if (seq <= 0) {
		msgfilters_remove(L, idx, filter, flen);
		return;
	}
	int64_t old = filter_trie_set(s->trie, filter, flen, seq);
	if (old < 0)
		luaL_error(L, "not enough memory");
	if (old > 0 && old != seq)
		clear_entry(L, idx, old);
	if (seq > s->next_seq)
		s->next_seq = seq;   /* later adds still come after it */
	lua_pushvalue(L, fn_idx);
	set_slot(L, idx, UV_FNS, seq);
	lua_pushlstring(L, filter, flen);
	set_slot(L, idx, UV_NAMES, seq);
}

void msgfilters_add(lua_State *L, int idx, const char *filter, size_t flen, int fn_idx)
{
	struct msgfilters *s = luaL_checkudata(L, idx, MSGFILTERS_T);
	int64_t seq = filter_trie_get(s->trie, filter, flen);
	msgfilters_put(L, idx, filter, flen, seq ? seq : s->next_seq + 1, fn_idx);
}

void msgfilters_remove(lua_State *L, int idx, const char *filter, size_t flen)
{
	struct msgfilters *s = to_set(L, idx);
	int64_t seq = s ? filter_trie_remove(s->trie, filter, flen) : 0;
	if (seq > 0)
		clear_entry(L, lua_absindex(L, idx), seq);
}

int msgfilters_remove_if(lua_State *L, int idx, bool (*pred)(lua_State *L, int fn_idx, void *arg), void *arg)
{
	struct msgfilters *s = to_set(L, idx);
	if (!s)
		return 0;
	idx = lua_absindex(L, idx);
	int top = lua_gettop(L);
	lua_getiuservalue(L, idx, UV_FNS);
	lua_newtable(L);   /* the sequence numbers to remove: the walk changes nothing */
	int fns = top + 1, gone = top + 2, n = 0;
	lua_pushnil(L);
	while (lua_next(L, fns)) {
		if (pred(L, lua_gettop(L), arg)) {
			lua_pushvalue(L, -2);
			lua_rawseti(L, gone, ++n);
		}
		lua_pop(L, 1);
	}
	lua_getiuservalue(L, idx, UV_NAMES);
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, gone, i);
		lua_rawget(L, top + 3);
		size_t flen;
		const char *filter = lua_tolstring(L, -1, &flen);
		if (filter)
			msgfilters_remove(L, idx, filter, flen);
		lua_pop(L, 1);
	}
	lua_settop(L, top);
	return n;
}

struct collected {
	int64_t *seq;
	size_t n, cap;
};

static void collect(int64_t value, void *arg)
{
	struct collected *c = arg;
	if (c->n < c->cap)
		c->seq[c->n] = value;
	c->n++;
}

static int by_seq(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Pushes the callback and the filter of every sequence number in c, in
 * order; returns how many pairs it pushed. */
static int push_entries(lua_State *L, int idx, const struct collected *c)
{
	if (!lua_checkstack(L, 2 * (int)c->n + 3))
		return 0;
	lua_getiuservalue(L, idx, UV_FNS);
	lua_getiuservalue(L, idx, UV_NAMES);
	int fns = lua_gettop(L) - 1, pushed = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (lua_rawgeti(L, fns, c->seq[i]) == LUA_TNIL) {
			lua_pop(L, 1);
			continue;
		}
		lua_rawgeti(L, fns + 1, c->seq[i]);
		pushed++;
	}
	lua_remove(L, fns);
	lua_remove(L, fns);
	return pushed;
}

int msgfilters_push_matches(lua_State *L, int idx, const char *topic, size_t tlen)
{
	struct msgfilters *s = lua_touserdata(L, idx);
	if (!s || !s->trie)
		return 0;
	idx = lua_absindex(L, idx);
	int64_t inline_seq[INLINE_MATCHES];
	struct collected c = { inline_seq, 0, INLINE_MATCHES };
	filter_trie_match(s->trie, topic, tlen, collect, &c);
	if (c.n > c.cap) {
		/* more matches than fit here: collect them again into a buffer of the right size */
		int64_t *heap = malloc(c.n * sizeof *heap);
		if (heap) {
			c = (struct collected){ heap, 0, c.n };
			filter_trie_match(s->trie, topic, tlen, collect, &c);
		} else {
			c.n = c.cap;   /* out of memory: the first ones found */
		}
	}
	qsort(c.seq, c.n, sizeof *c.seq, by_seq);
	int pushed = push_entries(L, idx, &c);
	if (c.seq != inline_seq)
		free(c.seq);
	return pushed;
}
