/*
 * loop.h - the single-threaded event loop every part of mqlua stands on.
 *
 * One poll() loop per process: file descriptors, a monotonic timer heap,
 * signals (delivered through a self-pipe, so they arrive as ordinary loop
 * events), deferred calls and "prepare" hooks that run just before the loop
 * sleeps. Handles are structs owned by their users (embedded in a client, a
 * timer userdata...); the loop only keeps pointers to the started ones. A
 * handle must be stopped before its memory is freed.
 *
 * The loop is alive while at least one started handle is referenced
 * (handle->ref, true by default) or loop_ref() was called more often than
 * loop_unref(). loop_run() returns when it is no longer alive or
 * loop_stop() was called.
 */
#ifndef MQLUA_LOOP_H
#define MQLUA_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <poll.h>

struct loop;

struct loop_io;
typedef void (*loop_io_cb)(struct loop_io *io, short revents);
struct loop_io {
	int fd;
	short events;            /* POLLIN / POLLOUT wanted */
	bool ref;                /* keeps the loop alive while started */
	loop_io_cb cb;
	void *data;
	int slot;                /* index in the loop's table, -1 when stopped */
	bool busy;               /* its callback is running: nested runs skip it */
};

struct loop_timer;
typedef void (*loop_timer_cb)(struct loop_timer *t);
struct loop_timer {
	int64_t due_ns;          /* monotonic time of the next expiry */
	int64_t repeat_ns;       /* 0 for a one-shot timer */
	bool ref;
	loop_timer_cb cb;
	void *data;
	int slot;                /* index in the heap, -1 when stopped */
	uint64_t seq;            /* start order, breaks ties between equal due times */
	bool busy;
};

/* A hook run at the start of every iteration, before poll() sleeps. */
struct loop_hook;
typedef void (*loop_hook_cb)(struct loop_hook *h);
struct loop_hook {
	loop_hook_cb cb;
	void *data;
	struct loop_hook *prev, *next;
	bool active;
};

typedef void (*loop_signal_cb)(int signo, void *data);
typedef void (*loop_defer_cb)(void *data);

/* The process-wide loop, created on first use. Never NULL (aborts on ENOMEM). */
struct loop *loop_default(void);

/* Monotonic clock in nanoseconds, and as seconds for scripts. */
int64_t loop_now_ns(void);
double loop_now(void);

void loop_io_init(struct loop_io *io, int fd, loop_io_cb cb, void *data);
/* Starts watching io->fd for `events`; calling it again updates the events. */
int loop_io_start(struct loop *loop, struct loop_io *io, short events);
void loop_io_stop(struct loop *loop, struct loop_io *io);
static inline bool loop_io_active(const struct loop_io *io) { return io->slot >= 0; }

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *data);
/* Arms (or re-arms) the timer to fire after `after` seconds, then every
 * `repeat` seconds if repeat > 0. */
void loop_timer_start(struct loop *loop, struct loop_timer *t, double after, double repeat);
void loop_timer_stop(struct loop *loop, struct loop_timer *t);
static inline bool loop_timer_active(const struct loop_timer *t) { return t->slot >= 0; }

void loop_hook_init(struct loop_hook *h, loop_hook_cb cb, void *data);
void loop_hook_start(struct loop *loop, struct loop_hook *h);
void loop_hook_stop(struct loop *loop, struct loop_hook *h);

/* Runs cb(data) once, at the start of the next iteration. Returns 0 or -1 (ENOMEM). */
int loop_defer(struct loop *loop, loop_defer_cb cb, void *data);

/* Delivers `signo` to cb on the loop thread; cb NULL restores the default
 * disposition. The handler itself only writes to a pipe and, if a
 * loop_signal_hook is installed, calls it (async-signal-safe code only). */
int loop_signal(struct loop *loop, int signo, loop_signal_cb cb, void *data);
extern void (*volatile loop_signal_hook)(int signo);

/* How many iterations (loop_run_once calls, nested ones included) ran so far. */
uint64_t loop_iterations(const struct loop *loop);

void loop_ref(struct loop *loop);
void loop_unref(struct loop *loop);
bool loop_alive(const struct loop *loop);

/* One iteration: run deferred calls and hooks, wait at most timeout seconds
 * (negative: until something happens) for I/O or the next timer, dispatch.
 * Returns the number of events dispatched. It may be called from inside a
 * callback (a blocking wait in a script handler): handles whose callback is
 * running are skipped by the nested iteration, so no callback re-enters
 * itself. */
int loop_run_once(struct loop *loop, double timeout);
/* Iterates while the loop is alive and loop_stop() has not been called. */
void loop_run(struct loop *loop);
void loop_stop(struct loop *loop);
bool loop_stopping(const struct loop *loop);
/* True while callbacks of this loop are running. */
bool loop_dispatching(const struct loop *loop);

#endif
