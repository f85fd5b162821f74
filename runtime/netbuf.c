/*
 * netbuf.c - chunked reads and batched writes of client sockets (netbuf.h).
 *
 * One entry per file descriptor, indexed by fd. Its input buffer is taken
 * when a drain first fills it and given back when it is empty at netbuf_end;
 * its output buffer is taken by the first held write and given back when a
 * flush empties it. Idle clients hold neither; the last buffer given back is
 * kept for the next one instead of freed (no malloc and free of 64 KiB per
 * wakeup, nor per reconnect).
 */
#include "netbuf.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct netbuf {
	char *data;
	size_t off, len;      /* input: bytes data[off..len) are waiting */
	char *out;
	size_t out_off, out_len;   /* output: bytes out[out_off..out_len) are held */
	bool queued;          /* counted in out_fds */
	bool held;            /* writes may be held (a client socket on the loop) */
	bool wakeup;          /* libmosquitto's wake-up socket: writes are dropped */
};

static struct netbuf *bufs;   /* by fd */
static int nbufs;
static int draining = -1;     /* the fd whose reads fill a buffer */
static int holding;           /* > 0 while the loop runs: writes wait for its flush */
static int out_fds;           /* descriptors with output held */
static char *spare;           /* an empty buffer's memory, for the next one */

unsigned long long netbuf_socket_reads;
unsigned long long netbuf_socket_writes;
unsigned long long netbuf_wakeups_dropped;

static struct netbuf *buf_of(int fd)
{
	return fd >= 0 && fd < nbufs ? &bufs[fd] : NULL;
}

/* fd's entry, the table grown if need be; NULL when out of memory. */
static struct netbuf *slot(int fd)
{
	if (fd < 0)
		return NULL;
	if (fd >= nbufs) {
		int n = fd + 16;
		struct netbuf *grown = realloc(bufs, (size_t)n * sizeof *grown);
		if (!grown)
			return NULL;
		memset(grown + nbufs, 0, (size_t)(n - nbufs) * sizeof *grown);
		bufs = grown;
		nbufs = n;
	}
	return &bufs[fd];
}

static char *take_mem(void)
{
	char *p = spare ? spare : malloc(NETBUF_SIZE);
	spare = NULL;
	return p;
}

static void give_mem(char *p)
{
	if (!spare)
		spare = p;
	else
		free(p);
}

/* fd's input buffer holds nothing any more. */
static void release_in(struct netbuf *b)
{
	give_mem(b->data);
	b->data = NULL;
	b->off = b->len = 0;
}

/* fd's output buffer holds nothing any more. */
static void release_out(struct netbuf *b)
{
	if (b->queued)
		out_fds--;
	b->queued = false;
	give_mem(b->out);
	b->out = NULL;
	b->out_off = b->out_len = 0;
}

int netbuf_begin(int fd)
{
	int prev = draining;
	draining = fd;
	return prev;
}

void netbuf_end(int fd, int prev)
{
	struct netbuf *b = buf_of(fd);
	if (b && b->off == b->len)
		release_in(b);
	draining = prev;
}

size_t netbuf_pending(int fd)
{
	struct netbuf *b = buf_of(fd);
	return b ? b->len - b->off : 0;
}

/* Serves up to n waiting bytes of b. libmosquitto asks for 1 byte at a time
 * for a packet's header: those are copied without a call to memcpy. */
static inline ssize_t take(struct netbuf *b, void *buf, size_t n)
{
	size_t k = b->len - b->off < n ? b->len - b->off : n;
	const char *src = b->data + b->off;
	b->off += k;
	if (k <= 8) {
		for (size_t i = 0; i < k; i++)
			((char *)buf)[i] = src[i];
	} else {
		memcpy(buf, src, k);
	}
	return (ssize_t)k;
}

/* The buffer is empty: fill it from the socket being drained, or read
 * straight through. Kept out of line so that serving from the buffer saves
 * no registers. */
__attribute__((noinline))
static ssize_t fill(int fd, void *buf, size_t n, ssize_t (*real_read)(int, void *, size_t))
{
	struct netbuf *b = slot(fd);
	if (fd < 0 || fd != draining || !b)
		return real_read(fd, buf, n);
	netbuf_socket_reads++;
	if (n >= NETBUF_SIZE || (!b->data && !(b->data = take_mem())))
		return real_read(fd, buf, n);   /* straight into the caller's memory */
	ssize_t got = real_read(fd, b->data, NETBUF_SIZE);
	if (got <= 0)
		return got;   /* end of stream or an error, errno as read left it */
	b->off = 0;
	b->len = (size_t)got;
	return take(b, buf, n);
}

