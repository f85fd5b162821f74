/*
 * loop.c - poll() event loop: fd watchers, a binary timer heap on the
 * monotonic clock, signals through a self-pipe, deferred calls and prepare
 * hooks. See loop.h for the contract; nothing here knows about MQTT or Lua.
 */

#include "loop.h"
#include "netbuf.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct deferred {
	loop_defer_cb cb;
	void *data;
};

struct signal_slot {
	loop_signal_cb cb;
	void *data;
};

/* The ready set being dispatched by one (possibly nested) iteration. */
struct dispatch {
	struct loop_io **ready;
	int n;
	struct dispatch *outer;
};

/* Where one (possibly nested) run_hooks() goes next. */
struct hook_cursor {
	struct loop_hook *next;
	struct hook_cursor *outer;
};

struct loop {
	struct loop_io **ios;
	struct pollfd *pfds;
	int nios, capios;

	struct loop_timer **heap;
	int ntimers, captimers;
	uint64_t timer_seq;

	struct deferred *deferred;
	int ndeferred, capdeferred;

	struct loop_hook hooks;      /* list head */
	struct hook_cursor *hook_cursor; /* innermost run_hooks, NULL outside */

	int refs;                    /* explicit loop_ref() count */
	int active_refs;             /* started handles with ref == true */
	bool stop;
	int depth;                   /* nesting of loop_run_once */
	uint64_t iterations;         /* loop_run_once calls so far */
	struct dispatch *dispatch;   /* innermost ready set, NULL outside dispatch */

	int sigpipe[2];
	struct loop_io sigio;
	struct signal_slot signals[65];
};

void (*volatile loop_signal_hook)(int signo);
static int signal_write_fd = -1;

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q) {
		fputs("mqlua: out of memory\n", stderr);
		abort();
	}
	return q;
}

int64_t loop_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t loop_iterations(const struct loop *loop)
{
	return loop->iterations;
}

double loop_now(void)
{
	return (double)loop_now_ns() / 1e9;
}

struct loop *loop_default(void)
{
	static struct loop *def;
	if (!def) {
		def = xrealloc(NULL, sizeof *def);
		memset(def, 0, sizeof *def);
		def->hooks.next = def->hooks.prev = &def->hooks;
		def->sigpipe[0] = def->sigpipe[1] = -1;
	}
	return def;
}

/* ---- fd watchers ---- */

void loop_io_init(struct loop_io *io, int fd, loop_io_cb cb, void *data)
{
	memset(io, 0, sizeof *io);
	io->fd = fd;
	io->cb = cb;
	io->data = data;
	io->ref = true;
	io->slot = -1;
}

int loop_io_start(struct loop *loop, struct loop_io *io, short events)
{
	if (io->fd < 0)
		return -1;
	io->events = events;
	if (io->slot >= 0) {
		loop->pfds[io->slot].fd = io->fd;
		loop->pfds[io->slot].events = events;
		return 0;
	}
	if (loop->nios == loop->capios) {
		loop->capios = loop->capios ? loop->capios * 2 : 8;
		loop->ios = xrealloc(loop->ios, loop->capios * sizeof *loop->ios);
		loop->pfds = xrealloc(loop->pfds, loop->capios * sizeof *loop->pfds);
	}
	io->busy = false;
	io->slot = loop->nios++;
	loop->ios[io->slot] = io;
	loop->pfds[io->slot] = (struct pollfd){ .fd = io->fd, .events = events };
	if (io->ref)
		loop->active_refs++;
	return 0;
}

void loop_io_stop(struct loop *loop, struct loop_io *io)
{
	if (io->slot < 0)
		return;
	int last = --loop->nios;
	if (io->slot != last) {
		loop->ios[io->slot] = loop->ios[last];
		loop->pfds[io->slot] = loop->pfds[last];
		loop->ios[io->slot]->slot = io->slot;
	}
	io->slot = -1;
	if (io->ref)
		loop->active_refs--;
	/* a stopped watcher (perhaps about to be freed) must not be dispatched */
	for (struct dispatch *d = loop->dispatch; d; d = d->outer)
		for (int i = 0; i < d->n; i++)
			if (d->ready[i] == io)
				d->ready[i] = NULL;
}

