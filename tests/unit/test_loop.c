/*
 * test_loop.c - unit tests of the event loop (runtime/loop.c).
 *
 * Prints `ok - <name>` or `not ok - <name>` per case, details on `# ` lines,
 * and exits 1 if a case failed. Each case runs in a forked child, because
 * the loop is a process-wide singleton (loop_default) and a case that
 * crashes or hangs must not take the others with it; a child gets 10 s.
 * `test_loop NAME...` runs only the cases whose name contains a NAME.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "runtime/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a tiny harness ---- */

static int diag_fd = -1; /* child -> parent: detail lines for a failure */

__attribute__((format(printf, 1, 2)))
static void diag(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	if (write(diag_fd, buf, (size_t)n) < 0) {
		/* the parent is gone; nothing useful left to do */
	}
}

/* Ends the current case as failed, saying where and why. */
__attribute__((format(printf, 3, 4), noreturn))
static void fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	diag("%s:%d: %s", file, line, msg);
	exit(1);
}
#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)

#define CHECK(cond) do { \
	if (!(cond)) \
		FAIL("check failed: %s", #cond); \
} while (0)

#define CHECK_INT(actual, expected) do { \
	long long a_ = (long long)(actual), e_ = (long long)(expected); \
	if (a_ != e_) \
		FAIL("%s == %s: expected %lld, got %lld", #actual, #expected, e_, a_); \
} while (0)

/* Fails if what == -1, with errno. */
#define CHECK_SYS(what) do { \
	if ((what) == -1) \
		FAIL("%s: %s", #what, strerror(errno)); \
} while (0)

/* An ordered record of what callbacks ran. */
static int events[256];
static int nevents;

static void record(int id)
{
	if (nevents < (int)(sizeof events / sizeof events[0]))
		events[nevents++] = id;
}

/* Fails unless the recorded events are exactly expected[0..n-1]. */
static void check_events(const char *file, int line, const int *expected, int n)
{
	if (nevents == n && memcmp(events, expected, (size_t)n * sizeof *expected) == 0)
		return;
	char got[512] = "", want[512] = "";
	for (int i = 0; i < nevents && strlen(got) < sizeof got - 16; i++)
		snprintf(got + strlen(got), sizeof got - strlen(got), " %d", events[i]);
	for (int i = 0; i < n && strlen(want) < sizeof want - 16; i++)
		snprintf(want + strlen(want), sizeof want - strlen(want), " %d", expected[i]);
	fail_at(file, line, "events: expected {%s }, got {%s }", want, got);
}
#define CHECK_EVENTS(...) do { \
	const int expected_[] = { __VA_ARGS__ }; \
	check_events(__FILE__, __LINE__, expected_, \
		(int)(sizeof expected_ / sizeof expected_[0])); \
} while (0)

static double elapsed_since(int64_t start_ns)
{
	return (double)(loop_now_ns() - start_ns) / 1e9;
}

/* A non-blocking pipe; fds[0] is the read end. */
static void make_pipe(int fds[2])
{
	CHECK_SYS(pipe2(fds, O_NONBLOCK | O_CLOEXEC));
}

static void put_byte(int fd)
{
	CHECK_SYS(write(fd, "x", 1));
}

/* Runs loop iterations for about `seconds`, whatever is alive. */
static void run_for(struct loop *loop, double seconds)
{
	int64_t start = loop_now_ns();
	double left;
	while ((left = seconds - elapsed_since(start)) > 0)
		loop_run_once(loop, left);
}

/* ---- timers ---- */

static void timer_record(struct loop_timer *t)
{
	record((int)(intptr_t)t->data);
	/* never before its due time */
	if (loop_now_ns() < t->due_ns && t->repeat_ns == 0)
		FAIL("timer %d fired %lld ns early", (int)(intptr_t)t->data,
			(long long)(t->due_ns - loop_now_ns()));
}

static void test_timers_fire_in_due_order(void)
{
	struct loop *loop = loop_default();
	struct loop_timer t[4];
	static const double after[4] = { 0.04, 0.01, 0.03, 0.02 };
	int64_t start = loop_now_ns();
	for (int i = 0; i < 4; i++) {
		loop_timer_init(&t[i], timer_record, (void *)(intptr_t)i);
		loop_timer_start(loop, &t[i], after[i], 0);
	}
	loop_run(loop);
	CHECK_EVENTS(1, 3, 2, 0);
	CHECK(elapsed_since(start) >= 0.04);
	for (int i = 0; i < 4; i++)
		CHECK(!loop_timer_active(&t[i]));
}

