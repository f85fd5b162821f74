/*
 * relay_up.c - the broker's side of a relay session: connecting (every
 * address of the name in turn), the TLS handshake for wss (the tls_set CA,
 * the hostname check unless tls_insecure_set), the HTTP upgrade, and the
 * frames: libmosquitto's bytes go out as masked binary frames, the broker's
 * data frames (fragmented or not) come back as plain bytes, pings are
 * answered and a close ends the session.
 */
#include "runtime/relay_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* The last OpenSSL error (or the certificate check that failed) in words. */
static void tls_error(struct session *s)
{
	long verify = s->ssl ? SSL_get_verify_result(s->ssl) : X509_V_OK;
	unsigned long e = ERR_peek_last_error();
	char why[256] = "handshake failed";
	if (verify != X509_V_OK)
		snprintf(why, sizeof why, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
	else if (e)
		ERR_error_string_n(e, why, sizeof why);
	ERR_clear_error();
	set_error(s->r, "TLS error: %s", why);
}

/* Sends what it can of to_up to the broker. Returns > 0 on progress, 0 when
 * it must wait, -1 on an error. */
int write_up(struct session *s)
{
	if (!s->ssl) {
		ssize_t n = send(s->up_fd, s->to_up.p, s->to_up.len, MSG_NOSIGNAL);
		if (n > 0)
			buf_consume(&s->to_up, (size_t)n);
		return n < 0 && errno != EAGAIN && errno != EINTR ? -1 : (int)(n > 0);
	}
	s->ssl_want_write = false;
	int n = SSL_write(s->ssl, s->to_up.p, (int)(s->to_up.len > 1 << 20 ? 1 << 20 : s->to_up.len));
	if (n > 0) {
		buf_consume(&s->to_up, (size_t)n);
		return 1;
	}
	int e = SSL_get_error(s->ssl, n);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
		s->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
		return 0;
	}
	return -1;
}

/* Reads from the broker into dst. Returns the count, 0 when it must wait,
 * -1 at the end of the stream or on an error (errno 0 for a clean end), -2
 * on a TLS error (its words already in relay_error()). */
ssize_t read_up(struct session *s, void *dst, size_t n)
{
	if (!s->ssl) {
		ssize_t got = recv(s->up_fd, dst, n, 0);
		if (got > 0)
			return got;
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (got == 0)
			errno = 0;
		return -1;
	}
	int got = SSL_read(s->ssl, dst, (int)n);
	if (got > 0)
		return got;
	int e = SSL_get_error(s->ssl, got);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		s->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
		return 0;
	}
	if (e == SSL_ERROR_SSL) {
		tls_error(s);   /* e.g. the server's alert: it wanted a client certificate */
		return -2;
	}
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && got == 0))
		errno = 0;
	ERR_clear_error();
	return -1;
}

/* ---- the broker's side ---- */

/* Tries s->addr and the addresses after it until a connect is under way. */
static void connect_next(struct session *s)
{
	struct loop *loop = loop_default();
	int err = ECONNREFUSED;
	for (; s->addr; s->addr = s->addr->ai_next) {
		int fd = socket(s->addr->ai_family, s->addr->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                s->addr->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, s->addr->ai_addr, s->addr->ai_addrlen) == 0 || errno == EINPROGRESS) {
			s->up_fd = fd;
			loop_io_init(&s->up_io, fd, s->up_io.cb, s);
			s->up_io.ref = false;
			loop_io_start(loop, &s->up_io, POLLOUT);
			return;
		}
		err = errno;
		close(fd);
	}
	set_error(s->r, "%s", strerror(err));
	session_fail(s, err == ECONNREFUSED ? 5 : err == ENETUNREACH ? 3 : 4);
}

void start_connect(struct session *s)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	char port[16];
	snprintf(port, sizeof port, "%d", s->port);
	s->st = S_CONNECTING;
	int rc = getaddrinfo(s->host, port, &hints, &s->addrs);
	if (rc != 0) {
		set_error(s->r, "cannot resolve host '%s': %s", s->host, gai_strerror(rc));
		session_fail(s, 4);
		return;
	}
	s->addr = s->addrs;
	connect_next(s);
}

static void send_upgrade(struct session *s)
{
	struct relay *r = s->r;
	ws_make_key(s->key);
	size_t n = ws_request((char *)s->to_up.p, BUF_CAP, s->host, s->port, r->ssl_ctx != NULL,
	                      r->path ? r->path : "/mqtt", (const char *const *)r->headers, r->nheaders, s->key);
	if (n == 0) {
		set_error(r, "WebSocket upgrade: the request headers are too long");
		session_fail(s, 1);
		return;
	}
	s->to_up.len = n;
	s->st = S_UPGRADE;
}