/* ---- timers: a binary min-heap on (due_ns, seq) ---- */

static bool timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_set(struct loop *loop, int i, struct loop_timer *t)
{
	loop->heap[i] = t;
	t->slot = i;
}

static void heap_up(struct loop *loop, int i)
{
	struct loop_timer *t = loop->heap[i];
	while (i > 0) {
		int parent = (i - 1) / 2;
		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct loop *loop, int i)
{
	struct loop_timer *t = loop->heap[i];
	for (;;) {
		int child = 2 * i + 1;
		if (child >= loop->ntimers)
			break;
		if (child + 1 < loop->ntimers && timer_before(loop->heap[child + 1], loop->heap[child]))
			child++;
		if (!timer_before(loop->heap[child], t))
			break;
		heap_set(loop, i, loop->heap[child]);
		i = child;
	}
	heap_set(loop, i, t);
}

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *data)
{
	memset(t, 0, sizeof *t);
	t->cb = cb;
	t->data = data;
	t->ref = true;
	t->slot = -1;
}

static void timer_insert(struct loop *loop, struct loop_timer *t, int64_t due_ns)
{
	t->due_ns = due_ns;
	t->seq = loop->timer_seq++;
	if (loop->ntimers == loop->captimers) {
		loop->captimers = loop->captimers ? loop->captimers * 2 : 16;
		loop->heap = xrealloc(loop->heap, loop->captimers * sizeof *loop->heap);
	}
	heap_set(loop, loop->ntimers++, t);
	heap_up(loop, t->slot);
	if (t->ref)
		loop->active_refs++;
}

void loop_timer_start(struct loop *loop, struct loop_timer *t, double after, double repeat)
{
	loop_timer_stop(loop, t);
	/* clamp to ~100 years so the nanosecond sums cannot overflow (NaN -> 0) */
	const double max_s = 3.2e9;
	if (!(after > 0))
		after = 0;
	if (after > max_s)
		after = max_s;
	if (repeat > max_s)
		repeat = max_s;
	t->repeat_ns = repeat > 0 ? (int64_t)(repeat * 1e9) : 0;
	timer_insert(loop, t, loop_now_ns() + (int64_t)(after * 1e9));
}

void loop_timer_stop(struct loop *loop, struct loop_timer *t)
{
	if (t->slot < 0)
		return;
	int i = t->slot;
	struct loop_timer *last = loop->heap[--loop->ntimers];
	t->slot = -1;
	if (t->ref)
		loop->active_refs--;
	if (last == t)
		return;
	heap_set(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->slot);
}

/* ---- hooks and deferred calls ---- */

void loop_hook_init(struct loop_hook *h, loop_hook_cb cb, void *data)
{
	memset(h, 0, sizeof *h);
	h->cb = cb;
	h->data = data;
}

void loop_hook_start(struct loop *loop, struct loop_hook *h)
{
	if (h->active)
		return;
	h->prev = loop->hooks.prev;
	h->next = &loop->hooks;
	loop->hooks.prev->next = h;
	loop->hooks.prev = h;
	h->active = true;
}

void loop_hook_stop(struct loop *loop, struct loop_hook *h)
{
	if (!h->active)
		return;
	for (struct hook_cursor *c = loop->hook_cursor; c; c = c->outer)
		if (c->next == h)
			c->next = h->next;
	h->prev->next = h->next;
	h->next->prev = h->prev;
	h->prev = h->next = NULL;
	h->active = false;
}