static void test_equal_due_times_fire_in_start_order(void)
{
	struct loop *loop = loop_default();
	struct loop_timer t[8];
	for (int i = 0; i < 8; i++) {
		loop_timer_init(&t[i], timer_record, (void *)(intptr_t)i);
		loop_timer_start(loop, &t[i], 1.0, 0);
	}
	/* restarting makes timer 0 the last one started */
	loop_timer_stop(loop, &t[0]);
	loop_timer_start(loop, &t[0], 1.0, 0);
	/*
	 * Make the due times exactly equal (the clock would never give two
	 * identical readings). All were armed with the same delay, so their due
	 * times grow with their start order and the heap stays valid.
	 */
	int64_t due = loop_now_ns();
	for (int i = 0; i < 8; i++)
		t[i].due_ns = due;
	CHECK(loop_run_once(loop, 0) == 8);
	CHECK_EVENTS(1, 2, 3, 4, 5, 6, 7, 0);
}

static int repeat_count;
static int64_t repeat_times[16];

static void repeat_cb(struct loop_timer *t)
{
	if (repeat_count < 16)
		repeat_times[repeat_count] = loop_now_ns();
	if (++repeat_count == 3 && t->data)
		loop_timer_stop(loop_default(), t);
}

static void test_repeat_timer_repeats_until_stopped_from_its_callback(void)
{
	struct loop *loop = loop_default();
	struct loop_timer t;
	loop_timer_init(&t, repeat_cb, (void *)1);   /* data: stop at 3 */
	int64_t start = loop_now_ns();
	loop_timer_start(loop, &t, 0.01, 0.01);
	loop_run(loop);                              /* returns once stopped */
	CHECK_INT(repeat_count, 3);
	CHECK(!loop_timer_active(&t));
	CHECK(elapsed_since(start) >= 0.03);
	/* fixed rate: run i is never before start + (i + 1) intervals (a late run
	 * does not push the later ones back, so their spacing may be shorter) */
	for (int i = 0; i < 3; i++)
		CHECK(repeat_times[i] - start >= (int64_t)(i + 1) * 10000000);
}

static struct loop_timer *victim;

static void stop_victim(struct loop_timer *t)
{
	loop_timer_stop(loop_default(), victim);
	record(repeat_count);
}

static void test_loop_timer_stop_stops_a_repeat_timer(void)
{
	struct loop *loop = loop_default();
	struct loop_timer r, s;
	loop_timer_init(&r, repeat_cb, NULL);
	loop_timer_init(&s, stop_victim, NULL);
	victim = &r;
	loop_timer_start(loop, &r, 0.005, 0.005);
	loop_timer_start(loop, &s, 0.052, 0);
	run_for(loop, 0.12);
	CHECK_INT(nevents, 1);
	CHECK(events[0] >= 3);                       /* it did repeat */
	CHECK_INT(repeat_count, events[0]);          /* and never after the stop */
	CHECK(!loop_timer_active(&r));
	CHECK(!loop_alive(loop));
}

static void test_timer_with_a_huge_delay_does_not_fire_now(void)
{
	struct loop *loop = loop_default();
	struct loop_timer t[2];
	static const double after[2] = { 1e12, HUGE_VAL };   /* 31700 years, inf */
	for (int i = 0; i < 2; i++) {
		loop_timer_init(&t[i], timer_record, (void *)(intptr_t)i);
		loop_timer_start(loop, &t[i], after[i], 0);
		CHECK(t[i].due_ns > loop_now_ns());
	}
	loop_run_once(loop, 0);
	CHECK_INT(nevents, 0);
	CHECK(loop_timer_active(&t[0]) && loop_timer_active(&t[1]));
}

/* ---- liveness ---- */

static void test_loop_run_returns_when_nothing_is_active(void)
{
	struct loop *loop = loop_default();
	int64_t start = loop_now_ns();
	CHECK(!loop_alive(loop));
	loop_run(loop);
	CHECK(elapsed_since(start) < 0.5);
}

