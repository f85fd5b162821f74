/*
 * relay.c - the WebSocket relay between libmosquitto and a broker (see
 * relay.h). Each connection is a session that goes through these states:
 * SOCKS5 greeting, user/password and CONNECT request from libmosquitto;
 * the TCP connection to the target; the TLS handshake (wss); the HTTP
 * upgrade; then frames both ways until one side closes. The SOCKS5 success
 * reply is sent only once the WebSocket is open, so any failure before that
 * reaches libmosquitto as a failed connection attempt, with the words kept
 * in relay_error().
 */
#include "runtime/relay.h"
#include "runtime/loop.h"
#include "runtime/websocket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Each direction buffers at most this much; reading stops when it is full. */
#define BUF_CAP (256 * 1024)
/* A session closing on its own sends what it still has for this long at most. */
#define DRAIN_TIMEOUT 5.0

struct buf {
	unsigned char *p;
	size_t len;
};

enum state { S_HELLO, S_AUTH, S_REQUEST, S_CONNECTING, S_TLS, S_UPGRADE, S_OPEN, S_DRAIN };

struct session {
	struct relay *r;
	struct session *next;
	enum state st;
	bool failed;                 /* sending its last words to libmosquitto, then closed */
	int down_fd, up_fd;          /* libmosquitto's side, the broker's side */
	struct loop_io down_io, up_io;
	struct loop_timer drain_timer;
	SSL *ssl;
	bool ssl_want_write;
	struct addrinfo *addrs, *addr;
	char host[256];
	int port;
	char key[WS_KEY_LEN + 1];
	struct buf from_down, to_up, from_up, to_down;
	struct ws_header frame;      /* the data frame whose payload is being passed on */
	uint64_t frame_left;
	bool in_message;             /* a fragmented message is under way */
};

struct relay {
	int listen_fd;
	int port;
	struct loop_io listen_io;
	char user[33], password[33];
	char *path;
	char **headers;
	int nheaders;
	SSL_CTX *ssl_ctx;            /* NULL: plain ws */
	char *keyfile_password;
	int cert_reqs;
	bool insecure;
	char error[400];
	struct session *sessions;
};

static void session_pump(struct session *s);

/* ---- small helpers ---- */

static void set_error(struct relay *r, const char *fmt, const char *a, const char *b)
{
	snprintf(r->error, sizeof r->error, fmt, a, b);
}

static void random_hex(char *out, size_t nbytes)
{
	unsigned char raw[32];
	if (RAND_bytes(raw, (int)nbytes) != 1)
		for (size_t i = 0; i < nbytes; i++)
			raw[i] = (unsigned char)(rand() & 0xff);
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", raw[i]);
}

static int buf_init(struct buf *b, size_t cap)
{
	b->len = 0;
	b->p = malloc(cap);
	return b->p ? 0 : -1;
}

static void buf_consume(struct buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static size_t up_space(const struct buf *b) { return BUF_CAP - b->len; }

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
	set_error(s->r, "TLS error: %s%s", why, "");
}

/* ---- the two sockets ---- */

/* Writes what it can of b to libmosquitto; -1 when that side is gone. */
static int write_down(struct session *s)
{
	ssize_t n = send(s->down_fd, s->to_down.p, s->to_down.len, MSG_NOSIGNAL);
	if (n > 0)
		buf_consume(&s->to_down, (size_t)n);
	return n < 0 && errno != EAGAIN && errno != EINTR ? -1 : (int)(n > 0);
}

/* Sends what it can of to_up to the broker. Returns > 0 on progress, 0 when
 * it must wait, -1 on an error. */
static int write_up(struct session *s)
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
 * -1 at the end of the stream or on an error (errno 0 for a clean end). */
static ssize_t read_up(struct session *s, void *dst, size_t n)
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
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && got == 0))
		errno = 0;
	ERR_clear_error();
	return -1;
}

/* ---- a session's end ---- */

static void close_up(struct session *s)
{
	struct loop *loop = loop_default();
	if (s->ssl) {
		SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->up_fd >= 0) {
		loop_io_stop(loop, &s->up_io);
		close(s->up_fd);
		s->up_fd = -1;
	}
	if (s->addrs) {
		freeaddrinfo(s->addrs);
		s->addrs = s->addr = NULL;
	}
}

