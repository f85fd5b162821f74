/*
 * owner.c - script owners for `mqlua run DIR` (runtime/run.c): which
 * version of which script registered a callback, made a client or
 * subscribed to a filter, so that reloading a script can remove exactly what
 * its previous version set up while connections and outboxes stay.
 *
 * Bookkeeping lives in registry tables keyed by Lua objects, weakly:
 *   fns      function (or callable) -> owner          (owner_claim)
 *   clients  client userdata -> the owner that made it (or took it over)
 *   subs     client userdata -> { filter -> { owner -> true } }
 * An owner is a struct mqlua_owner, stored as a light userdata. A filter is
 * unsubscribed once no owner is left in its set. While a new version's main
 * chunk runs, writes it makes over existing values (client fields, message
 * callbacks, client ownership) are logged in an undo list, so that a
 * version whose main chunk fails leaves the previous one exactly as it was.
 * Most entries are table slots (owner_note_write); message callbacks live in
 * a trie (filter_trie.h), so theirs are calls that put one filter's entry
 * back (owner_note_call).
 */
#include "bindings/client.h"
#include "bindings/filter_trie.h"
#include "runtime/log.h"

#include <stdlib.h>
#include <string.h>

struct mqlua_owner {
	char *name;
	unsigned long errors;
	bool retired;
};

bool mqlua_run_mode;

static const char fns_key = 'f', clients_key = 'c', subs_key = 's';
static int undo_ref = LUA_NOREF;     /* {{tbl, key, old}...} while a main chunk loads */
static int reused_ref = LUA_NOREF;   /* clients taken over by the loading version */

struct mqlua_owner *owner_new(const char *name)
{
	struct mqlua_owner *o = calloc(1, sizeof *o);
	if (!o || !(o->name = strdup(name))) {
		log_error("out of memory loading a script");
		abort();
	}
	return o;
}

const char *owner_name(const struct mqlua_owner *o)
{
	return o->name;
}

unsigned long owner_errors(const struct mqlua_owner *o)
{
	return o->errors;
}

void owner_count_error(struct mqlua_owner *o)
{
	o->errors++;
}

bool owner_same_script(const struct mqlua_owner *a, const struct mqlua_owner *b)
{
	return a && b && strcmp(a->name, b->name) == 0;
}

const char *mqlua_script_name(void)
{
	struct mqlua_owner *o = task_owner();
	return o ? o->name : mqlua_main_script_name();
}

const char *owner_running_name(void)
{
	struct mqlua_owner *o = task_owner();
	return o ? o->name : NULL;
}

