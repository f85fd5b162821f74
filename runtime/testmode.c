/*
 * testmode.c - `mqlua test`: finds the test files, runs each one in a child
 * process of its own (a fresh Lua state, a fresh store, a fresh embedded
 * broker started by the harness), adds up the results and prints the
 * summary line `N passed, N failed`.
 *
 * The child runs require("mqlua.test").run_file(), which prints the
 * `ok - ` / `not ok - ` lines itself and tells the parent over a pipe when
 * a test starts and how it ended. A test that overruns --timeout is stopped
 * inside the child (an instruction-count hook for busy Lua code, a loop
 * timer that makes every wait return); a child that still does not move
 * (stuck in a blocking C call) is killed by the parent 5 s later, and the
 * run goes on with the next file.
 */
#include "runtime/testmode.h"
#include "bindings/mqlua.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "runtime/script.h"
#include "runtime/url.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lauxlib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILL_GRACE_S 5

static const char test_usage[] =
	"usage: mqlua test [options] [files or directories]\n"
	"\n"
	"Runs test files written as\n"
	"    test(\"name\", function(t) ... t:eq(a, b) ... end)\n"
	"each in its own process with a fresh private broker (the default broker of\n"
	"connect() without a host; also T.broker() and t.broker) and a fresh store\n"
	"(unless $MQLUA_STORE is set), which the mqlua processes a test starts get\n"
	"too (their default store is under the file's temporary directory, not\n"
	"~/.local/state). Files get the globals `test` and `T`\n"
	"(require \"mqlua.test\"): t:eq, t:ok, t:match, t:raises, t:expect_message,\n"
	"t:no_message, T.connected, T.subscribed, T.wait_until, T.tmpdir, T.sh...\n"
	"\n"
	"A directory is searched recursively for files named *_test.lua or\n"
	"test_*.lua (the rule scripts beside them are not tests); with no argument,\n"
	"the current directory is.\n"
	"Prints `ok - FILE: NAME` or `not ok - FILE: NAME` with `# ` lines saying why\n"
	"(expected and actual values and FILE:LINE, or a traceback), then\n"
	"`N passed, N failed`. Exits 0 only if at least one test ran and none failed.\n"
	"\n"
	"options:\n"
	"  -b, --broker URL     use this broker for every file instead of a fresh one\n"
	"                       (mqtt://[user[:password]@]host[:port], mqtts://...)\n"
	"  --filter PATTERN     run only tests whose name contains PATTERN (plain text\n"
	"                       or a Lua pattern)\n"
	"  --timeout S          seconds a test (or the code between two tests) may take\n"
	"                       before it fails (default 30); the run goes on\n"
	"  -v, --verbose        debug log, and how long each test took\n"
	"  -h, --help           print this help and exit\n"
	"\n"
	"Example: mqlua test tests/   (a script file named test: mqlua ./test)\n";

struct options {
	const char *broker_url;
	const char *filter;
	double timeout;
	bool verbose;
	const char *exe;
};

/* ---- finding the files ---- */

struct file_list {
	char **v;
	size_t n, cap;
};

static void list_add(struct file_list *l, const char *path)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = realloc(l->v, l->cap * sizeof *l->v);
		if (!l->v)
			abort();
	}
	l->v[l->n] = strdup(path);
	if (!l->v[l->n])
		abort();
	l->n++;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_test_name(const char *name)
{
	return ends_with(name, "_test.lua") || (strncmp(name, "test_", 5) == 0 && ends_with(name, ".lua"));
}

/* Adds the test files under dir: *_test.lua and test_*.lua, sorted,
 * recursively, hidden entries skipped. */
static void find_files(struct file_list *l, const char *dir)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0)
		return;
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		if (name[0] != '.') {
			char *path;
			struct stat st;
			if (asprintf(&path, "%s%s%s", dir, ends_with(dir, "/") ? "" : "/", name) < 0)
				abort();
			const char *shown = strncmp(path, "./", 2) == 0 ? path + 2 : path;
			if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
				find_files(l, shown);
			else if (is_test_name(name))
				list_add(l, shown);
			free(path);
		}
		free(ents[i]);
	}
	free(ents);
}