static void session_free(struct session *s)
{
	struct loop *loop = loop_default();
	for (struct session **p = &s->r->sessions; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	close_up(s);
	if (s->down_fd >= 0) {
		loop_io_stop(loop, &s->down_io);
		close(s->down_fd);
	}
	loop_timer_stop(loop, &s->drain_timer);
	free(s->from_down.p);
	free(s->to_up.p);
	free(s->from_up.p);
	free(s->to_down.p);
	free(s);
}

static void drain_timeout(struct loop_timer *t)
{
	session_free(t->data);
}

/* Ends the session: the broker's side at once (after one last try to send
 * what is queued for it), libmosquitto's once it has what is queued for it.
 * Before the WebSocket is open, libmosquitto gets a SOCKS5 failure reply
 * (`socks_rep`). The words, if any, are kept in relay_error(). */
static void session_fail(struct session *s, int socks_rep)
{
	if (s->up_fd >= 0 && s->to_up.len && s->st >= S_UPGRADE)
		write_up(s);
	close_up(s);
	if (s->st >= S_REQUEST && s->st < S_OPEN && s->to_down.len + 10 <= BUF_CAP) {
		static const unsigned char reply[10] = { 5, 1, 0, 1 };
		memcpy(s->to_down.p + s->to_down.len, reply, sizeof reply);
		s->to_down.p[s->to_down.len + 1] = (unsigned char)socks_rep;
		s->to_down.len += sizeof reply;
	}
	s->failed = true;
	loop_timer_start(loop_default(), &s->drain_timer, DRAIN_TIMEOUT, 0);
}

/* ---- SOCKS5 from libmosquitto ---- */

/* Appends raw bytes for libmosquitto. */
static void reply_down(struct session *s, const void *p, size_t n)
{
	memcpy(s->to_down.p + s->to_down.len, p, n);
	s->to_down.len += n;
}

static void start_connect(struct session *s);

/* Handles what libmosquitto sent so far in S_HELLO / S_AUTH / S_REQUEST. */
static void socks_step(struct session *s)
{
	unsigned char *p = s->from_down.p;
	size_t n = s->from_down.len;
	if (s->st == S_HELLO) {
		if (n < 2 || n < 2u + p[1])
			return;
		bool userpass = p[0] == 5 && memchr(p + 2, 2, p[1]) != NULL;
		reply_down(s, (unsigned char[]){ 5, userpass ? 2 : 0xff }, 2);
		buf_consume(&s->from_down, 2u + p[1]);
		if (!userpass) {
			s->failed = true;
			return;
		}
		s->st = S_AUTH;
		n = s->from_down.len;
	}
	if (s->st == S_AUTH) {
		if (n < 2 || n < 3u + p[1] || n < 3u + p[1] + p[2 + p[1]])
			return;
		size_t ulen = p[1], plen = p[2 + ulen];
		const char *user = (const char *)p + 2, *pass = (const char *)p + 3 + ulen;
		bool ok = ulen == strlen(s->r->user) && plen == strlen(s->r->password) &&
		          CRYPTO_memcmp(user, s->r->user, ulen) == 0 && CRYPTO_memcmp(pass, s->r->password, plen) == 0;
		reply_down(s, (unsigned char[]){ 1, ok ? 0 : 1 }, 2);
		buf_consume(&s->from_down, 3 + ulen + plen);
		if (!ok) {
			s->failed = true;
			return;
		}
		s->st = S_REQUEST;
		n = s->from_down.len;
	}
	if (s->st != S_REQUEST || n < 5)
		return;
	size_t alen = p[3] == 1 ? 4 : p[3] == 4 ? 16 : p[3] == 3 ? 1u + p[4] : 0;
	if (p[0] != 5 || p[1] != 1 || alen == 0) {
		set_error(s->r, "WebSocket relay: unexpected SOCKS5 request%s%s", "", "");
		session_fail(s, 7);
		return;
	}
	if (n < 4 + alen + 2)
		return;
	if (p[3] == 3) {
		memcpy(s->host, p + 5, p[4]);
		s->host[p[4]] = 0;
	} else {
		inet_ntop(p[3] == 1 ? AF_INET : AF_INET6, p + 4, s->host, sizeof s->host);
	}
	s->port = p[4 + alen] << 8 | p[5 + alen];
	buf_consume(&s->from_down, 4 + alen + 2);
	start_connect(s);
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
	snprintf(s->r->error, sizeof s->r->error, "%s", strerror(err));
	session_fail(s, err == ECONNREFUSED ? 5 : err == ENETUNREACH ? 3 : 4);
}

static void start_connect(struct session *s)
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
		set_error(r, "WebSocket upgrade: the request headers are too long%s%s", "", "");
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

static void tls_step(struct session *s)
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
static bool queue_control(struct session *s, int opcode, const unsigned char *payload, size_t len)
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
static void frames_step(struct session *s)
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
			set_error(s->r, "WebSocket protocol error: the broker sent %s%s", bad, "");
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
			set_error(s->r, "WebSocket closed by the broker%s%s", code, "");
			queue_control(s, WS_OP_CLOSE, payload, h.len >= 2 ? 2 : 0);
			session_fail(s, 1);
			return;
		}
		buf_consume(in, hl + (size_t)h.len);
	}
}