void owner_claim_as(lua_State *L, int idx, struct mqlua_owner *o)
{
	int t = lua_type(L, idx);
	if (!mqlua_run_mode || !o || (t != LUA_TFUNCTION && t != LUA_TTABLE && t != LUA_TUSERDATA))
		return;
	idx = lua_absindex(L, idx);
	mqlua_push_weak_table(L, &fns_key);
	lua_pushvalue(L, idx);
	lua_pushlightuserdata(L, o);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

void owner_claim(lua_State *L, int idx)
{
	if (mqlua_run_mode)
		owner_claim_as(L, idx, task_owner());
}

struct mqlua_owner *owner_of(lua_State *L, int idx)
{
	if (!mqlua_run_mode || lua_isnoneornil(L, idx))
		return NULL;
	idx = lua_absindex(L, idx);
	mqlua_push_weak_table(L, &fns_key);
	lua_pushvalue(L, idx);
	lua_rawget(L, -2);
	struct mqlua_owner *o = lua_touserdata(L, -1);
	lua_pop(L, 2);
	return o;
}

void owner_note_write(lua_State *L, int tbl, int key)
{
	if (undo_ref == LUA_NOREF)
		return;
	tbl = lua_absindex(L, tbl);
	key = lua_absindex(L, key);
	lua_rawgeti(L, LUA_REGISTRYINDEX, undo_ref);
	lua_createtable(L, 3, 0);
	lua_pushvalue(L, tbl);
	lua_rawseti(L, -2, 1);
	lua_pushvalue(L, key);
	lua_rawseti(L, -2, 2);
	lua_pushvalue(L, key);
	lua_rawget(L, tbl);
	lua_rawseti(L, -2, 3);
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	lua_pop(L, 1);
}

bool owner_noting(void)
{
	return undo_ref != LUA_NOREF;
}

void owner_note_call(lua_State *L, lua_CFunction f, int n)
{
	if (undo_ref == LUA_NOREF) {
		lua_pop(L, n);
		return;
	}
	int first = lua_gettop(L) - n + 1;
	lua_rawgeti(L, LUA_REGISTRYINDEX, undo_ref);
	lua_createtable(L, n + 1, 1);   /* {f, args..., n = n}: the function marks the kind */
	lua_pushcfunction(L, f);
	lua_rawseti(L, -2, 1);
	for (int i = 0; i < n; i++) {
		lua_pushvalue(L, first + i);
		lua_rawseti(L, -2, i + 2);
	}
	lua_pushinteger(L, n);
	lua_setfield(L, -2, "n");
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	lua_settop(L, first - 1);
}

/* Sets clients[ud] = o (nil when o is NULL), logged for undo. */
static void set_client_owner(lua_State *L, int ud, struct mqlua_owner *o)
{
	mqlua_push_weak_table(L, &clients_key);
	lua_pushvalue(L, ud);
	owner_note_write(L, -2, -1);
	if (o)
		lua_pushlightuserdata(L, o);
	else
		lua_pushnil(L);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

static struct mqlua_owner *client_owner(lua_State *L, int ud)
{
	mqlua_push_weak_table(L, &clients_key);
	lua_pushvalue(L, ud);
	lua_rawget(L, -2);
	struct mqlua_owner *o = lua_touserdata(L, -1);
	lua_pop(L, 2);
	return o;
}

bool owner_reuse_client(lua_State *L, const char *id)
{
	struct mqlua_owner *cur = mqlua_run_mode ? task_owner() : NULL;
	if (!cur)
		return false;
	for (struct client *c = client_all; c; c = c->next) {
		if (!c->mosq || strcmp(c->client_id, id) != 0)
			continue;
		client_push(L, c);
		int ud = lua_gettop(L);
		struct mqlua_owner *o = lua_isnil(L, ud) ? NULL : client_owner(L, ud);
		if (o && o != cur && owner_same_script(o, cur)) {
			set_client_owner(L, ud, cur);
			c->reused = c->connect_requested;
			if (reused_ref != LUA_NOREF) {
				lua_rawgeti(L, LUA_REGISTRYINDEX, reused_ref);
				lua_pushvalue(L, ud);
				lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
				lua_pop(L, 1);
			}
			log_info("client \"%s\": kept from the previous version (still %s)", c->client_id,
			         c->connected ? "connected" : "not connected");
			return true;
		}
		lua_pop(L, 1);
	}
	return false;
}

void owner_client_made(lua_State *L, int ud)
{
	struct mqlua_owner *cur = mqlua_run_mode ? task_owner() : NULL;
	if (cur)
		set_client_owner(L, lua_absindex(L, ud), cur);
}

/* Pushes subs[ud] (created when create is true; else nil may be pushed). */
static void push_client_subs(lua_State *L, int ud, bool create)
{
	ud = lua_absindex(L, ud);
	mqlua_push_weak_table(L, &subs_key);
	mqlua_push_subtable(L, -1, ud, create);
	lua_remove(L, -2);
}

void owner_subscribed(lua_State *L, int ud, const char *filter)
{
	struct mqlua_owner *cur = mqlua_run_mode ? task_owner() : NULL;
	if (!cur)
		return;
	push_client_subs(L, lua_absindex(L, ud), true);
	if (lua_getfield(L, -1, filter) == LUA_TNIL) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, filter);
	}
	lua_pushlightuserdata(L, cur);
	lua_pushboolean(L, 1);
	lua_rawset(L, -3);
	lua_pop(L, 2);
}

void owner_unsubscribed(lua_State *L, int ud, const char *filter)
{
	if (!mqlua_run_mode)
		return;
	push_client_subs(L, lua_absindex(L, ud), false);
	if (lua_istable(L, -1)) {
		lua_pushnil(L);
		lua_setfield(L, -2, filter);
	}
	lua_pop(L, 1);
}

/* Calls method name of the client at ud with the value on top (popped) as
 * its argument, protected: a failure is logged. */
static void call_method(lua_State *L, int ud, const char *name)
{
	int arg = lua_gettop(L);
	lua_getfield(L, ud, name);
	lua_pushvalue(L, ud);
	lua_pushvalue(L, arg);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		log_warn("%s: %s", name, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* msgfilters_remove_if's test: the callback at fn_idx is owner arg's. */
static bool owned_by(lua_State *L, int fn_idx, void *arg)
{
	return owner_of(L, fn_idx) == arg;
}

/* The on_* callbacks and message callbacks of the client at ud that o set go. */
static void drop_callbacks(lua_State *L, int ud, struct mqlua_owner *o)
{
	lua_getiuservalue(L, ud, CLIENT_UV_FIELDS);
	int fields = lua_gettop(L);
	lua_newtable(L);   /* the keys to clear: not while traversing */
	int n = 0;
	lua_pushnil(L);
	while (lua_next(L, fields)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
		if (strncmp(k, "on_", 3) == 0 && owner_of(L, -1) == o) {
			lua_pushvalue(L, -2);
			lua_rawseti(L, fields + 1, ++n);
		}
		lua_pop(L, 1);
	}
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, fields + 1, i);
		lua_pushnil(L);
		lua_settable(L, ud);   /* through __newindex: on_log updates what it must */
	}
	lua_settop(L, fields - 1);

	lua_getiuservalue(L, ud, CLIENT_UV_FILTERS);
	msgfilters_remove_if(L, -1, owned_by, o);
	lua_pop(L, 1);
}