int loop_defer(struct loop *loop, loop_defer_cb cb, void *data)
{
	if (loop->ndeferred == loop->capdeferred) {
		int cap = loop->capdeferred ? loop->capdeferred * 2 : 8;
		struct deferred *d = realloc(loop->deferred, cap * sizeof *d);
		if (!d)
			return -1;
		loop->deferred = d;
		loop->capdeferred = cap;
	}
	loop->deferred[loop->ndeferred++] = (struct deferred){ cb, data };
	return 0;
}

/* ---- signals ---- */

static void signal_handler(int signo)
{
	int saved = errno;
	unsigned char b = (unsigned char)signo;
	if (signal_write_fd >= 0 && write(signal_write_fd, &b, 1) < 0) {
		/* pipe full: the signal is already pending in it */
	}
	void (*hook)(int) = loop_signal_hook;
	if (hook)
		hook(signo);
	errno = saved;
}

static void signal_io_cb(struct loop_io *io, short revents)
{
	struct loop *loop = io->data;
	unsigned char buf[64];
	(void)revents;
	ssize_t n = read(loop->sigpipe[0], buf, sizeof buf);
	for (ssize_t i = 0; i < n; i++) {
		struct signal_slot *s = &loop->signals[buf[i] <= 64 ? buf[i] : 0];
		if (s->cb)
			s->cb(buf[i], s->data);
	}
}

