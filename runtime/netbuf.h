/*
 * netbuf.h - reading and writing client sockets in large chunks under
 * libmosquitto, which makes a system call for every piece of every packet.
 *
 * Reads: libmosquitto reads every packet with three read() calls (the command
 * byte, the remaining length, the rest). While a client's socket is being
 * drained (netbuf_begin .. netbuf_end), the first of those reads fills a
 * buffer of NETBUF_SIZE bytes with one system call and later ones are served
 * from it. Bytes in the buffer are invisible to poll(): whoever calls
 * netbuf_begin must keep reading until netbuf_pending() is 0.
 *
 * Writes: libmosquitto writes every packet with its own write() call, and
 * then a byte to a socket pair of its own, to wake a thread blocked in
 * mosquitto_loop(). While the loop runs, writes to a client socket are held
 * (netbuf_hold) and sent together before the loop sleeps, when the buffer is
 * full, and before the socket is closed. mqlua runs no thread in
 * mosquitto_loop() and nothing reads the pair: its writes are dropped.
 *
 * libmosquitto's read(), write(), close() and socketpair() reach this file
 * through runtime/interpose.c, which only the mqlua executable links; where
 * it is not linked (mqlua.so, the unit tests) nothing is ever buffered and
 * the functions here are cheap no-ops.
 */
#ifndef MQLUA_NETBUF_H
#define MQLUA_NETBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NETBUF_SIZE 65536   /* a buffer's memory; a read fills all of it */
#define NETBUF_OUT 16384    /* held output is sent once it would exceed this */

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
/* One-byte writes to libmosquitto's wake-up socket pair left out. */
extern unsigned long long netbuf_wakeups_dropped;
/* System calls that sent held output. */
extern unsigned long long netbuf_socket_writes;

/* read() and close() as interpose.c forwards them; real_read/real_close are
 * the C library's. */
ssize_t netbuf_read(int fd, void *buf, size_t n, ssize_t (*real_read)(int, void *, size_t));
void netbuf_close(int fd);
/* Writes to the client socket fd may be held while the loop runs (and sent
 * together by netbuf_flush_all before it sleeps): one system call for many
 * packets. Outside the loop (a script's main chunk, code run at exit) a write
 * goes straight out unless something is held before it. */
void netbuf_hold(int fd);
/* loop_run_once brackets its work with these; leaving the outermost flushes. */
void netbuf_loop_enter(void);
void netbuf_loop_leave(void);
/* Sends what is held for every socket, as far as each takes it; true when
 * some socket was full and keeps output (poll it for POLLOUT). */
bool netbuf_flush_all(void);
/* For one socket: 0 all sent, 1 the socket is full, -1 an error. */
int netbuf_flush(int fd);
/* Bytes held for fd. */
size_t netbuf_out_pending(int fd);
/* fd is the write end of libmosquitto's wake-up socket pair. */
void netbuf_mark_wakeup(int fd);
ssize_t netbuf_write(int fd, const void *buf, size_t n, ssize_t (*real_write)(int, const void *, size_t));

#endif
