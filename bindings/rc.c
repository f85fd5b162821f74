/*
 * rc.c - see rc.h.
 */
#include "bindings/rc.h"

#include <mosquitto.h>

int rc_from_mosq(int mosq_rc)
{
	switch (mosq_rc) {
	case MOSQ_ERR_SUCCESS: return RC_SUCCESS;
	case MOSQ_ERR_NOMEM: return RC_NOMEM;
	case MOSQ_ERR_PROTOCOL: case MOSQ_ERR_MALFORMED_PACKET: case MOSQ_ERR_DUPLICATE_PROPERTY:
		return RC_PROTOCOL;
	case MOSQ_ERR_INVAL: case MOSQ_ERR_MALFORMED_UTF8: case MOSQ_ERR_QOS_NOT_SUPPORTED:
		return RC_INVAL;
	case MOSQ_ERR_NO_CONN: return RC_NO_CONN;
	case MOSQ_ERR_CONN_REFUSED: return RC_CONN_REFUSED;
	case MOSQ_ERR_NOT_FOUND: return RC_NOT_FOUND;
	case MOSQ_ERR_CONN_LOST: return RC_CONN_LOST;
	case MOSQ_ERR_TLS: case MOSQ_ERR_TLS_HANDSHAKE: return RC_TLS;
	case MOSQ_ERR_PAYLOAD_SIZE: case MOSQ_ERR_OVERSIZE_PACKET: return RC_PAYLOAD_SIZE;
	case MOSQ_ERR_NOT_SUPPORTED: return RC_NOT_SUPPORTED;
	case MOSQ_ERR_AUTH: return RC_AUTH;
	case MOSQ_ERR_ACL_DENIED: return RC_ACL_DENIED;
	case MOSQ_ERR_ERRNO: case MOSQ_ERR_EAI: case MOSQ_ERR_PROXY: case MOSQ_ERR_LOOKUP:
		return RC_ERRNO;
	case MOSQ_ERR_KEEPALIVE: return RC_KEEPALIVE;
	default: return RC_UNKNOWN;
	}
}

const char *rc_error_string(int rc)
{
	switch (rc) {
	case -1: return "Try again.";
	case RC_SUCCESS: return "No error.";
	case RC_NOMEM: return "Out of memory.";
	case RC_PROTOCOL: return "A network protocol error occurred when communicating with the broker.";
	case RC_INVAL: return "Invalid function arguments provided.";
	case RC_NO_CONN: return "The client is not currently connected.";
	case RC_CONN_REFUSED: return "The connection was refused.";
	case RC_NOT_FOUND: return "Message not found (internal error).";
	case RC_CONN_LOST: return "The connection was lost.";
	case RC_TLS: return "A TLS error occurred.";
	case RC_PAYLOAD_SIZE: return "Payload too large.";
	case RC_NOT_SUPPORTED: return "This feature is not supported.";
	case RC_AUTH: return "Authorisation failed.";
	case RC_ACL_DENIED: return "Access denied by ACL.";
	case RC_UNKNOWN: return "Unknown error.";
	case RC_ERRNO: return "Error defined by errno.";
	case RC_QUEUE_SIZE: return "Message queue full.";
	case RC_KEEPALIVE: return "Client or broker did not communicate in the keepalive interval.";
	default: return "Unknown error.";
	}
}

const char *rc_connack_string(int connack)
{
	switch (connack) {
	case 0: return "Connection Accepted.";
	case 1: return "Connection Refused: unacceptable protocol version.";
	case 2: return "Connection Refused: identifier rejected.";
	case 3: return "Connection Refused: broker unavailable.";
	case 4: return "Connection Refused: bad user name or password.";
	case 5: return "Connection Refused: not authorised.";
	default: return "Connection Refused: unknown reason.";
	}
}