/* ---- the child: one file ---- */

static struct loop_timer timeout_timer;
static int64_t deadline_ns;
static bool timed_out;
static int notify_fd = -1;

static void expire(void)
{
	timed_out = true;
	mqlua_interrupted = 1;   /* every wait returns and raises, so the test unwinds */
}

static void timer_cb(struct loop_timer *t)
{
	(void)t;
	expire();
}

/* Busy Lua code never returns to the loop: stop it at its next instructions. */
static void timeout_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (loop_now_ns() < deadline_ns && !timed_out)
		return;
	expire();
	lua_sethook(L, NULL, 0, 0);
	luaL_error(L, "timed out");
}

/* arm(seconds): the running test fails after that long. */
static int l_arm(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	timed_out = false;
	deadline_ns = loop_now_ns() + (int64_t)(s * 1e9);
	loop_timer_init(&timeout_timer, timer_cb, NULL);
	timeout_timer.ref = false;
	loop_timer_start(loop_default(), &timeout_timer, s, 0);
	lua_sethook(L, timeout_hook, LUA_MASKCOUNT, 1000);
	if (notify_fd >= 0)
		dprintf(notify_fd, "arm %g\n", s);   /* the parent's own limit follows */
	return 0;
}

/* disarm() -> true if the test timed out (then the interruption is over). */
static int l_disarm(lua_State *L)
{
	loop_timer_stop(loop_default(), &timeout_timer);
	lua_sethook(L, NULL, 0, 0);
	lua_pushboolean(L, timed_out);
	if (timed_out)
		mqlua_interrupted = 0;
	timed_out = false;
	return 1;
}

/* notify(line): one line to the parent ("start NAME", "pass", "fail"). */
static int l_notify(lua_State *L)
{
	dprintf(notify_fd, "%s\n", luaL_checkstring(L, 1));
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

/* Runs one file in this (child) process; writes "done P F" to fd. */
static int run_child(const char *path, const struct options *o, int fd)
{
	notify_fd = fd;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	if (o->verbose)
		log_threshold = LOG_LEVEL_DEBUG;
	char tmp[] = "/tmp/mqlua-test.XXXXXX";
	char *store = NULL;
	if (!getenv("MQLUA_STORE") && mkdtemp(tmp)) {
		if (asprintf(&store, "%s/store.db", tmp) < 0)
			abort();
		mqlua_store_path = store;
		/* the mqlua processes a test starts (T.spawn, T.run_script, T.sh) get
		 * a fresh default store too, not the user's: no queued message of an
		 * earlier run reaches a fixture, and none of a fixture's stays */
		setenv("XDG_STATE_HOME", tmp, 1);
	}
	struct broker_url u = { 0 };
	if (o->broker_url) {
		char err[512];
		url_parse(o->broker_url, &u, err, sizeof err);   /* checked by the parent */
		mqlua_set_default_broker(u.host, u.port, u.has_username ? u.username : NULL,
		                         u.has_password ? u.password : NULL, u.tls);
	}
	lua_State *L = script_new_state(o->exe);
	if (!L) {
		fprintf(stderr, "mqlua: cannot create the Lua state: not enough memory\n");
		exit(1);
	}
	mqlua_autoattach = true;
	mqlua_script_name_set(path);
	srand48(getpid() ^ (long)loop_now_ns());

	lua_pushcfunction(L, mqlua_traceback);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "mqlua.test");
	int status = lua_pcall(L, 1, 1, 1);
	if (status == LUA_OK) {
		lua_getfield(L, -1, "run_file");
		lua_pushstring(L, path);
		lua_pushstring(L, path);
		lua_createtable(L, 0, 6);
		if (o->filter) {
			lua_pushstring(L, o->filter);
			lua_setfield(L, -2, "filter");
		}
		lua_pushnumber(L, o->timeout);
		lua_setfield(L, -2, "timeout");
		lua_pushboolean(L, o->verbose);
		lua_setfield(L, -2, "verbose");
		if (o->broker_url) {
			lua_pushstring(L, o->broker_url);
			lua_setfield(L, -2, "broker_url");
			lua_pushstring(L, u.host);
			lua_setfield(L, -2, "broker_host");
			lua_pushinteger(L, u.port);
			lua_setfield(L, -2, "broker_port");
		}
		static const luaL_Reg ctl[] = {
			{ "arm", l_arm }, { "disarm", l_disarm }, { "notify", l_notify }, { NULL, NULL }
		};
		luaL_newlib(L, ctl);
		status = lua_pcall(L, 4, 2, 1);
	}
	memset(&u, 0, sizeof u);
	int passed = 0, failed = 1;
	if (status == LUA_OK) {
		passed = (int)lua_tointeger(L, -2);
		failed = (int)lua_tointeger(L, -1);
	} else {
		printf("not ok - %s: the test harness failed\n# %s\n", path, lua_tostring(L, -1));
	}
	fflush(stdout);
	dprintf(fd, "done %d %d\n", passed, failed);
	lua_close(L);
	if (store) {
		nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(store);
	}
	return failed ? 1 : 0;
}