static int pipe_rd;

static void io_read_and_stop(struct loop_io *io, short revents)
{
	char c;
	CHECK(read(io->fd, &c, 1) == 1);
	record(100);
	loop_io_stop(loop_default(), io);
}

static void write_to_pipe(struct loop_timer *t)
{
	put_byte((int)(intptr_t)t->data);
	record(1);
}

static void test_loop_run_returns_after_last_watcher_stops(void)
{
	struct loop *loop = loop_default();
	int fds[2];
	make_pipe(fds);
	pipe_rd = fds[0];
	struct loop_io io;
	struct loop_timer t;
	loop_io_init(&io, fds[0], io_read_and_stop, NULL);
	CHECK(loop_io_start(loop, &io, POLLIN) == 0);
	loop_timer_init(&t, write_to_pipe, (void *)(intptr_t)fds[1]);
	loop_timer_start(loop, &t, 0.01, 0);
	CHECK(loop_alive(loop));
	loop_run(loop);
	CHECK_EVENTS(1, 100);
	CHECK(!loop_alive(loop));
}

static int unref_count;

static void count_unref(struct loop_timer *t)
{
	unref_count++;
}

static void test_unref_timer_does_not_keep_the_loop_alive(void)
{
	struct loop *loop = loop_default();
	struct loop_timer u, r;
	loop_timer_init(&u, count_unref, NULL);
	u.ref = false;
	loop_timer_start(loop, &u, 0.002, 0.002);
	CHECK(!loop_alive(loop));
	int64_t start = loop_now_ns();
	loop_run(loop);                      /* nothing referenced: returns at once */
	CHECK(elapsed_since(start) < 0.5);
	CHECK_INT(unref_count, 0);

	loop_timer_init(&r, timer_record, (void *)7);
	loop_timer_start(loop, &r, 0.05, 0);
	CHECK(loop_alive(loop));
	loop_run(loop);                      /* until r fired; u ticks meanwhile */
	CHECK_EVENTS(7);
	CHECK(unref_count >= 3);
	CHECK(loop_timer_active(&u));
	CHECK(!loop_alive(loop));
	loop_timer_stop(loop, &u);
}

/* ---- fd watchers ---- */

static short last_revents;
static void *last_data;

static void io_record(struct loop_io *io, short revents)
{
	record((int)(intptr_t)io->data);
	last_revents = revents;
	last_data = io->data;
}

static void test_fd_watcher_fires_on_pollin(void)
{
	struct loop *loop = loop_default();
	int fds[2];
	make_pipe(fds);
	struct loop_io io;
	loop_io_init(&io, fds[0], io_record, (void *)5);
	CHECK(loop_io_start(loop, &io, POLLIN) == 0);
	CHECK(loop_io_active(&io));
	CHECK_INT(loop_run_once(loop, 0.02), 0);   /* nothing to read yet */
	CHECK_INT(nevents, 0);
	put_byte(fds[1]);
	CHECK_INT(loop_run_once(loop, 1.0), 1);
	CHECK_EVENTS(5);
	CHECK(last_revents & POLLIN);
	CHECK(last_data == (void *)5);
	loop_io_stop(loop, &io);
	CHECK(!loop_io_active(&io));
	CHECK_INT(loop_run_once(loop, 0.01), 0);   /* stopped: still readable, not dispatched */
	CHECK_INT(nevents, 1);
}

static struct loop_io watchers[2];

static void io_stop_the_other(struct loop_io *io, short revents)
{
	int me = (int)(intptr_t)io->data;
	record(me);
	loop_io_stop(loop_default(), &watchers[1 - me]);
}

static void test_watcher_stopped_by_another_callback_is_not_dispatched(void)
{
	struct loop *loop = loop_default();
	int a[2], b[2];
	make_pipe(a);
	make_pipe(b);
	put_byte(a[1]);
	put_byte(b[1]);
	loop_io_init(&watchers[0], a[0], io_stop_the_other, (void *)0);
	loop_io_init(&watchers[1], b[0], io_stop_the_other, (void *)1);
	CHECK(loop_io_start(loop, &watchers[0], POLLIN) == 0);
	CHECK(loop_io_start(loop, &watchers[1], POLLIN) == 0);
	CHECK_INT(loop_run_once(loop, 1.0), 1);
	CHECK_INT(nevents, 1);                 /* both were ready; the second was stopped */
	CHECK(!loop_io_active(&watchers[1 - events[0]]));
	CHECK(loop_io_active(&watchers[events[0]]));
}