/* Frames what libmosquitto wrote as one binary frame for the broker. */
static int read_down_framed(struct session *s)
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

/* libmosquitto closed its side: say goodbye to the broker, then end. */
static void down_closed(struct session *s)
{
	loop_io_stop(loop_default(), &s->down_io);
	close(s->down_fd);
	s->down_fd = -1;
	if (s->st == S_OPEN) {
		queue_control(s, WS_OP_CLOSE, (const unsigned char *)"\x03\xe8", 2);   /* 1000 */
		s->st = S_DRAIN;
		loop_timer_start(loop_default(), &s->drain_timer, DRAIN_TIMEOUT, 0);
	} else {
		session_fail(s, 1);
	}
}

/* ---- driving a session ---- */

static void update_events(struct session *s)
{
	struct loop *loop = loop_default();
	if (s->down_fd >= 0) {
		bool want_read = !s->failed && (s->st < S_CONNECTING || (s->st == S_OPEN && up_space(&s->to_up) > WS_MAX_HEADER + 512));
		short ev = (short)((want_read ? POLLIN : 0) | (s->to_down.len ? POLLOUT : 0));
		if (ev == 0)
			loop_io_stop(loop, &s->down_io);
		else if (!loop_io_active(&s->down_io) || s->down_io.events != ev)
			loop_io_start(loop, &s->down_io, ev);
	}
	if (s->up_fd >= 0 && s->st != S_CONNECTING) {
		bool want_read = s->st != S_DRAIN && up_space(&s->from_up) > 0;
		bool want_write = s->ssl_want_write || (s->to_up.len && s->st >= S_UPGRADE);
		short ev = (short)((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0));
		if (ev == 0)
			loop_io_stop(loop, &s->up_io);
		else if (!loop_io_active(&s->up_io) || s->up_io.events != ev)
			loop_io_start(loop, &s->up_io, ev);
	}
}

/* Moves every byte that can move now, then watches what must be waited for.
 * May free s. */
