/*
 * relay_session.h - what runtime/relay.c (the relay, its sessions and the
 * SOCKS5 side facing libmosquitto) and runtime/relay_up.c (the broker's
 * side: TCP, TLS, the upgrade, frames) share. Private to those two files.
 */
#ifndef MQLUA_RELAY_SESSION_H
#define MQLUA_RELAY_SESSION_H

#include "runtime/loop.h"
#include "runtime/relay.h"
#include "runtime/websocket.h"

#include <netdb.h>
#include <openssl/ssl.h>
#include <string.h>
#include <sys/types.h>

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


static inline void buf_consume(struct buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static inline size_t up_space(const struct buf *b) { return BUF_CAP - b->len; }

/* relay.c */
/* Sets the words relay_error() returns, printf-style. */
__attribute__((format(printf, 2, 3)))
void set_error(struct relay *r, const char *fmt, ...);
/* Ends the session; before the WebSocket is open, libmosquitto gets SOCKS5
 * failure reply socks_rep. */
void session_fail(struct session *s, int socks_rep);

/* relay_up.c */
/* Resolves s->host and starts connecting to it (S_CONNECTING). */
void start_connect(struct session *s);
/* The connect under way finished (err 0) or failed: TLS or the upgrade
 * next, or the next address, or the end. */
void connect_result(struct session *s, int err);
/* One step of the TLS handshake (S_TLS). */
void tls_step(struct session *s);
/* Sends what it can of to_up: > 0 on progress, 0 to wait, -1 on an error. */
int write_up(struct session *s);
/* Reads from the broker: the count, 0 to wait, -1 at the end (errno 0) or on an
 * error, -2 on a TLS error (its words already set). */
ssize_t read_up(struct session *s, void *dst, size_t n);
/* Queues a masked control frame for the broker; false when there is no room yet. */
bool queue_control(struct session *s, int opcode, const unsigned char *payload, size_t len);
/* Passes the payload of the broker's frames on to libmosquitto, answering pings and closes. */
void frames_step(struct session *s);
/* Reads what libmosquitto wrote into one masked binary frame: 1 progress, 0 wait, -1 closed. */
int read_down_framed(struct session *s);

#endif
