/*
 * retained.c - client:retained(filter) and the cache hook of the Client:
 * every retained message the client receives or publishes is upserted in
 * its store (store/retained.c), so a script knows the last state of things
 * even while the broker is away.
 */
#include "bindings/retained.h"
#include "bindings/client.h"
#include "runtime/log.h"
#include "store/retained.h"

#include <string.h>

static bool filter_matches(const char *filter, const char *topic)
{
	return topic_matches(filter, strlen(filter), topic, strlen(topic));
}

struct collect {
	lua_State *L;
	lua_Integer n;           /* entries in the result table, on top of the stack */
};

static bool collect_one(const struct retained_msg *m, void *ud)
{
	struct collect *k = ud;
	lua_State *L = k->L;
	lua_createtable(L, 0, 4);
	lua_pushstring(L, m->topic);
	lua_setfield(L, -2, "topic");
	lua_pushlstring(L, m->payload, (size_t)m->payloadlen);
	lua_setfield(L, -2, "payload");
	lua_pushinteger(L, m->qos);
	lua_setfield(L, -2, "qos");
	lua_pushnumber(L, m->updated);
	lua_setfield(L, -2, "time");
	lua_rawseti(L, -2, ++k->n);
	return true;
}

int client_retained(lua_State *L)
{
	static const char *const names[] = { "filter", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	size_t flen;
	const char *filter = luaL_optlstring(L, 2, "#", &flen);
	const char *why = topic_check_filter(filter, flen);
	if (why)
		return luaL_argerror(L, 2, lua_pushfstring(L, "filter %s", why));
	lua_newtable(L);
	if (!c->store)
		return 1;
	struct collect k = { L, 0 };
	/* "#" matches every topic but the "$" ones: the match function decides */
	if (retained_each(c->store, c->client_id, filter, filter_matches, collect_one, &k) < 0)
		return luaL_error(L, "client \"%s\": cannot read the retained cache: store %s: %s",
		                  c->client_id, store_path(c->store), sqlite3_errmsg(store_db(c->store)));
	return 1;
}

void retained_cache_message(struct client *c, const char *topic, const void *payload,
                            size_t len, int qos)
{
	if (!c->store)
		return;
	if (retained_put(c->store, c->client_id, topic, payload, len, qos) != 0)
		log_warn("client \"%s\": cannot cache the retained message of \"%s\": store %s: %s",
		         c->client_id, topic, store_path(c->store), sqlite3_errmsg(store_db(c->store)));
}
