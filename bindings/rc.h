/*
 * rc.h - result codes as scripts see them: paho's MQTT_ERR_* numbers, their
 * words, and the translation from libmosquitto's MOSQ_ERR_* values.
 */
#ifndef MQLUA_RC_H
#define MQLUA_RC_H

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

#endif