/* o leaves the owner set of every filter of the client at ud; filters left
 * without an owner are unsubscribed. */
static void drop_subscriptions(lua_State *L, int ud, struct mqlua_owner *o)
{
	push_client_subs(L, ud, false);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	int subs = lua_gettop(L);
	lua_newtable(L);
	int gone = subs + 1, n = 0;
	lua_pushnil(L);
	while (lua_next(L, subs)) {
		lua_pushlightuserdata(L, o);
		lua_pushnil(L);
		lua_rawset(L, -3);
		lua_pushnil(L);
		if (!lua_next(L, -2)) {
			lua_pushvalue(L, -2);
			lua_rawseti(L, gone, ++n);
		} else {
			lua_pop(L, 2);
		}
		lua_pop(L, 1);
	}
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, gone, i);
		lua_pushnil(L);
		lua_rawset(L, subs);
	}
	if (n > 0) {
		struct client *c = lua_touserdata(L, ud);
		log_info("[%s] client \"%s\": unsubscribing %d filter%s only its previous version used", o->name,
		         c->client_id, n, n == 1 ? "" : "s");
		lua_pushvalue(L, gone);
		call_method(L, ud, "unsubscribe");
	}
	lua_settop(L, subs - 1);
}

void owner_retire(lua_State *L, struct mqlua_owner *o)
{
	o->retired = true;
	timer_cancel_owner(o);
	task_cancel_owner(o);
	int top = lua_gettop(L);
	for (struct client *c = client_all; c; c = c->next) {
		if (!c->mosq)
			continue;
		client_push(L, c);
		int ud = lua_gettop(L);
		if (!lua_isnil(L, ud)) {
			drop_callbacks(L, ud, o);
			drop_subscriptions(L, ud, o);
			if (client_owner(L, ud) == o) {
				set_client_owner(L, ud, NULL);
				if (c->connect_requested || c->connected) {
					log_info("[%s] client \"%s\": disconnecting (the script no longer makes it)", o->name,
					         c->client_id);
					lua_pushnil(L);
					call_method(L, ud, "disconnect");
				}
			}
		}
		lua_settop(L, top);
	}
}

void owner_load_begin(lua_State *L, struct mqlua_owner *v)
{
	(void)v;
	lua_newtable(L);
	undo_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);
	reused_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Runs the undo call of owner_note_call in the entry on top. */
static void undo_call(lua_State *L)
{
	int entry = lua_gettop(L);
	lua_getfield(L, entry, "n");
	int n = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	luaL_checkstack(L, n + 1, "undoing a failed load");
	for (int i = 1; i <= n + 1; i++)
		lua_rawgeti(L, entry, i);
	if (lua_pcall(L, n, 0, 0) != LUA_OK) {
		log_error("undoing a failed load: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
}

/* Puts back, newest first, what the undo list remembers. */
static void undo_writes(lua_State *L)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, undo_ref);
	for (lua_Integer i = (lua_Integer)lua_rawlen(L, -1); i >= 1; i--) {
		lua_rawgeti(L, -1, i);
		if (lua_rawgeti(L, -1, 1) == LUA_TFUNCTION) {
			lua_pop(L, 1);
			undo_call(L);
			lua_pop(L, 1);
			continue;
		}
		lua_rawgeti(L, -2, 2);
		lua_rawgeti(L, -3, 3);
		lua_rawset(L, -3);
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
}

void owner_load_end(lua_State *L, struct mqlua_owner *v, struct mqlua_owner *old, bool ok)
{
	int top = lua_gettop(L);
	if (!ok)
		undo_writes(L);
	luaL_unref(L, LUA_REGISTRYINDEX, undo_ref);
	undo_ref = LUA_NOREF;
	lua_rawgeti(L, LUA_REGISTRYINDEX, reused_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, reused_ref);
	reused_ref = LUA_NOREF;
	int reused = lua_gettop(L);
	for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, reused); i++) {
		lua_rawgeti(L, reused, i);
		struct client *c = lua_touserdata(L, -1);
		c->reused = false;
		if (ok && c->mosq && c->connected) {
			lua_getiuservalue(L, -1, CLIENT_UV_FIELDS);
			lua_getfield(L, -1, "on_connect");
			if (owner_of(L, -1) == v)
				client_replay_on_connect(c);
			lua_pop(L, 2);
		}
		lua_pop(L, 1);
	}
	lua_settop(L, top);
	if (!ok)
		owner_retire(L, v);
	else if (old)
		owner_retire(L, old);
}
