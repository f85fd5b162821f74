/*
 * websocket.c - RFC 6455 for the client end of the relay: the upgrade
 * request and the checks of the server's 101 answer (status, Upgrade,
 * Sec-WebSocket-Accept, the "mqtt" subprotocol), and frame headers.
 */
#include "runtime/websocket.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void ws_make_key(char *key)
{
	unsigned char raw[16];
	if (RAND_bytes(raw, sizeof raw) != 1) {
		for (size_t i = 0; i < sizeof raw; i++)
			raw[i] = (unsigned char)(i * 37 + 11);
	}
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
	key[WS_KEY_LEN] = 0;
}

/* The Sec-WebSocket-Accept value the server must send for key. */
static void expected_accept(const char *key, char *out)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char joined[WS_KEY_LEN + sizeof guid];
	unsigned char digest[SHA_DIGEST_LENGTH];
	snprintf(joined, sizeof joined, "%s%s", key, guid);
	SHA1((const unsigned char *)joined, strlen(joined), digest);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}

/* True when one of the script's headers has this name. */
static bool overridden(const char *name, const char *const *headers, int nheaders)
{
	size_t n = strlen(name);
	for (int i = 0; i < nheaders; i++)
		if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
			return true;
	return false;
}

size_t ws_request(char *out, size_t n, const char *host, int port, bool tls, const char *path,
                  const char *const *headers, int nheaders, const char *key)
{
	bool v6 = strchr(host, ':') != NULL;
	char hostport[300];
	snprintf(hostport, sizeof hostport, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
	char origin[320];
	snprintf(origin, sizeof origin, "%s://%s", tls ? "https" : "http", hostport);
	const char *defaults[][2] = {
		{ "Host", hostport }, { "Upgrade", "websocket" }, { "Connection", "Upgrade" },
		{ "Origin", origin }, { "Sec-WebSocket-Protocol", "mqtt" }, { "Sec-WebSocket-Version", "13" },
	};
	size_t len = 0;
	int w = snprintf(out, n, "GET %s HTTP/1.1\r\n", path);
	if (w < 0 || (size_t)w >= n)
		return 0;
	len = (size_t)w;
	for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
		if (overridden(defaults[i][0], headers, nheaders))
			continue;
		w = snprintf(out + len, n - len, "%s: %s\r\n", defaults[i][0], defaults[i][1]);
		if (w < 0 || (size_t)w >= n - len)
			return 0;
		len += (size_t)w;
	}
	for (int i = 0; i < nheaders; i++) {
		w = snprintf(out + len, n - len, "%s\r\n", headers[i]);
		if (w < 0 || (size_t)w >= n - len)
			return 0;
		len += (size_t)w;
	}
	w = snprintf(out + len, n - len, "Sec-WebSocket-Key: %s\r\n\r\n", key);
	if (w < 0 || (size_t)w >= n - len)
		return 0;
	return len + (size_t)w;
}

/* The value of header `name` in the head [p, end), trimmed, or NULL. */
static const char *header_value(const char *p, const char *end, const char *name, size_t *vlen)
{
	size_t n = strlen(name);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		p = eol + 1;
	}
	return NULL;
}

static bool value_is(const char *v, size_t vlen, const char *want)
{
	return v && vlen == strlen(want) && strncasecmp(v, want, vlen) == 0;
}

long ws_check_response(const char *buf, size_t len, const char *key, char *err, size_t errlen)
{
	const char *end = NULL;
	for (size_t i = 0; i + 3 < len; i++) {
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			end = buf + i + 4;
			break;
		}
	}
	if (!end) {
		if (len >= 16384) {
			snprintf(err, errlen, "WebSocket upgrade refused: the server's answer is too long");
			return -1;
		}
		return 0;
	}
	int status = 0;
	char reason[80] = "";
	if (sscanf(buf, "HTTP/1.%*d %d %79[^\r\n]", &status, reason) < 1) {
		snprintf(err, errlen, "WebSocket upgrade refused: the server did not answer in HTTP");
		return -1;
	}
	if (status != 101) {
		snprintf(err, errlen, "WebSocket upgrade refused: HTTP %d%s%s", status, reason[0] ? " " : "", reason);
		return -1;
	}
	const char *head = strchr(buf, '\n') + 1;
	size_t vlen = 0;
	const char *v = header_value(head, end, "Upgrade", &vlen);
	if (!value_is(v, vlen, "websocket")) {
		snprintf(err, errlen, "WebSocket upgrade refused: no 'Upgrade: websocket' in the answer");
		return -1;
	}
	char want[32];
	expected_accept(key, want);
	v = header_value(head, end, "Sec-WebSocket-Accept", &vlen);
	if (!v || vlen != strlen(want) || memcmp(v, want, vlen) != 0) {
		snprintf(err, errlen, "WebSocket upgrade refused: wrong Sec-WebSocket-Accept");
		return -1;
	}
	v = header_value(head, end, "Sec-WebSocket-Protocol", &vlen);
	if (!value_is(v, vlen, "mqtt")) {
		snprintf(err, errlen, "WebSocket upgrade refused: the server did not accept the subprotocol \"mqtt\"");
		return -1;
	}
	return (long)(end - buf);
}

size_t ws_frame_header(unsigned char *out, int opcode, uint64_t len, const unsigned char *mask)
{
	size_t n = 0;
	out[n++] = (unsigned char)(0x80 | opcode);
	unsigned char m = mask ? 0x80 : 0;
	if (len < 126) {
		out[n++] = m | (unsigned char)len;
	} else if (len <= 0xffff) {
		out[n++] = m | 126;
		out[n++] = (unsigned char)(len >> 8);
		out[n++] = (unsigned char)len;
	} else {
		out[n++] = m | 127;
		for (int i = 7; i >= 0; i--)
			out[n++] = (unsigned char)(len >> (8 * i));
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

size_t ws_parse_header(const unsigned char *buf, size_t avail, struct ws_header *h)
{
	if (avail < 2)
		return 0;
	h->fin = buf[0] & 0x80;
	h->opcode = buf[0] & 0x0f;
	h->masked = buf[1] & 0x80;
	size_t need = 2, lenbytes = 0;
	uint64_t len = buf[1] & 0x7f;
	if (len == 126)
		lenbytes = 2;
	else if (len == 127)
		lenbytes = 8;
	need += lenbytes + (h->masked ? 4 : 0);
	if (avail < need)
		return 0;
	if (lenbytes) {
		len = 0;
		for (size_t i = 0; i < lenbytes; i++)
			len = (len << 8) | buf[2 + i];
	}
	h->len = len;
	if (h->masked)
		memcpy(h->mask, buf + 2 + lenbytes, 4);
	return need;
}