ssize_t netbuf_read(int fd, void *buf, size_t n, ssize_t (*real_read)(int, void *, size_t))
{
	struct netbuf *b = buf_of(fd);
	if (b && b->off < b->len)
		return take(b, buf, n);
	return fill(fd, buf, n, real_read);
}

/* ---- writes ---- */

/* Writes what b holds for fd, as far as the socket takes it: 0 when all is
 * out, 1 when the socket is full (the rest stays), -1 on an error (the rest
 * is dropped: the connection is gone; errno says why). */
static int flush(struct netbuf *b, int fd)
{
	while (b->out_off < b->out_len) {
		ssize_t w = send(fd, b->out + b->out_off, b->out_len - b->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w >= 0) {
			netbuf_socket_writes++;
			b->out_off += (size_t)w;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 1;
		int e = errno;
		release_out(b);
		errno = e;
		return -1;
	}
	release_out(b);
	return 0;
}

void netbuf_hold(int fd)
{
	struct netbuf *b = slot(fd);
	if (b)
		b->held = true;
}

void netbuf_loop_enter(void)
{
	holding++;
}

void netbuf_loop_leave(void)
{
	if (--holding == 0)
		netbuf_flush_all();
}

size_t netbuf_out_pending(int fd)
{
	struct netbuf *b = buf_of(fd);
	return b ? b->out_len - b->out_off : 0;
}

int netbuf_flush(int fd)
{
	struct netbuf *b = buf_of(fd);
	return b && b->out_off < b->out_len ? flush(b, fd) : 0;
}

bool netbuf_flush_all(void)
{
	bool left = false;
	for (int fd = 0; out_fds > 0 && fd < nbufs; fd++)
		if (bufs[fd].out_off < bufs[fd].out_len && flush(&bufs[fd], fd) == 1)
			left = true;
	return left;
}

ssize_t netbuf_write(int fd, const void *buf, size_t n, ssize_t (*real_write)(int, const void *, size_t))
{
	struct netbuf *b = buf_of(fd);
	if (!b || n == 0)
		return real_write(fd, buf, n);
	if (b->wakeup && n == 1) {
		netbuf_wakeups_dropped++;
		return 1;
	}
	bool pending = b->out_off < b->out_len;
	if (!b->held || (!holding && !pending))
		return real_write(fd, buf, n);
	if (pending && b->out_len + n > NETBUF_OUT) {
		/* full: what is held goes first, and this write waits if it cannot */
		int rc = flush(b, fd);
		if (rc != 0) {
			if (rc == 1)
				errno = EAGAIN;
			return -1;
		}
		pending = false;
	}
	if (!pending && (n >= NETBUF_OUT || !holding))
		return real_write(fd, buf, n);
	if (!b->out && !(b->out = take_mem()))
		return real_write(fd, buf, n);
	if (!b->queued) {
		out_fds++;
		b->queued = true;
		b->out_off = b->out_len = 0;
	}
	memcpy(b->out + b->out_len, buf, n);
	b->out_len += n;
	return (ssize_t)n;
}

/* The held output of a socket being closed goes out first (libmosquitto
 * closes right after writing DISCONNECT): waiting up to a second for room. */
static void flush_before_close(struct netbuf *b, int fd)
{
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (flush(b, fd) == 1) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= 1000) {
			release_out(b);
			return;
		}
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		poll(&p, 1, (int)(1000 - ms));
	}
}

void netbuf_close(int fd)
{
	struct netbuf *b = buf_of(fd);
	if (!b)
		return;
	if (b->out_off < b->out_len)
		flush_before_close(b, fd);
	release_out(b);
	/* the number may come back as another file: nothing of this one may be read from it */
	release_in(b);
	b->held = b->wakeup = false;
	if (fd == draining)
		draining = -1;
}

void netbuf_mark_wakeup(int fd)
{
	struct netbuf *b = slot(fd);
	if (b)
		b->wakeup = true;
}

/* A forked child must not send the parent's held output (it closes the
 * inherited descriptors before exec): it forgets it. */
static void forget_after_fork(void)
{
	for (int fd = 0; fd < nbufs; fd++) {
		bufs[fd].out_off = bufs[fd].out_len = 0;
		bufs[fd].queued = false;
	}
	out_fds = 0;
	holding = 0;
}

/* At exit, what the loop still holds goes out. */
static void flush_at_exit(void)
{
	for (int fd = 0; out_fds > 0 && fd < nbufs; fd++)
		if (bufs[fd].out_off < bufs[fd].out_len)
			flush_before_close(&bufs[fd], fd);
}

__attribute__((constructor))
static void netbuf_init(void)
{
	pthread_atfork(NULL, NULL, forget_after_fork);
	atexit(flush_at_exit);
}
