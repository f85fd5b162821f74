/*
 * client_pub.c - publishing: the checks of (topic, payload, qos, retain,
 * properties) that publish() and will_set() share, with errors that name
 * the argument, and publish() itself: QoS 0 straight to libmosquitto, QoS>0
 * (and QoS 0 queued while offline) through the outbox (client_outbox.c).
 */
#include "bindings/client.h"
#include "bindings/properties.h"
#include "bindings/rc.h"
#include "bindings/retained.h"

#include <mqtt_protocol.h>

static const char *check_topic_arg(lua_State *L, int idx, const char *name, size_t *len)
{
	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_argerror(L, idx, lua_pushfstring(L, "%s must be a string, got %s", name, luaL_typename(L, idx)));
	const char *topic = lua_tolstring(L, idx, len);
	const char *why = topic_check_name(topic, *len);
	if (why)
		luaL_argerror(L, idx, lua_pushfstring(L, "%s %s", name, why));
	return topic;
}

static const char *check_payload_arg(lua_State *L, int idx, size_t *len)
{
	int t = lua_type(L, idx);
	if (t == LUA_TNONE || t == LUA_TNIL) {
		*len = 0;
		return NULL;
	}
	if (t != LUA_TSTRING && t != LUA_TNUMBER)
		luaL_argerror(L, idx, lua_pushfstring(L, "payload must be a string, a number or nil, got %s", luaL_typename(L, idx)));
	const char *p = lua_tolstring(L, idx, len);   /* a number becomes its text in place */
	if (*len > 268435455)
		luaL_argerror(L, idx, "payload is larger than MQTT's maximum of 268435455 bytes");
	return p;
}

int client_check_qos(lua_State *L, int idx, int def)
{
	if (lua_isnoneornil(L, idx))
		return def;
	int isnum;
	lua_Integer q = lua_tointegerx(L, idx, &isnum);
	if (lua_type(L, idx) != LUA_TNUMBER)
		luaL_argerror(L, idx, lua_pushfstring(L, "qos must be 0, 1 or 2, got a %s", luaL_typename(L, idx)));
	if (!isnum || q < 0 || q > 2)
		luaL_argerror(L, idx, lua_pushfstring(L, "qos must be 0, 1 or 2, got %s", luaL_tolstring(L, idx, NULL)));
	return (int)q;
}

struct client *client_check_message_args(lua_State *L, struct message_args *a)
{
	static const char *const names[] = { "topic", "payload", "qos", "retain", "properties", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 6);
	size_t tlen;
	a->topic = check_topic_arg(L, 2, "topic", &tlen);
	a->payload = check_payload_arg(L, 3, &a->payloadlen);
	a->qos = client_check_qos(L, 4, 0);
	a->retain = mqlua_optboolean(L, 5, false, "retain");
	return c;
}

/* Keeps the info on top of the stack findable under key until its message is done. */
static void remember_info(lua_State *L, int64_t key)
{
	lua_getiuservalue(L, 1, CLIENT_UV_INFOS);
	lua_pushvalue(L, -2);
	lua_rawseti(L, -2, key);
	lua_pop(L, 1);
}

mosquitto_property *client_check_properties(lua_State *L, struct client *c, int idx, int command,
                                            const char *argname)
{
	if (lua_isnoneornil(L, idx))
		return NULL;
	if (c->protocol != MQTT_PROTOCOL_V5)
		luaL_argerror(L, idx, lua_pushfstring(L, "%s only apply to MQTT v5 (mqtt.Client{protocol = mqtt.MQTTv5})",
		                                      argname));
	return properties_check(L, idx, command, argname);
}

/* client:publish(topic, payload=nil, qos=0, retain=false, properties=nil) -> MQTTMessageInfo */
int client_publish(lua_State *L)
{
	struct message_args a;
	struct client *c = client_check_message_args(L, &a);
	mosquitto_property *props = client_check_properties(L, c, 6, CMD_PUBLISH, "properties");
	if (a.qos > 0 || (c->queue_qos0 && !c->connected)) {
		/* through the outbox: sent after this iteration's commit */
		client_need_store(L, c);
		int rc;
		int64_t id = client_outbox_publish(c, a.topic, a.payload, a.payloadlen, a.qos, a.retain, props, &rc);
		mosquitto_property_free_all(&props);
		info_push(L, 1, rc, id, a.qos, false);
		if (id > 0) {
			remember_info(L, id);
			if (a.retain)
				retained_cache_message(c, a.topic, a.payload, a.payloadlen, a.qos);
		}
		return 1;
	}
	int mid = 0;
	c->publishing = true;
	c->early_published_mid = 0;
	MQLUA_ENTER(L);
	int rc = mosquitto_publish_v5(c->mosq, &mid, a.topic, (int)a.payloadlen, a.payload, 0, a.retain, props);
	mosquitto_property_free_all(&props);
	client_sync_io(c);
	c->publishing = false;
	bool published = rc == MOSQ_ERR_SUCCESS && c->early_published_mid == mid && mid != 0;
	info_push(L, 1, rc_from_mosq(rc), mid, 0, false);
	if (rc == MOSQ_ERR_SUCCESS) {
		remember_info(L, -mid);
		c->stats->published[0]++;
		c->stats->bytes_out += a.payloadlen;
	}
	if (rc == MOSQ_ERR_SUCCESS && a.retain)
		retained_cache_message(c, a.topic, a.payload, a.payloadlen, 0);
	if (published)
		client_notify_published(L, c, -mid, 0);
	MQLUA_LEAVE();
	return 1;
}
