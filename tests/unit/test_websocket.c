/*
 * test_websocket.c - runtime/websocket.c: the upgrade request, the checks
 * of the server's answer (RFC 6455's own example key), frame headers at
 * each length encoding.
 */
#include "runtime/websocket.h"
#include "tests/unit/check.h"

#include <stdint.h>

/* RFC 6455 section 1.3's example: this key must be answered with this accept. */
static const char rfc_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char rfc_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static long check(const char *resp, char *err, size_t n)
{
	return ws_check_response(resp, strlen(resp), rfc_key, err, n);
}

static void test_accept_rfc_example(void)
{
	char err[200] = "", resp[400];
	snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	         "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n\x82\x01X", rfc_accept);
	CHECK_INT(check(resp, err, sizeof err), (long)strlen(resp) - 3);   /* the frame after the head stays */
	CHECK_STR(err, "");
}

static void test_refusals_in_words(void)
{
	char err[200];
	CHECK_INT(check("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", err, sizeof err), -1);
	CHECK_STR(err, "WebSocket upgrade refused: HTTP 404 Not Found");
	CHECK_INT(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\n"
	                "Sec-WebSocket-Protocol: mqtt\r\n\r\n", err, sizeof err), -1);
	CHECK_STR(err, "WebSocket upgrade refused: wrong Sec-WebSocket-Accept");
	char resp[300];
	snprintf(resp, sizeof resp, "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nsec-websocket-accept: %s\r\n\r\n", rfc_accept);
	CHECK_INT(check(resp, err, sizeof err), -1);
	CHECK_STR(err, "WebSocket upgrade refused: the server did not accept the subprotocol \"mqtt\"");
	CHECK_INT(check("SSH-2.0-OpenSSH\r\n\r\n", err, sizeof err), -1);
	CHECK_STR(err, "WebSocket upgrade refused: the server did not answer in HTTP");
	CHECK_INT(check("HTTP/1.1 101 Switching", err, sizeof err), 0);   /* incomplete: wait */
}

static void test_request_headers(void)
{
	char out[1024];
	const char *extra[] = { "Authorization: Bearer t", "origin: https://app" };
	size_t n = ws_request(out, sizeof out, "broker.local", 8080, false, "/ws", extra, 2, rfc_key);
	CHECK(n > 0 && n == strlen(out));
	CHECK(strncmp(out, "GET /ws HTTP/1.1\r\n", 18) == 0);
	CHECK(strstr(out, "\r\nHost: broker.local:8080\r\n"));
	CHECK(strstr(out, "\r\nSec-WebSocket-Protocol: mqtt\r\n"));
	CHECK(strstr(out, "\r\nSec-WebSocket-Version: 13\r\n"));
	CHECK(strstr(out, "\r\nAuthorization: Bearer t\r\n"));
	CHECK(strstr(out, "\r\norigin: https://app\r\n"));
	CHECK(!strstr(out, "Origin: http://"));   /* the script's header replaced the default */
	CHECK(strstr(out, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
	CHECK_INT(ws_request(out, 40, "broker.local", 8080, false, "/ws", extra, 2, rfc_key), 0);
}

static void test_frame_headers(void)
{
	unsigned char h[WS_MAX_HEADER], mask[4] = { 1, 2, 3, 4 };
	struct ws_header p;
	uint64_t lens[] = { 0, 125, 126, 65535, 65536, (uint64_t)5 << 32 };
	size_t sizes[] = { 6, 6, 8, 8, 14, 14 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		size_t n = ws_frame_header(h, WS_OP_BINARY, lens[i], mask);
		CHECK_INT(n, sizes[i]);
		CHECK_INT(ws_parse_header(h, n - 1, &p), 0);
		CHECK_INT(ws_parse_header(h, n, &p), n);
		CHECK(p.fin && p.masked && p.opcode == WS_OP_BINARY && p.len == lens[i]);
		CHECK(memcmp(p.mask, mask, 4) == 0);
	}
	CHECK_INT(ws_frame_header(h, WS_OP_PING, 3, NULL), 2);
	CHECK_INT(h[0], 0x89);
	CHECK_INT(h[1], 3);
}

static const struct check_case cases[] = {
	CHECK_CASE(test_accept_rfc_example),
	CHECK_CASE(test_refusals_in_words),
	CHECK_CASE(test_request_headers),
	CHECK_CASE(test_frame_headers),
};

int main(int argc, char **argv)
{
	return check_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
