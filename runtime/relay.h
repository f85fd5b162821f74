/*
 * relay.h - MQTT over WebSockets for libmosquitto, which has no WebSocket
 * client: a loopback SOCKS5 listener on the shared loop that libmosquitto
 * connects through (mosquitto_socks5_set with a random per-relay user and
 * password, so no other local process can use it). For each connection it
 * opens the target libmosquitto asked for (TCP, then TLS for wss), does the
 * WebSocket upgrade, and carries MQTT bytes in binary frames both ways, with
 * bounded buffers: a side is not read while the other side's buffer is full.
 * No Lua in here; bindings/client_transport.c gives it a Lua face.
 */
#ifndef MQLUA_RELAY_H
#define MQLUA_RELAY_H

#include <stdbool.h>
#include <stddef.h>

struct relay;

/* What the relay does with each connection; strings are copied. */
struct relay_tls {
	const char *ca_certs;      /* NULL: the system's CAs */
	const char *certfile, *keyfile, *keyfile_password;
	int cert_reqs;             /* 0: no verification (CERT_NONE) */
	const char *tls_version;   /* "tlsv1.2" (default) or "tlsv1.3": the minimum */
	const char *ciphers;
};

/* Opens the listener on 127.0.0.1 (a free port). NULL with the reason in err. */
struct relay *relay_new(char *err, size_t errlen);
/* Closes the listener and every connection at once. */
void relay_free(struct relay *r);

/* The address, user and password to give mosquitto_socks5_set. */
int relay_port(const struct relay *r);
const char *relay_user(const struct relay *r);
const char *relay_password(const struct relay *r);

/* The request path and extra "Name: value" headers of the upgrade. */
int relay_set_websocket(struct relay *r, const char *path, const char *const *headers, int nheaders);
/* Turns TLS on for the next connections (wss); NULL turns it off. */
int relay_set_tls(struct relay *r, const struct relay_tls *tls);
void relay_set_insecure(struct relay *r, bool insecure);

/* Words for the last failure of a connection ("WebSocket upgrade refused:
 * HTTP 404 Not Found"), or NULL. relay_clear_error forgets it. */
const char *relay_error(const struct relay *r);
void relay_clear_error(struct relay *r);

#endif
