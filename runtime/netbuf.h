/*
 * netbuf.h - reading a client's socket in large chunks under libmosquitto.
 *
 * libmosquitto reads every packet with three read() calls (the command byte,
 * the remaining length, the rest). While a client's socket is being drained
 * (netbuf_begin .. netbuf_end), the first of those reads fills a buffer of
 * NETBUF_SIZE bytes with one system call and later ones are served from it.
 * libmosquitto's read() and close() reach netbuf_read() and netbuf_close()
 * through runtime/interpose.c, which only the mqlua executable links; where it
 * is not linked (mqlua.so, the unit tests) nothing is ever buffered and every
 * function here is a cheap no-op.
 *
 * Bytes in the buffer are invisible to poll(): whoever calls netbuf_begin
 * must keep reading until netbuf_pending() is 0.
 */
#ifndef MQLUA_NETBUF_H
#define MQLUA_NETBUF_H

#include <stddef.h>
#include <sys/types.h>

#define NETBUF_SIZE 65536

/* Reads on fd fill the buffer from now on; returns the fd that was being
 * drained before (a nested drain), for netbuf_end. */
int netbuf_begin(int fd);
/* Reads on fd no longer fill the buffer (what it holds is still served);
 * drain `prev` again. */
void netbuf_end(int fd, int prev);
/* Bytes read from fd's socket that nobody has taken yet. */
size_t netbuf_pending(int fd);

/* System calls that read a socket being drained (the chunk fills and the
 * reads too large for a chunk), since the process started. */
extern unsigned long long netbuf_socket_reads;

/* read() and close() as interpose.c forwards them; real_read/real_close are
 * the C library's. */
ssize_t netbuf_read(int fd, void *buf, size_t n, ssize_t (*real_read)(int, void *, size_t));
void netbuf_close(int fd);

#endif