static void session_pump(struct session *s)
{
	for (int progress = 1; progress;) {
		progress = 0;
		if (s->to_down.len && s->down_fd >= 0) {
			int rc = write_down(s);
			if (rc < 0) {
				s->to_down.len = 0;
				down_closed(s);
			}
			progress |= rc > 0;
		}
		if (s->up_fd >= 0 && s->st == S_TLS)
			tls_step(s);
		if (s->up_fd >= 0 && s->to_up.len && s->st >= S_UPGRADE) {
			int rc = write_up(s);
			if (rc < 0) {
				set_error(s->r, "WebSocket connection lost while sending: %s%s", strerror(errno), "");
				session_fail(s, 1);
			}
			progress |= rc > 0;
		}
		if (s->down_fd >= 0 && !s->failed && s->st < S_CONNECTING && s->from_down.len < 600) {
			ssize_t n = recv(s->down_fd, s->from_down.p + s->from_down.len, 600 - s->from_down.len, 0);
			if (n > 0) {
				s->from_down.len += (size_t)n;
				socks_step(s);
				progress = 1;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				down_closed(s);
			}
		}
		if (s->down_fd >= 0 && !s->failed && s->st == S_OPEN) {
			int rc = read_down_framed(s);
			if (rc < 0)
				down_closed(s);
			progress |= rc > 0;
		}
		if (s->up_fd >= 0 && !s->failed && (s->st == S_UPGRADE || s->st == S_OPEN) && up_space(&s->from_up)) {
			ssize_t n = read_up(s, s->from_up.p + s->from_up.len, up_space(&s->from_up));
			if (n > 0) {
				s->from_up.len += (size_t)n;
				progress = 1;
			} else if (n < 0) {
				if (s->st == S_UPGRADE)
					set_error(s->r, "WebSocket upgrade: the server closed the connection%s%s", "", "");
				else
					set_error(s->r, "WebSocket connection lost%s%s", errno ? ": " : "", errno ? strerror(errno) : "");
				session_fail(s, 1);
			}
		}
		if (s->st == S_UPGRADE && !s->failed && s->from_up.len) {
			char err[300];
			long head = ws_check_response((const char *)s->from_up.p, s->from_up.len, s->key, err, sizeof err);
			if (head < 0) {
				set_error(s->r, "%s%s", err, "");
				session_fail(s, 1);
			} else if (head > 0) {
				buf_consume(&s->from_up, (size_t)head);
				s->st = S_OPEN;
				s->r->error[0] = 0;
				reply_down(s, (unsigned char[]){ 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 }, 10);
				progress = 1;
			}
		}
		if (s->st == S_OPEN && !s->failed && s->from_up.len) {
			size_t before = s->from_up.len;
			frames_step(s);
			progress |= s->from_up.len != before;
		}
	}
	bool done = (s->failed && (s->down_fd < 0 || s->to_down.len == 0)) ||
	            (s->st == S_DRAIN && (s->up_fd < 0 || s->to_up.len == 0));
	if (done) {
		session_free(s);
		return;
	}
	update_events(s);
}

static void down_cb(struct loop_io *io, short revents)
{
	(void)revents;
	session_pump(io->data);
}

static void up_cb(struct loop_io *io, short revents)
{
	struct session *s = io->data;
	if (s->st == S_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(s->up_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == 0 && !(revents & POLLERR)) {
			loop_io_stop(loop_default(), &s->up_io);
			connected_up(s);
		} else {
			loop_io_stop(loop_default(), &s->up_io);
			close(s->up_fd);
			s->up_fd = -1;
			s->addr = s->addr->ai_next;
			if (s->addr) {
				connect_next(s);
			} else {
				snprintf(s->r->error, sizeof s->r->error, "%s", strerror(err ? err : ECONNREFUSED));
				session_fail(s, err == ECONNREFUSED ? 5 : 4);
			}
		}
	}
	session_pump(s);
}

static void accept_cb(struct loop_io *io, short revents)
{
	struct relay *r = io->data;
	(void)revents;
	int fd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct session *s = calloc(1, sizeof *s);
	if (!s || buf_init(&s->from_down, 600) || buf_init(&s->to_up, BUF_CAP) || buf_init(&s->from_up, BUF_CAP) ||
	    buf_init(&s->to_down, BUF_CAP)) {
		if (s) {
			free(s->from_down.p);
			free(s->to_up.p);
			free(s->from_up.p);
			free(s->to_down.p);
		}
		free(s);
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	s->r = r;
	s->down_fd = fd;
	s->up_fd = -1;
	s->st = S_HELLO;
	loop_io_init(&s->down_io, fd, down_cb, s);
	s->down_io.ref = false;
	loop_io_init(&s->up_io, -1, up_cb, s);
	s->up_io.ref = false;
	loop_timer_init(&s->drain_timer, drain_timeout, s);
	s->next = r->sessions;
	r->sessions = s;
	r->error[0] = 0;
	session_pump(s);
}

/* ---- the relay ---- */

struct relay *relay_new(char *err, size_t errlen)
{
	struct relay *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->cert_reqs = 2;
	r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(r->listen_fd, 8) != 0 ||
	    getsockname(r->listen_fd, (struct sockaddr *)&a, &alen) != 0) {
		snprintf(err, errlen, "cannot open the WebSocket relay on 127.0.0.1: %s", strerror(errno));
		if (r->listen_fd >= 0)
			close(r->listen_fd);
		free(r);
		return NULL;
	}
	r->port = ntohs(a.sin_port);
	random_hex(r->user, 16);
	random_hex(r->password, 16);
	loop_io_init(&r->listen_io, r->listen_fd, accept_cb, r);
	r->listen_io.ref = false;
	loop_io_start(loop_default(), &r->listen_io, POLLIN);
	return r;
}