/* ---- deferred calls ---- */

static int deferred_runs;

static void deferred_cb(void *data)
{
	deferred_runs++;
	record(200 + (int)(intptr_t)data);
	if (data == (void *)1)
		loop_defer(loop_default(), deferred_cb, (void *)2);
}

static void defer_from_timer(struct loop_timer *t)
{
	record(1);
	CHECK(loop_defer(loop_default(), deferred_cb, (void *)1) == 0);
}

static void test_defer_runs_once_at_the_next_iteration(void)
{
	struct loop *loop = loop_default();
	struct loop_timer t;
	loop_timer_init(&t, defer_from_timer, NULL);
	loop_timer_start(loop, &t, 0, 0);
	loop_run_once(loop, 1.0);             /* the timer defers a call */
	CHECK_EVENTS(1);                      /* not run in the same iteration */
	CHECK(loop_alive(loop));              /* a pending call keeps the loop alive */
	int64_t start = loop_now_ns();
	loop_run_once(loop, 5.0);             /* must not sleep: work is pending */
	CHECK(elapsed_since(start) < 1.0);
	CHECK_EVENTS(1, 201);                 /* and the call it defers waits too */
	loop_run_once(loop, 0.01);
	CHECK_EVENTS(1, 201, 202);
	loop_run_once(loop, 0.01);
	loop_run_once(loop, 0.01);
	CHECK_INT(deferred_runs, 2);          /* each ran exactly once */
	CHECK(!loop_alive(loop));
}

/* ---- signals ---- */

static volatile sig_atomic_t in_handler_calls;
static int signal_seen;
static void *signal_data;

static void on_signal(int signo, void *data)
{
	signal_seen = signo;
	signal_data = data;
	record(signo);
	in_handler_calls += loop_dispatching(loop_default()) ? 0 : 1;
}

static void test_signal_reaches_its_callback_on_the_loop(void)
{
	struct loop *loop = loop_default();
	CHECK(loop_signal(loop, SIGUSR1, on_signal, (void *)9) == 0);
	CHECK(raise(SIGUSR1) == 0);
	CHECK_INT(nevents, 0);                /* not from inside the handler */
	CHECK_INT(loop_run_once(loop, 1.0), 1);
	CHECK_EVENTS(SIGUSR1);
	CHECK_INT(signal_seen, SIGUSR1);
	CHECK(signal_data == (void *)9);
	CHECK_INT(in_handler_calls, 0);       /* it ran as a loop callback */
	CHECK(!loop_alive(loop));             /* the signal pipe does not keep it alive */
	CHECK(loop_signal(loop, SIGUSR1, NULL, NULL) == 0);
}

static void test_signal_64_reaches_its_callback(void)
{
	struct loop *loop = loop_default();
	int signo = SIGRTMAX;                 /* 64 on Linux: the largest accepted */
	CHECK(signo <= 64);
	if (getenv("MQLUA_VALGRIND"))
		return;                       /* valgrind keeps SIGRTMAX for itself */
	CHECK(loop_signal(loop, signo, on_signal, (void *)9) == 0);
	CHECK(raise(signo) == 0);
	loop_run_once(loop, 1.0);
	CHECK_EVENTS(signo);
	loop_signal(loop, signo, NULL, NULL);
}

/* ---- nested iterations ---- */

static int outer_calls;
static int nested_dispatched;

static void io_nested(struct loop_io *io, short revents)
{
	record(10);
	if (++outer_calls == 1) {
		/* the fd is still readable: a nested run must not call us again */
		for (int i = 0; i < 3; i++)
			nested_dispatched += loop_run_once(loop_default(), 0);
		CHECK_INT(outer_calls, 1);
		CHECK(io->busy);
	}
	char c;
	CHECK(read(io->fd, &c, 1) == 1);
}