int loop_signal(struct loop *loop, int signo, loop_signal_cb cb, void *data)
{
	if (signo <= 0 || signo > 64)
		return -1;
	if (loop->sigpipe[0] < 0) {
		if (pipe2(loop->sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
			return -1;
		signal_write_fd = loop->sigpipe[1];
		loop_io_init(&loop->sigio, loop->sigpipe[0], signal_io_cb, loop);
		loop->sigio.ref = false;
		loop_io_start(loop, &loop->sigio, POLLIN);
	}
	loop->signals[signo] = (struct signal_slot){ cb, data };
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = cb ? signal_handler : SIG_DFL;
	sa.sa_flags = SA_RESTART;
	return sigaction(signo, &sa, NULL);
}

/* ---- running ---- */

void loop_ref(struct loop *loop) { loop->refs++; }
void loop_unref(struct loop *loop) { loop->refs--; }
bool loop_alive(const struct loop *loop) { return loop->refs > 0 || loop->active_refs > 0 || loop->ndeferred > 0; }
void loop_stop(struct loop *loop) { loop->stop = true; }
bool loop_stopping(const struct loop *loop) { return loop->stop; }
bool loop_dispatching(const struct loop *loop) { return loop->depth > 0; }

static void run_deferred(struct loop *loop)
{
	/* Calls deferred while running these wait for the next iteration. */
	int n = loop->ndeferred;
	if (n == 0)
		return;
	struct deferred batch[16];
	struct deferred *d = n <= 16 ? batch : xrealloc(NULL, n * sizeof *d);
	memcpy(d, loop->deferred, n * sizeof *d);
	memmove(loop->deferred, loop->deferred + n, (loop->ndeferred - n) * sizeof *d);
	loop->ndeferred -= n;
	for (int i = 0; i < n; i++)
		d[i].cb(d[i].data);
	if (d != batch)
		free(d);
}

static void run_hooks(struct loop *loop)
{
	struct hook_cursor c = { loop->hooks.next, loop->hook_cursor };
	loop->hook_cursor = &c;
	while (c.next != &loop->hooks) {
		struct loop_hook *h = c.next;
		c.next = h->next;
		h->cb(h);
	}
	loop->hook_cursor = c.outer;
}

/* Fires due timers. A repeating timer is re-armed before its callback runs
 * (missed ticks are skipped, not replayed); one whose callback is still
 * running further up the stack is pushed back by a millisecond. */
static int run_timers(struct loop *loop, int64_t now)
{
	int fired = 0;
	int budget = loop->ntimers;
	while (loop->ntimers > 0 && budget-- > 0) {
		struct loop_timer *t = loop->heap[0];
		if (t->due_ns > now)
			break;
		loop_timer_stop(loop, t);
		if (t->busy) {
			timer_insert(loop, t, now + 1000000);
			continue;
		}
		if (t->repeat_ns > 0) {
			int64_t due = t->due_ns + t->repeat_ns;
			timer_insert(loop, t, due > now ? due : now + t->repeat_ns);
		}
		t->busy = true;
		t->cb(t);         /* contract: a timer is never freed by its own callback */
		t->busy = false;
		fired++;
	}
	return fired;
}

int loop_run_once(struct loop *loop, double timeout)
{
	int fired = 0;
	loop->depth++;
	loop->iterations++;
	netbuf_loop_enter();
	run_deferred(loop);
	run_hooks(loop);

	int wait_ms;
	int64_t now = loop_now_ns();
	if (loop->ndeferred > 0 || loop->stop)
		wait_ms = 0;
	else if (timeout < 0)
		wait_ms = loop_alive(loop) ? -1 : 0;   /* deferred calls may have ended the last reason to wait */
	else if (timeout >= INT_MAX / 1000.0)
		wait_ms = INT_MAX;   /* about 25 days: as long as poll() can be asked to wait */
	else
		wait_ms = (int)(timeout * 1000.0 + 0.999);
	if (loop->ntimers > 0) {
		int64_t until = loop->heap[0]->due_ns - now;
		int tms = until <= 0 ? 0 : (int)((until + 999999) / 1000000);
		if (wait_ms < 0 || tms < wait_ms)
			wait_ms = tms;
	}

	int n = loop->nios;
	/* what the callbacks wrote to client sockets goes out now (runtime/netbuf.h);
	 * a socket that could not take it all is polled for room too */
	bool held = netbuf_flush_all();
	/* watchers whose callback is running above us are not polled */
	for (int i = 0; i < n; i++) {
		if (loop->ios[i]->busy)
			loop->pfds[i].fd = -1;
		else if (held && netbuf_out_pending(loop->pfds[i].fd))
			loop->pfds[i].events |= POLLOUT;
	}
	int rc = poll(loop->pfds, n, wait_ms);
	for (int i = 0; i < n; i++) {
		loop->pfds[i].fd = loop->ios[i]->fd;
		loop->pfds[i].events = loop->ios[i]->events;
	}
	if (rc > 0) {
		/* Snapshot the ready set: callbacks may start and stop watchers. */
		struct loop_io *ready_stack[64];
		short revents_stack[64];
		struct loop_io **ready = ready_stack;
		short *revents = revents_stack;
		if (rc > 64) {
			ready = xrealloc(NULL, rc * sizeof *ready);
			revents = xrealloc(NULL, rc * sizeof *revents);
		}
		int nready = 0;
		for (int i = 0; i < n && nready < rc; i++) {
			if (loop->pfds[i].revents) {
				ready[nready] = loop->ios[i];
				revents[nready++] = loop->pfds[i].revents;
				loop->pfds[i].revents = 0;
			}
		}
		struct dispatch d = { ready, nready, loop->dispatch };
		loop->dispatch = &d;
		for (int i = 0; i < nready; i++) {
			struct loop_io *io = ready[i];
			if (!io || io->busy)
				continue;     /* stopped by an earlier callback, or running above us */
			/* fresh readiness now: the outer runs' entries are stale */
			for (struct dispatch *o = d.outer; o; o = o->outer)
				for (int j = 0; j < o->n; j++)
					if (o->ready[j] == io)
						o->ready[j] = NULL;
			io->busy = true;
			io->cb(io, revents[i]);
			if (ready[i])     /* still started, so still allocated */
				io->busy = false;
			fired++;
		}
		loop->dispatch = d.outer;
		if (ready != ready_stack) {
			free(ready);
			free(revents);
		}
	}
	fired += run_timers(loop, loop_now_ns());
	loop->depth--;
	netbuf_loop_leave();
	return fired;
}

void loop_run(struct loop *loop)
{
	loop->stop = false;
	while (!loop->stop && loop_alive(loop))
		loop_run_once(loop, -1);
}