/* The TCP connection to the broker is up: TLS next, or the upgrade. */
static void connected_up(struct session *s)
{
	struct relay *r = s->r;
	if (!r->ssl_ctx) {
		send_upgrade(s);
		return;
	}
	s->ssl = SSL_new(r->ssl_ctx);
	if (!s->ssl) {
		tls_error(s);
		session_fail(s, 1);
		return;
	}
	SSL_set_fd(s->ssl, s->up_fd);
	SSL_set_mode(s->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	unsigned char ip[16];
	bool literal = inet_pton(AF_INET, s->host, ip) == 1 || inet_pton(AF_INET6, s->host, ip) == 1;
	if (!literal)
		SSL_set_tlsext_host_name(s->ssl, s->host);
	if (r->cert_reqs != 0 && !r->insecure) {
		X509_VERIFY_PARAM *param = SSL_get0_param(s->ssl);
		if (literal)
			X509_VERIFY_PARAM_set1_ip_asc(param, s->host);
		else
			X509_VERIFY_PARAM_set1_host(param, s->host, 0);
	}
	s->st = S_TLS;
}

void connect_result(struct session *s, int err)
{
	loop_io_stop(loop_default(), &s->up_io);
	if (err == 0) {
		connected_up(s);
		return;
	}
	close(s->up_fd);
	s->up_fd = -1;
	s->addr = s->addr->ai_next;
	if (s->addr) {
		connect_next(s);
		return;
	}
	set_error(s->r, "%s", strerror(err));
	session_fail(s, err == ECONNREFUSED ? 5 : 4);
}

void tls_step(struct session *s)
{
	s->ssl_want_write = false;
	int rc = SSL_connect(s->ssl);
	if (rc == 1) {
		send_upgrade(s);
		return;
	}
	int e = SSL_get_error(s->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		s->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
		return;
	}
	tls_error(s);
	session_fail(s, 1);
}

/* Queues a control frame (pong or close) for the broker, masked. */
bool queue_control(struct session *s, int opcode, const unsigned char *payload, size_t len)
{
	if (up_space(&s->to_up) < WS_MAX_HEADER + len)
		return false;
	unsigned char mask[4];
	RAND_bytes(mask, 4);
	unsigned char *out = s->to_up.p + s->to_up.len;
	size_t h = ws_frame_header(out, opcode, len, mask);
	for (size_t i = 0; i < len; i++)
		out[h + i] = payload[i] ^ mask[i & 3];
	s->to_up.len += h + len;
	return true;
}

/* Passes on what the broker sent, as far as libmosquitto's buffer allows. */
void frames_step(struct session *s)
{
	struct buf *in = &s->from_up, *out = &s->to_down;
	while (in->len && !s->failed) {
		if (s->frame_left) {
			size_t n = in->len;
			if (n > s->frame_left)
				n = (size_t)s->frame_left;
			if (n > BUF_CAP - out->len)
				n = BUF_CAP - out->len;
			if (n == 0)
				return;
			memcpy(out->p + out->len, in->p, n);
			out->len += n;
			buf_consume(in, n);
			s->frame_left -= n;
			continue;
		}
		struct ws_header h;
		size_t hl = ws_parse_header(in->p, in->len, &h);
		if (hl == 0)
			return;
		const char *bad = NULL;
		if (h.masked)
			bad = "a masked frame from the server";
		else if (h.opcode >= WS_OP_CLOSE && (h.len > 125 || !h.fin))
			bad = "a fragmented or long control frame";
		else if (h.opcode == WS_OP_TEXT)
			bad = "a text frame (MQTT needs binary frames)";
		else if ((h.opcode == WS_OP_CONT) != s->in_message && h.opcode < WS_OP_CLOSE)
			bad = "a continuation frame out of place";
		else if (h.opcode > WS_OP_PONG || (h.opcode > WS_OP_BINARY && h.opcode < WS_OP_CLOSE))
			bad = "an unknown opcode";
		if (bad) {
			set_error(s->r, "WebSocket protocol error: the broker sent %s", bad);
			queue_control(s, WS_OP_CLOSE, (const unsigned char *)"\x03\xea", 2);   /* 1002 */
			session_fail(s, 1);
			return;
		}
		if (h.opcode < WS_OP_CLOSE) {
			s->in_message = !h.fin;
			s->frame_left = h.len;
			buf_consume(in, hl);
			continue;
		}
		if (in->len < hl + h.len)
			return;
		const unsigned char *payload = in->p + hl;
		if (h.opcode == WS_OP_PING) {
			if (!queue_control(s, WS_OP_PONG, payload, (size_t)h.len))
				return;   /* no room for the pong yet */
		} else if (h.opcode == WS_OP_CLOSE) {
			char code[64] = "";
			if (h.len >= 2)
				snprintf(code, sizeof code, " (code %d)", payload[0] << 8 | payload[1]);
			set_error(s->r, "WebSocket closed by the broker%s", code);
			queue_control(s, WS_OP_CLOSE, payload, h.len >= 2 ? 2 : 0);
			session_fail(s, 1);
			return;
		}
		buf_consume(in, hl + (size_t)h.len);
	}
}

/* Frames what libmosquitto wrote as one binary frame for the broker. */
int read_down_framed(struct session *s)
{
	size_t room = up_space(&s->to_up);
	if (room < WS_MAX_HEADER + 512)
		return 0;
	size_t want = room - WS_MAX_HEADER;
	if (want > 65536)
		want = 65536;
	unsigned char *out = s->to_up.p + s->to_up.len;
	/* read behind the largest header, then move the payload up to the real one */
	ssize_t n = recv(s->down_fd, out + WS_MAX_HEADER, want, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	unsigned char mask[4];
	RAND_bytes(mask, 4);
	size_t h = ws_frame_header(out, WS_OP_BINARY, (uint64_t)n, mask);
	memmove(out + h, out + WS_MAX_HEADER, (size_t)n);
	for (ssize_t i = 0; i < n; i++)
		out[h + (size_t)i] ^= mask[i & 3];
	s->to_up.len += h + (size_t)n;
	return 1;
}