static void test_nested_run_once_does_not_redispatch_the_running_io(void)
{
	struct loop *loop = loop_default();
	int fds[2];
	make_pipe(fds);
	put_byte(fds[1]);
	struct loop_io io;
	loop_io_init(&io, fds[0], io_nested, NULL);
	CHECK(loop_io_start(loop, &io, POLLIN) == 0);
	CHECK_INT(loop_run_once(loop, 1.0), 1);
	CHECK_INT(outer_calls, 1);
	CHECK_INT(nested_dispatched, 0);
	CHECK(!io.busy);
	CHECK_INT(loop_run_once(loop, 0.01), 0);   /* drained */
	CHECK_INT(outer_calls, 1);
}

static int stale_reads;

static void io_read_one(struct loop_io *io, short revents)
{
	char c;
	record((int)(intptr_t)io->data);
	if (read(io->fd, &c, 1) != 1)
		stale_reads++;   /* dispatched with POLLIN, nothing to read */
}

static void io_nested_once(struct loop_io *io, short revents)
{
	char c;
	record((int)(intptr_t)io->data);
	CHECK(read(io->fd, &c, 1) == 1);
	loop_run_once(loop_default(), 0);
}

/*
 * A and B are both ready; A's callback runs a nested iteration, which
 * dispatches B (fresh readiness). Back in the outer iteration, B must not be
 * dispatched again from the outer, now stale, ready set.
 */
static void test_nested_run_once_leaves_no_stale_dispatch_in_the_outer(void)
{
	struct loop *loop = loop_default();
	int a[2], b[2];
	make_pipe(a);
	make_pipe(b);
	put_byte(a[1]);
	put_byte(b[1]);
	struct loop_io ia, ib;
	loop_io_init(&ia, a[0], io_nested_once, (void *)1);
	loop_io_init(&ib, b[0], io_read_one, (void *)2);
	CHECK(loop_io_start(loop, &ia, POLLIN) == 0);   /* first slot: dispatched first */
	CHECK(loop_io_start(loop, &ib, POLLIN) == 0);
	loop_run_once(loop, 1.0);
	CHECK_INT(stale_reads, 0);
	CHECK_EVENTS(1, 2);
}

static int spin_iterations;
static bool spin_timer_fired;

static void spin_timer(struct loop_timer *t)
{
	spin_timer_fired = true;
}

static void io_waits_nested(struct loop_io *io, short revents)
{
	struct loop *loop = loop_default();
	struct loop_timer t;
	loop_timer_init(&t, spin_timer, NULL);
	loop_timer_start(loop, &t, 0.1, 0);
	/* a blocking wait in a handler; the fd we were called for stays readable */
	while (!spin_timer_fired && spin_iterations < 1000000) {
		loop_run_once(loop, 1.0);
		spin_iterations++;
	}
	loop_timer_stop(loop, &t);
	loop_io_stop(loop, io);
}

static void test_nested_wait_in_an_io_callback_sleeps_instead_of_spinning(void)
{
	struct loop *loop = loop_default();
	int fds[2];
	make_pipe(fds);
	put_byte(fds[1]);
	struct loop_io io;
	loop_io_init(&io, fds[0], io_waits_nested, NULL);
	CHECK(loop_io_start(loop, &io, POLLIN) == 0);
	loop_run_once(loop, 1.0);
	CHECK(spin_timer_fired);
	if (spin_iterations > 20)
		FAIL("a 100 ms wait took %d iterations: poll() keeps returning "
			"the running watcher's fd", spin_iterations);
}

/* ---- prepare hooks ---- */

static struct loop_hook hooks[3];

static void hook_record(struct loop_hook *h)
{
	record((int)(intptr_t)h->data);
}

static void hook_stop_self(struct loop_hook *h)
{
	record((int)(intptr_t)h->data);
	loop_hook_stop(loop_default(), h);
}

static void test_hooks_run_every_iteration_before_polling(void)
{
	struct loop *loop = loop_default();
	loop_hook_init(&hooks[0], hook_record, (void *)1);
	loop_hook_init(&hooks[1], hook_stop_self, (void *)2);
	loop_hook_start(loop, &hooks[0]);
	loop_hook_start(loop, &hooks[1]);
	CHECK(!loop_alive(loop));              /* hooks do not keep the loop alive */
	loop_run_once(loop, 0);
	loop_run_once(loop, 0);
	CHECK_EVENTS(1, 2, 1);
	loop_hook_stop(loop, &hooks[0]);
	loop_run_once(loop, 0);
	CHECK_INT(nevents, 3);
}