static void free_headers(struct relay *r)
{
	for (int i = 0; i < r->nheaders; i++)
		free(r->headers[i]);
	free(r->headers);
	r->headers = NULL;
	r->nheaders = 0;
}

static void free_tls(struct relay *r)
{
	SSL_CTX_free(r->ssl_ctx);
	r->ssl_ctx = NULL;
	if (r->keyfile_password) {
		OPENSSL_cleanse(r->keyfile_password, strlen(r->keyfile_password));
		free(r->keyfile_password);
		r->keyfile_password = NULL;
	}
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	while (r->sessions)
		session_free(r->sessions);
	loop_io_stop(loop_default(), &r->listen_io);
	close(r->listen_fd);
	free(r->path);
	free_headers(r);
	free_tls(r);
	free(r);
}

int relay_port(const struct relay *r) { return r->port; }
const char *relay_user(const struct relay *r) { return r->user; }
const char *relay_password(const struct relay *r) { return r->password; }
const char *relay_error(const struct relay *r) { return r->error[0] ? r->error : NULL; }
void relay_clear_error(struct relay *r) { r->error[0] = 0; }
void relay_set_insecure(struct relay *r, bool insecure) { r->insecure = insecure; }

int relay_set_websocket(struct relay *r, const char *path, const char *const *headers, int nheaders)
{
	char *p = strdup(path);
	char **h = calloc((size_t)nheaders + 1, sizeof *h);
	if (!p || !h) {
		free(p);
		free(h);
		return -1;
	}
	for (int i = 0; i < nheaders; i++) {
		if (!(h[i] = strdup(headers[i]))) {
			while (i-- > 0)
				free(h[i]);
			free(h);
			free(p);
			return -1;
		}
	}
	free(r->path);
	free_headers(r);
	r->path = p;
	r->headers = h;
	r->nheaders = nheaders;
	return 0;
}

static int password_cb(char *buf, int size, int rwflag, void *userdata)
{
	const char *pw = userdata;
	(void)rwflag;
	if (!pw)
		return 0;
	int n = (int)strlen(pw);
	if (n >= size)
		n = size - 1;
	memcpy(buf, pw, (size_t)n);
	return n;
}

int relay_set_tls(struct relay *r, const struct relay_tls *t)
{
	free_tls(r);
	if (!t)
		return 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return -1;
	bool tls13 = t->tls_version && strcmp(t->tls_version, "tlsv1.3") == 0;
	SSL_CTX_set_min_proto_version(ctx, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	if (t->keyfile_password)
		r->keyfile_password = strdup(t->keyfile_password);
	SSL_CTX_set_default_passwd_cb(ctx, password_cb);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, r->keyfile_password);
	bool ok = (!t->ciphers || SSL_CTX_set_cipher_list(ctx, t->ciphers) == 1) &&
	          (t->ca_certs ? SSL_CTX_load_verify_locations(ctx, t->ca_certs, NULL) == 1
	                       : SSL_CTX_set_default_verify_paths(ctx) == 1) &&
	          (!t->certfile || (SSL_CTX_use_certificate_chain_file(ctx, t->certfile) == 1 &&
	                            SSL_CTX_use_PrivateKey_file(ctx, t->keyfile, SSL_FILETYPE_PEM) == 1));
	if (!ok) {
		SSL_CTX_free(ctx);
		return -1;
	}
	SSL_CTX_set_verify(ctx, t->cert_reqs == 0 ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	r->cert_reqs = t->cert_reqs;
	r->ssl_ctx = ctx;
	return 0;
}
