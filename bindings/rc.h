/*
 * rc.h - result codes as scripts see them: paho's MQTT_ERR_* numbers, their
 * words, the translation from libmosquitto's MOSQ_ERR_* values, and MQTT v5
 * reason codes as paho's ReasonCode values.
 */
#ifndef MQLUA_RC_H
#define MQLUA_RC_H

#include <lua.h>

enum {
	RC_SUCCESS = 0, RC_NOMEM = 1, RC_PROTOCOL = 2, RC_INVAL = 3, RC_NO_CONN = 4,
	RC_CONN_REFUSED = 5, RC_NOT_FOUND = 6, RC_CONN_LOST = 7, RC_TLS = 8,
	RC_PAYLOAD_SIZE = 9, RC_NOT_SUPPORTED = 10, RC_AUTH = 11, RC_ACL_DENIED = 12,
	RC_UNKNOWN = 13, RC_ERRNO = 14, RC_QUEUE_SIZE = 15, RC_KEEPALIVE = 16
};

/* paho's code for a libmosquitto result (unknown host and proxy errors become RC_ERRNO). */
int rc_from_mosq(int mosq_rc);
const char *rc_error_string(int rc);
const char *rc_connack_string(int connack);

/* reasoncode.c: paho's ReasonCode and CallbackAPIVersion */
/* Pushes a ReasonCode of value for packet_type (paho's PacketTypes numbers). */
void reasoncode_push(lua_State *L, int packet_type, int value);
/* paho's name of value in packet_type (from another packet type if it has none). */
const char *reasoncode_name(int packet_type, int value);
/* The v5 reason paho reports for a v3 CONNACK return code (1 -> 132 ...). */
int reasoncode_from_connack(int connack);
/* The DISCONNECT reason paho reports for a local disconnection with result rc. */
int reasoncode_from_rc(int rc);
/* 1 or 2 for mqtt.CallbackAPIVersion.VERSION1/VERSION2 at idx, else 0. */
int callback_api_version(lua_State *L, int idx);
/* Pushes mqtt.CallbackAPIVersion.VERSION1 or VERSION2 (version 1 or 2). */
void callback_api_version_push(lua_State *L, int version);
/* Sets ReasonCode, ReasonCodes and CallbackAPIVersion in the table on top. */
void reasoncode_open(lua_State *L);

#endif