static void hook_stop_next(struct loop_hook *h)
{
	record((int)(intptr_t)h->data);
	loop_hook_stop(loop_default(), &hooks[1]);
}

static void test_hook_may_stop_the_next_hook(void)
{
	struct loop *loop = loop_default();
	loop_hook_init(&hooks[0], hook_stop_next, (void *)1);
	loop_hook_init(&hooks[1], hook_record, (void *)2);
	loop_hook_init(&hooks[2], hook_record, (void *)3);
	for (int i = 0; i < 3; i++)
		loop_hook_start(loop, &hooks[i]);
	loop_run_once(loop, 0);
	CHECK_EVENTS(1, 3);
}

/* ---- main ---- */

struct test_case {
	const char *name;
	void (*fn)(void);
};

#define CASE(fn) { #fn + 5, fn }
static const struct test_case cases[] = {
	CASE(test_timers_fire_in_due_order),
	CASE(test_equal_due_times_fire_in_start_order),
	CASE(test_repeat_timer_repeats_until_stopped_from_its_callback),
	CASE(test_loop_timer_stop_stops_a_repeat_timer),
	CASE(test_timer_with_a_huge_delay_does_not_fire_now),
	CASE(test_loop_run_returns_when_nothing_is_active),
	CASE(test_loop_run_returns_after_last_watcher_stops),
	CASE(test_unref_timer_does_not_keep_the_loop_alive),
	CASE(test_fd_watcher_fires_on_pollin),
	CASE(test_watcher_stopped_by_another_callback_is_not_dispatched),
	CASE(test_defer_runs_once_at_the_next_iteration),
	CASE(test_signal_reaches_its_callback_on_the_loop),
	CASE(test_signal_64_reaches_its_callback),
	CASE(test_nested_run_once_does_not_redispatch_the_running_io),
	CASE(test_nested_run_once_leaves_no_stale_dispatch_in_the_outer),
	CASE(test_nested_wait_in_an_io_callback_sleeps_instead_of_spinning),
	CASE(test_hooks_run_every_iteration_before_polling),
	CASE(test_hook_may_stop_the_next_hook),
};

static bool selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return true;
	return false;
}

/* Runs one case in a child; returns true if it passed. */
static bool run_case(const struct test_case *tc)
{
	int p[2];
	if (pipe(p) < 0) {
		printf("not ok - %s\n# pipe: %s\n", tc->name, strerror(errno));
		return false;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		printf("not ok - %s\n# fork: %s\n", tc->name, strerror(errno));
		return false;
	}
	if (pid == 0) {
		close(p[0]);
		diag_fd = p[1];
		alarm(10);
		tc->fn();
		exit(0);
	}
	close(p[1]);
	char details[8192];
	size_t len = 0;
	ssize_t n;
	while ((n = read(p[0], details + len, sizeof details - 1 - len)) > 0 ||
	       (n < 0 && errno == EINTR))
		if (n > 0)
			len += (size_t)n;
	details[len] = '\0';
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	bool passed = WIFEXITED(status) && WEXITSTATUS(status) == 0 && len == 0;
	printf("%s - %s\n", passed ? "ok" : "not ok", tc->name);
	if (!passed) {
		for (char *line = strtok(details, "\n"); line; line = strtok(NULL, "\n"))
			printf("# %s\n", line);
		if (WIFSIGNALED(status))
			printf("# killed by signal %d (%s)%s\n", WTERMSIG(status),
				strsignal(WTERMSIG(status)),
				WTERMSIG(status) == SIGALRM ? ": took more than 10 s" : "");
		else if (WEXITSTATUS(status) != 0 && len == 0)
			printf("# exit status %d\n", WEXITSTATUS(status));
	}
	return passed;
}

int main(int argc, char **argv)
{
	int failed = 0, ran = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (!selected(cases[i].name, argc, argv))
			continue;
		ran++;
		if (!run_case(&cases[i]))
			failed++;
	}
	if (failed)
		printf("# %d of %d cases failed\n", failed, ran);
	return failed || !ran ? 1 : 0;
}
