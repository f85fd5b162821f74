/*
 * websocket.h - the client side of RFC 6455 as the relay needs it: the
 * opening handshake (request text, checking the server's answer) and frame
 * headers. No I/O here: runtime/relay.c moves the bytes.
 */
#ifndef MQLUA_WEBSOCKET_H
#define MQLUA_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	WS_OP_CONT = 0x0, WS_OP_TEXT = 0x1, WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8, WS_OP_PING = 0x9, WS_OP_PONG = 0xA
};

#define WS_KEY_LEN 24          /* base64 of 16 random bytes */
#define WS_MAX_HEADER 14       /* 2 + 8 length bytes + 4 mask bytes */

/* Fills key (WS_KEY_LEN + 1 bytes) with a fresh Sec-WebSocket-Key. */
void ws_make_key(char *key);

/* Writes the upgrade request for host:port and path, subprotocol "mqtt",
 * with the extra "Name: value" headers (one replaces a default header of the
 * same name). Returns its length, or 0 if it does not fit in n bytes. */
size_t ws_request(char *out, size_t n, const char *host, int port, bool tls, const char *path,
                  const char *const *headers, int nheaders, const char *key);

/* Checks the server's answer in buf[0..len). Returns the length of the
 * response head once it is complete and accepted, 0 while incomplete, -1
 * when refused, with the reason in words in err. */
long ws_check_response(const char *buf, size_t len, const char *key, char *err, size_t errlen);

/* Writes the header of a frame with fin set and payload length len into out
 * (WS_MAX_HEADER bytes), masked with mask when mask is not NULL. Returns the
 * header's length. */
size_t ws_frame_header(unsigned char *out, int opcode, uint64_t len, const unsigned char *mask);

/* A frame header being read: ws_parse_header returns its length once
 * complete (filling h), 0 if more bytes are needed. */
struct ws_header {
	bool fin;
	int opcode;
	bool masked;
	unsigned char mask[4];
	uint64_t len;
};
size_t ws_parse_header(const unsigned char *buf, size_t avail, struct ws_header *h);

#endif