/* ---- the parent ---- */

static volatile pid_t running_child;

/* Ctrl-C or SIGTERM: the child's process group goes too (it has its own). */
static void on_signal(int signo)
{
	if (running_child > 0)
		kill(-running_child, SIGKILL);
	signal(signo, SIG_DFL);
	raise(signo);
}

struct result {
	int passed, failed;
};

/* Handles one line from the child; returns true for "done". "arm S" sets
 * *armed_s, the running test's time limit. */
static bool child_line(char *line, char *current, size_t cap, struct result *r, double *armed_s)
{
	int p, f;
	double s;
	if (sscanf(line, "arm %lf", &s) == 1) {
		*armed_s = s;
	} else if (strncmp(line, "start ", 6) == 0) {
		snprintf(current, cap, "%s", line + 6);
	} else if (strcmp(line, "pass") == 0 || strcmp(line, "fail") == 0) {
		*(line[0] == 'p' ? &r->passed : &r->failed) += 1;
		current[0] = 0;
	} else if (sscanf(line, "done %d %d", &p, &f) == 2) {
		r->passed = p;
		r->failed = f;
		return true;
	}
	return false;
}

/* Runs one file in a child process and reports what the child could not. */
static struct result run_file(const char *path, const struct options *o)
{
	struct result r = { 0, 0 };
	int fds[2];
	fflush(stdout);
	fflush(stderr);
	if (pipe2(fds, O_CLOEXEC) != 0) {
		printf("not ok - %s: cannot run it: %s\n", path, strerror(errno));
		r.failed = 1;
		return r;
	}
	pid_t pid = fork();
	if (pid < 0) {
		printf("not ok - %s: cannot run it: %s\n", path, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		r.failed = 1;
		return r;
	}
	if (pid == 0) {
		close(fds[0]);
		setpgid(0, 0);
		exit(run_child(path, o, fds[1]));
	}
	setpgid(pid, pid);
	running_child = pid;
	close(fds[1]);

	char buf[4096], current[1024] = "";
	size_t len = 0;
	bool done = false, killed = false;
	double armed_s = o->timeout;
	int64_t deadline = loop_now_ns() + (int64_t)((armed_s + KILL_GRACE_S) * 1e9);
	for (;;) {
		int64_t left_ms = (deadline - loop_now_ns()) / 1000000;
		if (left_ms <= 0) {
			kill(-pid, SIGKILL);
			killed = true;
			break;
		}
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		int n = poll(&p, 1, left_ms > 1000 ? 1000 : (int)left_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue;
		ssize_t got = read(fds[0], buf + len, sizeof buf - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
		buf[len] = 0;
		char *nl, *start = buf;
		while ((nl = strchr(start, '\n'))) {
			*nl = 0;
			done |= child_line(start, current, sizeof current, &r, &armed_s);
			start = nl + 1;
		}
		len = strlen(start);
		memmove(buf, start, len + 1);
		if (len == sizeof buf - 1)
			len = 0;   /* a line too long to be ours */
		deadline = loop_now_ns() + (int64_t)((armed_s + KILL_GRACE_S) * 1e9);
	}
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	running_child = 0;
	fflush(stdout);
	if (killed) {
		r.failed++;
		printf("not ok - %s: %s\n# timed out after %g s and did not stop (a blocking call?): "
		       "the file was killed; its later tests did not run\n",
		       path, current[0] ? current : "code outside a test", armed_s);
	} else if (!done) {
		r.failed++;
		if (WIFSIGNALED(status))
			printf("not ok - %s: the file's process was killed by signal %d%s%s\n", path,
			       WTERMSIG(status), current[0] ? " in test " : "", current);
		else
			printf("not ok - %s: the file's process exited with status %d before it finished%s%s\n", path,
			       WEXITSTATUS(status), current[0] ? " (in test " : "", current[0] ? current : "");
	}
	fflush(stdout);
	return r;
}

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "mqlua test: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'mqlua test --help' for more information.\n");
}

int testmode_main(int argc, char **argv, const char *exe)
{
	struct options o = { .timeout = 30, .exe = exe };
	struct file_list files = { 0 };
	bool args = false, opts_done = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		if (!opts_done && a[0] == '-' && a[1]) {
			if (strcmp(a, "--") == 0) {
				opts_done = true;
				continue;
			}
			if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
				fputs(test_usage, stdout);
				return 0;
			}
			if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
				o.verbose = true;
				continue;
			}
			const char *eq = strchr(a, '=');
			size_t nlen = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
			bool b = (nlen == 2 && strncmp(a, "-b", 2) == 0) || (nlen == 8 && strncmp(a, "--broker", 8) == 0);
			bool f = nlen == 8 && strncmp(a, "--filter", 8) == 0;
			bool t = nlen == 9 && strncmp(a, "--timeout", 9) == 0;
			if (!b && !f && !t) {
				usage_error("unrecognized option '%s'", a);
				return 2;
			}
			if (a[nlen] == '=')
				val = a + nlen + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else {
				usage_error("'%s' needs a value", a);
				return 2;
			}
			if (b) {
				struct broker_url u;
				char err[512];
				if (url_parse(val, &u, err, sizeof err) != 0) {
					memset(&u, 0, sizeof u);
					usage_error("--broker: %s", err);
					return 2;
				}
				memset(&u, 0, sizeof u);
				/* the children need the password: keep a copy, hide argv's */
				static char *url_copy;
				free(url_copy);
				url_copy = strdup(val);
				if (!url_copy) {
					fprintf(stderr, "mqlua test: out of memory\n");
					return 2;
				}
				o.broker_url = url_copy;
				url_hide_password((char *)val);
			} else if (f) {
				o.filter = val;
			} else {
				char *end;
				o.timeout = strtod(val, &end);
				if (end == val || *end || !(o.timeout > 0)) {
					usage_error("--timeout wants a positive number of seconds, not '%s'", val);
					return 2;
				}
			}
			continue;
		}
		args = true;
		struct stat st;
		if (stat(a, &st) == 0 && S_ISDIR(st.st_mode))
			find_files(&files, a);
		else
			list_add(&files, a);   /* a missing file fails to load, as a failure */
	}
	if (!args)
		find_files(&files, ".");
	if (files.n == 0) {
		printf("# no test files found%s\n", args ? "" : " (*_test.lua or test_*.lua under this directory)");
		printf("0 passed, 0 failed\n");
		return 1;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct result total = { 0, 0 };
	for (size_t i = 0; i < files.n; i++) {
		struct result r = run_file(files.v[i], &o);
		total.passed += r.passed;
		total.failed += r.failed;
		free(files.v[i]);
	}
	free(files.v);
	if (total.passed + total.failed == 0)
		printf("# no test ran%s\n", o.filter ? " (none matched --filter)" : "");
	printf("%d passed, %d failed\n", total.passed, total.failed);
	return total.failed == 0 && total.passed > 0 ? 0 : 1;
}
