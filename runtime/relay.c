/*
 * relay.c - the WebSocket relay between libmosquitto and a broker (see
 * relay.h). Each connection is a session that goes through these states:
 * SOCKS5 greeting, user/password and CONNECT request from libmosquitto;
 * the TCP connection to the target; the TLS handshake (wss); the HTTP
 * upgrade; then frames both ways until one side closes. The SOCKS5 success
 * reply is sent only once the WebSocket is open, so any failure before that
 * reaches libmosquitto as a failed connection attempt, with the words kept
 * in relay_error(). This file has the relay, a session's life and the
 * SOCKS5 side; relay_up.c the broker's side.
 */
#include "runtime/relay_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void session_pump(struct session *s);

/* ---- small helpers ---- */

void set_error(struct relay *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof r->error, fmt, ap);
	va_end(ap);
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



/* ---- the two sockets ---- */

/* Writes what it can of b to libmosquitto; -1 when that side is gone. */
static int write_down(struct session *s)
{
	ssize_t n = send(s->down_fd, s->to_down.p, s->to_down.len, MSG_NOSIGNAL);
	if (n > 0)
		buf_consume(&s->to_down, (size_t)n);
	return n < 0 && errno != EAGAIN && errno != EINTR ? -1 : (int)(n > 0);
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
void session_fail(struct session *s, int socks_rep)
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
		set_error(s->r, "WebSocket relay: unexpected SOCKS5 request");
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
				set_error(s->r, "WebSocket connection lost while sending: %s", strerror(errno));
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
				if (n == -2)
					;   /* tls_error() said why */
				else if (s->st == S_UPGRADE)
					set_error(s->r, "WebSocket upgrade: the server closed the connection");
				else
					set_error(s->r, "WebSocket connection lost%s%s", errno ? ": " : "", errno ? strerror(errno) : "");
				session_fail(s, 1);
			}
		}
		if (s->st == S_UPGRADE && !s->failed && s->from_up.len) {
			char err[300];
			long head = ws_check_response((const char *)s->from_up.p, s->from_up.len, s->key, err, sizeof err);
			if (head < 0) {
				set_error(s->r, "%s", err);
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
		if (err == 0 && (revents & POLLERR))
			err = ECONNREFUSED;
		connect_result(s, err);
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
