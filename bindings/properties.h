/*
 * properties.h - MQTT v5 properties between Lua tables and libmosquitto's
 * property lists, with paho's property names:
 *   { MessageExpiryInterval = 60, ContentType = "application/json",
 *     ResponseTopic = "r", CorrelationData = "\1\2",
 *     UserProperty = {{"k", "v"}, {"k", "v2"}} }
 * and a flat byte encoding of a list so the outbox can store it with a row.
 */
#ifndef MQLUA_PROPERTIES_H
#define MQLUA_PROPERTIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <mosquitto.h>

/* Converts the table at idx (nil or absent: NULL) to a new property list valid for
 * command (CMD_CONNECT, CMD_PUBLISH, CMD_SUBSCRIBE, ..., CMD_WILL from mqtt_protocol.h).
 * Raises a Lua error naming argname and the offending property (unknown name, wrong
 * type, not allowed for that packet). The caller frees the list with
 * mosquitto_property_free_all(). */
mosquitto_property *properties_check(lua_State *L, int idx, int command, const char *argname);

/* Pushes a table of the properties in props (an empty table for NULL). */
void properties_push(lua_State *L, const mosquitto_property *props);

/* Flat bytes for props (NULL, 0 for an empty list); the caller frees *out. 0 or errno. */
int properties_encode(const mosquitto_property *props, unsigned char **out, size_t *len);
/* The inverse of properties_encode; NULL for len 0 or bytes that do not decode. */
mosquitto_property *properties_decode(const unsigned char *buf, size_t len);
/* properties_decode for a message that waited `waited` seconds since it was encoded:
 * its MessageExpiryInterval is reduced by that much; *expired is set when it ran out. */
mosquitto_property *properties_decode_aged(const unsigned char *buf, size_t len, uint32_t waited, bool *expired);

/* The name paho gives command's packet type ("PUBLISH", "WILLMESSAGE"...). */
const char *properties_packet_name(int command);

/* paho's clean_start default for connect(): clean only on the first connection. */
#define MQLUA_CLEAN_START_FIRST_ONLY 3

/* Sets PacketTypes, Properties and MQTT_CLEAN_START_FIRST_ONLY in the module table on top. */
void properties_open(lua_State *L);

#endif
