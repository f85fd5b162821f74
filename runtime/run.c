/*
 * run.c - `mqlua run DIR`: a directory of rule scripts as one service.
 *
 * Every *.lua in DIR runs in an environment of its own (its globals are its
 * own; _G is read through) as a script named by its file name; log lines
 * written while its code runs start with "[name]", and its errors are
 * counted under that name. A change to a file (inotify on DIR, after a
 * settle delay, since editors write in several steps) or SIGHUP reloads the
 * files whose content changed, loads new ones and unloads deleted ones.
 *
 * Reloading a script runs its new version first and only then retires the
 * old one (bindings/owner.c): the old version's timers, waiting tasks,
 * callbacks and the filters only it subscribed go, while the clients the new
 * version makes again with the same client_id stay connected with their
 * outbox. A version that fails to compile or whose main chunk raises leaves
 * the previous version running as it was.
 */
#include "runtime/run.h"
#include "bindings/mqlua.h"
#include "runtime/log.h"
#include "runtime/loop.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETTLE_S 0.3    /* quiet time after the last change before reloading */

const char run_usage[] =
	"usage: mqlua run [options] DIR\n"
	"\n"
	"Runs every *.lua file in DIR as a script of its own (own globals, log lines\n"
	"and error counts under its file name) and keeps running until SIGINT/SIGTERM.\n"
	"A changed file (watched with inotify) or SIGHUP reloads the scripts whose\n"
	"content changed: their callbacks, subscriptions and timers are set up again\n"
	"from the new version, while clients it makes again with the same client_id\n"
	"keep their connection and queued messages (connect() on them does nothing,\n"
	"and the new on_connect runs once with session_present = true). A version that\n"
	"fails to load is logged and the previous one keeps running. New files are\n"
	"loaded, deleted ones unloaded. SIGHUP also logs each script's error count.\n"
	"\n"
	"options:\n"
	"  -b, --broker URL     default broker for client:connect() without a host\n"
	"                       (mqtt://..., mqtts://..., or 'embedded')\n"
	"  -s, --store PATH     the SQLite store (default $MQLUA_STORE, else\n"
	"                       ${XDG_STATE_HOME:-~/.local/state}/mqlua/store.db)\n"
	"  -v, --verbose        debug logging      -q, --quiet   errors only\n"
	"  -h, --help           print this help and exit\n"
	"\n"
	"Example: mqlua run /etc/mqlua/rules   (scripts/mqlua.service runs it under systemd;\n"
	"a script file named run: mqlua ./run)\n";

struct script {
	char *name;                  /* the file name: "motion.lua" */
	char *path;
	uint64_t tried;              /* hash of the content last loaded or tried */
	struct mqlua_owner *current; /* the running version; NULL: none */
	unsigned version;
	unsigned long errors_before; /* of retired versions and failed loads */
	bool seen;
	struct script *next;
};

static lua_State *runL;
static char *dir;
static struct script *scripts;
static int inotify_fd = -1;
static struct loop_io inotify_io;
static struct loop_timer settle_timer;

static bool is_script_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".lua") == 0;
}

/* FNV-1a: tells a changed file from one touched or written again unchanged. */
static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h ^ n;
}

/* The whole file in a malloc'ed buffer, or NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			char *grown = realloc(buf, cap = cap ? 2 * cap : 8192);
			if (!grown) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = grown;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int err = ferror(f) ? errno : 0;
	fclose(f);
	if (err) {
		free(buf);
		errno = err;
		return NULL;
	}
	*len = n;
	return buf;
}

static unsigned long script_errors(const struct script *s)
{
	return s->errors_before + (s->current ? owner_errors(s->current) : 0);
}

/* Gives the chunk on top a fresh environment: its own globals, _G's read
 * through, and arg[0] = its path. */
static void set_env(lua_State *L, const struct script *s)
{
	lua_newtable(L);
	lua_createtable(L, 0, 1);
	lua_pushglobaltable(L);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	lua_createtable(L, 0, 1);
	lua_pushstring(L, s->path);
	lua_rawseti(L, -2, 0);
	lua_setfield(L, -2, "arg");
	lua_setupvalue(L, -2, 1);   /* a main chunk's only upvalue is _ENV */
}

/* Loads src as the next version of s; the running one, if any, is retired
 * once the new one's main chunk succeeded, and kept otherwise. */
static void load(struct script *s, const char *src, size_t len)
{
	lua_State *L = runL;
	int top = lua_gettop(L);
	struct mqlua_owner *old = s->current;
	const char *keeps = old ? "; the previous version keeps running" : "";
	lua_pushfstring(L, "@%s", s->path);
	if (luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t") != LUA_OK) {
		s->errors_before++;
		log_error("[%s] not loaded: %s%s", s->name, lua_tostring(L, -1), keeps);
		lua_settop(L, top);
		return;
	}
	set_env(L, s);
	struct mqlua_owner *v = owner_new(s->name);
	owner_claim_as(L, -1, v);
	owner_load_begin(L, v);
	int status = task_call(L, 0, "main chunk");
	bool ok = status == LUA_OK || status == LUA_YIELD;   /* one that waits goes on as a task */
	owner_load_end(L, v, old, ok);
	lua_settop(L, top);
	if (!ok) {
		s->errors_before += owner_errors(v);
		log_error("[%s] not loaded: its main chunk failed%s", s->name, keeps);
		return;
	}
	if (old)
		s->errors_before += owner_errors(old);
	s->current = v;
	s->version++;
	log_info("[%s] %s (version %u)", s->name, old ? "reloaded" : "loaded", s->version);
}

