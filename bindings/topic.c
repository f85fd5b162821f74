/*
 * topic.c - topic names and filters: validation with the reason in words,
 * matching (MQTT's rules, including "$" topics not matched by a leading
 * wildcard), and the module functions topic_matches_sub and
 * validate_topic / validate_filter.
 */
#include "bindings/mqlua.h"

#include <string.h>
#include <mosquitto.h>

#define TOPIC_MAX 65535

static const char *check_common(const char *s, size_t len, const char *what_empty)
{
	if (len == 0)
		return what_empty;
	if (len > TOPIC_MAX)
		return "is longer than 65535 bytes";
	if (memchr(s, '\0', len))
		return "must not contain a NUL character";
	if (mosquitto_validate_utf8(s, (int)len) != MOSQ_ERR_SUCCESS)
		return "is not valid UTF-8 (or contains control characters)";
	return NULL;
}

const char *topic_check_name(const char *topic, size_t len)
{
	const char *why = check_common(topic, len, "must not be empty");
	if (why)
		return why;
	if (memchr(topic, '+', len) || memchr(topic, '#', len))
		return "must not contain the wildcards '+' or '#'";
	return NULL;
}

const char *topic_check_filter(const char *filter, size_t len)
{
	const char *why = check_common(filter, len, "must not be empty");
	if (why)
		return why;
	for (size_t i = 0; i < len; i++) {
		bool starts_level = i == 0 || filter[i - 1] == '/';
		bool ends_level = i + 1 == len || filter[i + 1] == '/';
		if (filter[i] == '+' && !(starts_level && ends_level))
			return "has a '+' that is not a whole level";
		if (filter[i] == '#' && !(starts_level && i + 1 == len))
			return "has a '#' that is not the whole last level";
	}
	return NULL;
}

bool topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen)
{
	size_t f = 0, t = 0;
	if (tlen > 0 && topic[0] == '$' && flen > 0 && (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (;;) {
		if (f == flen)
			return t == tlen;
		if (filter[f] == '#')
			return true;   /* also matches the parent level: "a/#" matches "a" */
		if (filter[f] == '+') {
			while (t < tlen && topic[t] != '/')
				t++;
			f++;
		} else {
			/* compare one level literally */
			while (f < flen && filter[f] != '/') {
				if (t == tlen || topic[t] != filter[f])
					return false;
				f++, t++;
			}
			if (t < tlen && topic[t] != '/')
				return false;
		}
		/* here both are at a separator or at their end */
		if (f == flen)
			return t == tlen;
		if (t == tlen)
			/* topic ended: only "/#" may follow in the filter */
			return flen - f == 2 && filter[f + 1] == '#';
		f++, t++;   /* step over '/' in both */
	}
}

/* mqtt.topic_matches_sub(sub, topic) -> boolean (raises on an invalid filter or topic) */
static int l_topic_matches_sub(lua_State *L)
{
	size_t flen, tlen;
	const char *filter = luaL_checklstring(L, 1, &flen);
	const char *topic = luaL_checklstring(L, 2, &tlen);
	const char *why = topic_check_filter(filter, flen);
	if (why)
		return luaL_argerror(L, 1, lua_pushfstring(L, "sub %s", why));
	if ((why = topic_check_name(topic, tlen)))
		return luaL_argerror(L, 2, lua_pushfstring(L, "topic %s", why));
	lua_pushboolean(L, topic_matches(filter, flen, topic, tlen));
	return 1;
}

/* mqtt.validate_topic(t) / mqtt.validate_filter(f) -> true | nil, reason */
static int validate(lua_State *L, const char *(*check)(const char *, size_t))
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	const char *why = check(s, len);
	if (!why) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	lua_pushstring(L, why);
	return 2;
}

static int l_validate_topic(lua_State *L) { return validate(L, topic_check_name); }
static int l_validate_filter(lua_State *L) { return validate(L, topic_check_filter); }

void topic_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "topic_matches_sub", l_topic_matches_sub },
		{ "validate_topic", l_validate_topic },
		{ "validate_filter", l_validate_filter },
		{ NULL, NULL }
	};
	luaL_setfuncs(L, fns, 0);
}
