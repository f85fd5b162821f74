/*
 * netbuf.c - chunked reads of a client's socket (see netbuf.h).
 *
 * One buffer per file descriptor that has bytes waiting, indexed by fd. A
 * buffer is taken when a drain first fills it and given back when it is empty
 * at netbuf_end, so that idle clients hold none; the last one given back is
 * kept for the next drain rather than freed (no malloc and free of 64 KiB per
 * wakeup or per reconnect).
 */
#include "netbuf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct netbuf {
	char *data;
	size_t off, len;      /* bytes data[off..len) are waiting */
};

static struct netbuf *bufs;   /* by fd */
static int nbufs;
static int draining = -1;     /* the fd whose reads fill a buffer */
static char *spare;           /* an empty buffer's memory, for the next one */

unsigned long long netbuf_socket_reads;

static struct netbuf *buf_of(int fd)
{
	return fd >= 0 && fd < nbufs ? &bufs[fd] : NULL;
}

/* fd's buffer, made (with its data) if need be; NULL when out of memory,
 * and reads then simply go to the socket. */
static struct netbuf *make_buf(int fd)
{
	if (fd >= nbufs) {
		int n = fd + 16;
		struct netbuf *grown = realloc(bufs, (size_t)n * sizeof *grown);
		if (!grown)
			return NULL;
		memset(grown + nbufs, 0, (size_t)(n - nbufs) * sizeof *grown);
		bufs = grown;
		nbufs = n;
	}
	struct netbuf *b = &bufs[fd];
	if (!b->data) {
		b->data = spare ? spare : malloc(NETBUF_SIZE);
		spare = NULL;
	}
	return b->data ? b : NULL;
}

/* fd holds nothing any more (its memory kept as the spare, or freed). */
static void release(struct netbuf *b)
{
	if (!spare)
		spare = b->data;
	else
		free(b->data);
	*b = (struct netbuf){ 0 };
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
		release(b);
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
	struct netbuf *b;
	if (fd < 0 || fd != draining)
		return real_read(fd, buf, n);
	netbuf_socket_reads++;
	if (n >= NETBUF_SIZE || !(b = make_buf(fd)))
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

void netbuf_close(int fd)
{
	struct netbuf *b = buf_of(fd);
	/* the number may come back as another file: nothing of this one may be read from it */
	if (b)
		release(b);
	if (fd == draining)
		draining = -1;
}