static void unload(struct script *s)
{
	if (!s->current)
		return;
	owner_retire(runL, s->current);
	s->errors_before += owner_errors(s->current);
	s->current = NULL;
	log_info("[%s] unloaded: the file is gone (%lu error%s)", s->name, script_errors(s),
	         script_errors(s) == 1 ? "" : "s");
}

static struct script *find_or_add(const char *name)
{
	struct script **p = &scripts;
	for (; *p; p = &(*p)->next)
		if (strcmp((*p)->name, name) == 0)
			return *p;
	struct script *s = calloc(1, sizeof *s);
	if (!s || !(s->name = strdup(name)) || asprintf(&s->path, "%s/%s", dir, name) < 0) {
		log_error("out of memory");
		abort();
	}
	*p = s;   /* kept in name order, as scandir gives them */
	return s;
}

/* Loads what is new or changed in dir, unloads what is gone. Returns how
 * many scripts dir holds, or -1 when it cannot be read. */
static int rescan(void)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), count = 0;
	if (n < 0)
		return -1;
	for (struct script *s = scripts; s; s = s->next)
		s->seen = false;
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		struct stat st;
		char *path;
		if (is_script_name(name) && asprintf(&path, "%s/%s", dir, name) >= 0) {
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				struct script *s = find_or_add(name);
				size_t len;
				char *src = read_file(path, &len);
				s->seen = true;
				count++;
				if (!src) {
					log_error("[%s] cannot read %s: %s", name, path, strerror(errno));
				} else if (hash(src, len) != s->tried) {   /* new (0) or changed */
					s->tried = hash(src, len);
					load(s, src, len);
				}
				free(src);
			}
			free(path);
		}
		free(ents[i]);
	}
	free(ents);
	for (struct script **p = &scripts; *p;) {
		struct script *s = *p;
		if (s->seen) {
			p = &s->next;
			continue;
		}
		unload(s);
		*p = s->next;
		free(s->name);
		free(s->path);
		free(s);
	}
	return count;
}

/* From the loop's top only: a reload while a script's code is on the stack
 * (a blocking wait that runs the loop) would retire code that runs. */
static void reload(const char *why)
{
	if (mqlua_running_L || mqlua_interrupted) {
		if (!mqlua_interrupted)
			loop_timer_start(loop_default(), &settle_timer, SETTLE_S, 0);
		return;
	}
	log_debug("mqlua run: rescanning %s (%s)", dir, why);
	if (rescan() < 0)
		log_error("mqlua run: cannot read %s: %s", dir, strerror(errno));
}

static void on_settled(struct loop_timer *t)
{
	(void)t;
	reload("a file changed");
}

static void on_sighup(int signo, void *data)
{
	(void)signo, (void)data;
	log_info("SIGHUP: reloading changed scripts in %s", dir);
	reload("SIGHUP");
	for (struct script *s = scripts; s; s = s->next) {
		unsigned long e = script_errors(s);
		if (s->current)
			log_info("[%s] version %u running, %lu error%s so far", s->name, s->version, e, e == 1 ? "" : "s");
		else
			log_info("[%s] not running (it failed to load), %lu error%s so far", s->name, e, e == 1 ? "" : "s");
	}
}

static void on_inotify(struct loop_io *io, short revents)
{
	(void)io, (void)revents;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	ssize_t n;
	while ((n = read(inotify_fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->len && is_script_name(ev->name))
				relevant = true;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF))
				log_warn("mqlua run: %s was removed or moved; changes are no longer seen (SIGHUP still rescans it)", dir);
			p += sizeof *ev + ev->len;
		}
	}
	if (relevant)   /* every change restarts the settle delay */
		loop_timer_start(loop_default(), &settle_timer, SETTLE_S, 0);
}

int run_start(lua_State *L, const char *path)
{
	struct loop *loop = loop_default();
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	dir = strndup(path, n);
	runL = L;
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mqlua run: %s: %s\n", dir, stat(dir, &st) != 0 ? strerror(errno) : "not a directory");
		return 1;
	}
	mqlua_run_mode = true;
	log_prefix = owner_running_name;
	loop_timer_init(&settle_timer, on_settled, NULL);
	inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (inotify_fd < 0 || inotify_add_watch(inotify_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
	                                        IN_DELETE | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
		log_warn("mqlua run: cannot watch %s (%s): reload with SIGHUP", dir, strerror(errno));
	} else {
		loop_io_init(&inotify_io, inotify_fd, on_inotify, NULL);
		inotify_io.ref = false;
		loop_io_start(loop, &inotify_io, POLLIN);
	}
	loop_signal(loop, SIGHUP, on_sighup, NULL);
	int count = rescan();
	if (count <= 0) {
		fprintf(stderr, "mqlua run: %s: %s\n", dir, count < 0 ? strerror(errno) : "no *.lua files in it");
		return 1;
	}
	int running = 0;
	for (struct script *s = scripts; s; s = s->next)
		running += s->current != NULL;
	log_info("mqlua run: %d of %d script%s running from %s", running, count, count == 1 ? "" : "s", dir);
	loop_ref(loop);   /* a service: it waits for changes even with nothing else to do */
	return 0;
}
