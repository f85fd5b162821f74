/*
 * repl.c - the interactive prompt, modelled on lua.c's: a line is first
 * tried as `return <line>` so that an expression prints its values, an
 * unfinished statement continues on a ">> " prompt, and every chunk runs
 * protected. Unlike lua.c the prompt never blocks: libedit's callback
 * interface reads one character whenever stdin is readable, inside the
 * shared loop, and print() from callbacks erases the prompt line, prints,
 * and redraws it. History lives in ${XDG_STATE_HOME:-~/.local/state}/
 * mqlua/history (lines holding credentials are not written).
 */
#include "runtime/repl.h"
#include "bindings/mqlua.h"
#include "runtime/editline.h"
#include "runtime/log.h"
#include "runtime/loop.h"

#include <lauxlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROMPT1 "> "
#define PROMPT2 ">> "
#define EOFMARK "<eof>"

volatile sig_atomic_t repl_active;
static volatile sig_atomic_t running;          /* a chunk typed by the user runs */
static volatile sig_atomic_t pending_sigints;  /* SIGINTs already used to interrupt */
static lua_State *replL;
static struct loop_io stdin_io;
static bool in_line;                            /* inside the line handler: no prompt shown */
static bool line_done;                          /* a line was handled: libedit needs a reset */
static const char *prompt = PROMPT1;            /* the next prompt to show */
static char *chunk;                             /* lines of an unfinished statement */
static char *history_path;

static void on_line(char *line);

/* ---- signals ---- */

static void interrupted_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	luaL_error(L, "interrupted");
}

/* Ctrl-C stops the statement that runs, and the handler that runs (a
 * runaway callback while the prompt waits): that one fails with
 * "interrupted", logged as its error, and everything else goes on. */
void repl_sigint_async(void)
{
	lua_State *task = mqlua_current_thread;   /* hooks are per coroutine */
	if (!running && !task)
		return;
	pending_sigints++;
	if (task)
		lua_sethook(task, interrupted_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
	if (running) {
		mqlua_interrupted = 1;
		lua_sethook(replL, interrupted_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
	}
}

static void reset_chunk(void)
{
	free(chunk);
	chunk = NULL;
}

void repl_sigint(void)
{
	if (pending_sigints > 0) {
		pending_sigints--;      /* it interrupted a statement already */
		return;
	}
	if (running || in_line)
		return;
	/* idle prompt: drop the half-typed line (and an unfinished statement) */
	reset_chunk();
	prompt = PROMPT1;
	rl_callback_handler_remove();
	fputs("\n", stdout);
	fflush(stdout);
	rl_callback_handler_install(prompt, on_line);
}

/* ---- history ---- */

/* True if line may hold a secret: a username_pw_set or proxy_set call,
 * anything named *password*, a tls_set call with a seventh argument (its
 * keyfile_password), or a URL with a password (scheme://user:pass@). */
static bool has_credentials(const char *line)
{
	if (strstr(line, "username_pw_set") || strstr(line, "proxy_set") || strstr(line, "password"))
		return true;
	const char *tls = strstr(line, "tls_set");
	int commas = 0;
	for (const char *p = tls; p && *p; p++)
		commas += *p == ',';
	if (commas >= 6)
		return true;
	for (const char *p = strstr(line, "://"); p; p = strstr(p + 1, "://")) {
		bool colon = false;
		for (const char *q = p + 3; *q && !strchr("/ \t\"'", *q); q++) {
			if (*q == ':')
				colon = true;
			else if (*q == '@' && colon)
				return true;
		}
	}
	return false;
}

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc != 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

static void history_open(void)
{
	const char *state = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	size_t n;
	if (state && *state) {
		n = strlen(state) + 32;
		history_path = malloc(n);
		if (history_path)
			snprintf(history_path, n, "%s/mqlua/history", state);
	} else if (home && *home) {
		n = strlen(home) + 48;
		history_path = malloc(n);
		if (history_path)
			snprintf(history_path, n, "%s/.local/state/mqlua/history", home);
	}
	if (!history_path || mkdir_p(history_path) != 0)
		return;
	FILE *f = fopen(history_path, "r");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = 0;
		if (*line)
			add_history(line);
	}
	free(line);
	fclose(f);
}

static void history_append(const char *line)
{
	if (!*line)
		return;
	add_history(line);
	if (!history_path || has_credentials(line))
		return;
	int fd = open(history_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	size_t len = strlen(line);
	if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		/* history is a convenience: a full disk does not stop the prompt */
	}
	close(fd);
}

/* ---- evaluating ---- */

/* Message handler: the error message, with a traceback only when the error
 * comes from deeper than the typed chunk itself. */
static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	if (strcmp(msg, "interrupted") == 0 || strstr(msg, ": interrupted"))
		return 1;
	lua_Debug ar;
	int level = 1, lua_frames = 0;
	while (lua_getstack(L, level++, &ar)) {
		lua_getinfo(L, "S", &ar);
		if (strcmp(ar.what, "C") != 0 && strcmp(ar.what, "main") != 0)
			lua_frames++;
	}
	if (lua_frames == 0)
		return 1;
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Runs the function on top with the values it returns shown; errors are
 * printed. Ctrl-C meanwhile stops it. */
static void run_function(lua_State *L)
{
	int base = lua_gettop(L);
	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	running = 1;
	int status = lua_pcall(L, 0, LUA_MULTRET, base);
	running = 0;
	lua_sethook(L, NULL, 0, 0);
	mqlua_interrupted = 0;
	lua_remove(L, base);
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "%s\n", msg ? msg : "(error object is not a string)");
		fflush(stderr);
		lua_settop(L, base - 1);
		return;
	}
	int n = lua_gettop(L) - base + 1;
	if (n > 0) {
		/* show(...) from mqlua.repl, else plain print */
		if (lua_rawgetp(L, LUA_REGISTRYINDEX, &replL) != LUA_TFUNCTION) {
			lua_pop(L, 1);
			lua_getglobal(L, "print");
		}
		lua_insert(L, base);
		lua_pushcfunction(L, msghandler);
		lua_insert(L, base);
		if (lua_pcall(L, n, 0, base) != LUA_OK) {
			fprintf(stderr, "error showing the result: %s\n", lua_tostring(L, -1));
			lua_pop(L, 1);
		}
		lua_remove(L, base);
	}
	lua_settop(L, base - 1);
	fflush(stdout);
}

static bool incomplete(lua_State *L, int status)
{
	if (status != LUA_ERRSYNTAX)
		return false;
	size_t len;
	const char *msg = lua_tolstring(L, -1, &len);
	return msg && len >= sizeof EOFMARK - 1 && strcmp(msg + len - (sizeof EOFMARK - 1), EOFMARK) == 0;
}

/* One line from libedit (NULL at Ctrl-D on an empty line). */
static void on_line(char *line)
{
	lua_State *L = replL;
	if (!line) {
		in_line = true;   /* the prompt is gone: logs need no redraw */
		fputs("\n", stdout);
		lua_getglobal(L, "os");
		lua_getfield(L, -1, "exit");
		lua_pushinteger(L, 0);
		lua_call(L, 1, 0);   /* our os.exit: disconnects cleanly, never returns */
		return;
	}
	in_line = true;
	line_done = true;
	history_append(line);
	size_t old = chunk ? strlen(chunk) : 0, len = strlen(line);
	char *joined = realloc(chunk, old + len + 2);
	if (!joined) {
		free(line);
		in_line = false;
		return;
	}
	if (old)
		joined[old++] = '\n';
	memcpy(joined + old, line, len + 1);
	chunk = joined;
	free(line);

	/* first as an expression whose values are shown, then as statements */
	const char *ret = lua_pushfstring(L, "return %s;", chunk);
	int status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
	lua_remove(L, -2);
	if (status != LUA_OK) {
		lua_pop(L, 1);
		status = luaL_loadbuffer(L, chunk, strlen(chunk), "=stdin");
	}
	if (incomplete(L, status)) {
		lua_pop(L, 1);
		prompt = PROMPT2;
		in_line = false;
		return;
	}
	reset_chunk();
	prompt = PROMPT1;
	if (status == LUA_OK) {
		run_function(L);
	} else {
		fprintf(stderr, "%s\n", lua_tostring(L, -1));
		fflush(stderr);
		lua_pop(L, 1);
	}
	in_line = false;
}

static void on_stdin(struct loop_io *io, short revents)
{
	(void)io;
	if (revents & POLLIN) {
		line_done = false;
		rl_callback_read_char();
		if (line_done) {
			/* back to raw mode with a fresh prompt, before the next key */
			rl_callback_handler_remove();
			rl_callback_handler_install(prompt, on_line);
		}
	} else if (revents & (POLLHUP | POLLERR)) {
		on_line(NULL);   /* the terminal went away: as Ctrl-D */
	}
}

/* ---- what the prompt changes in the Lua state ---- */

static bool prompt_shown(void)
{
	return repl_active && !running && !in_line;
}

/* Log lines while the prompt shows go above it, as print() does. */
static void log_around_prompt(bool before)
{
	if (!prompt_shown())
		return;
	if (before) {
		fputs("\r\033[K", stdout);
		fflush(stdout);
	} else {
		rl_forced_update_display();
	}
}

/* print() while the prompt shows: erase the prompt line, print, redraw it
 * with what was typed so far. */
static int repl_print(lua_State *L)
{
	bool hide = prompt_shown();
	int n = lua_gettop(L);
	if (hide) {
		fputs("\r\033[K", stdout);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n, 0);
	if (hide) {
		fflush(stdout);
		rl_forced_update_display();
	}
	return 0;
}

/* os.exit([code]): every client disconnects cleanly first. */
static int repl_exit(lua_State *L)
{
	int code = lua_isboolean(L, 1) ? (lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE)
	                               : (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
	running = 0;
	mqlua_interrupted = 0;
	client_shutdown(3.0);
	if (repl_active) {
		rl_callback_handler_remove();
		repl_active = 0;
		log_around = NULL;
	}
	fflush(stdout);
	exit(code);
	return 0;
}

/* ---- completion ---- */

static char **candidates;
static size_t ncandidates, candidate_next;

static void add_candidate(const char *s)
{
	char **grown = realloc(candidates, (ncandidates + 1) * sizeof *grown);
	if (!grown)
		return;
	candidates = grown;
	candidates[ncandidates] = strdup(s);
	if (candidates[ncandidates])
		ncandidates++;
}

static char *next_candidate(const char *text, int state)
{
	(void)text;
	if (state == 0)
		candidate_next = 0;
	if (candidate_next < ncandidates)
		return strdup(candidates[candidate_next++]);
	return NULL;
}

/* Adds prefix..key for every string key of the table at idx that starts with word. */
static void add_keys(lua_State *L, int idx, const char *prefix, size_t plen, const char *word)
{
	idx = lua_absindex(L, idx);
	size_t wlen = strlen(word);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			continue;
		const char *k = lua_tostring(L, -1);
		if (strncmp(k, word, wlen) != 0 || (k[0] == '_' && word[0] != '_'))
			continue;
		lua_pushlstring(L, prefix, plen);
		lua_pushvalue(L, -2);
		lua_concat(L, 2);
		add_candidate(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
}

/* Pushes the method table of the value on top: its metatable's __index
 * table, or the first upvalue of an __index function (as Client's is). */
static bool push_index_table(lua_State *L)
{
	int top = lua_gettop(L);
	if (!lua_getmetatable(L, -1))
		return false;
	int t = lua_getfield(L, -1, "__index");
	lua_remove(L, -2);
	if (t == LUA_TTABLE)
		return true;
	if (t == LUA_TFUNCTION && lua_getupvalue(L, -1, 1) && lua_istable(L, -1)) {
		lua_remove(L, -2);
		return true;
	}
	lua_settop(L, top);
	return false;
}

/* Fields of the userdata types, which their __index computes (so no table
 * lists them). */
static const char *const message_fields[] = { "topic", "payload", "qos", "retain", "mid", "dup",
	"timestamp", "properties", NULL };
static const char *const client_fields[] = { "client_id", "host", "port", "keepalive", "protocol",
	"transport", "username", "clean_session", "on_connect", "on_disconnect", "on_message",
	"on_publish", "on_subscribe", "on_unsubscribe", "on_log", "on_connect_fail", "on_pre_connect", NULL };

static void add_userdata_fields(lua_State *L, int idx, const char *prefix, size_t plen, const char *word)
{
	const char *const *fields = luaL_testudata(L, idx, MQLUA_MESSAGE_T) ? message_fields
	                          : luaL_testudata(L, idx, MQLUA_CLIENT_T) ? client_fields : NULL;
	for (int i = 0; fields && fields[i]; i++) {
		if (strncmp(fields[i], word, strlen(word)) != 0)
			continue;
		lua_pushlstring(L, prefix, plen);
		lua_pushstring(L, fields[i]);
		lua_concat(L, 2);
		add_candidate(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
}

/* Collects the candidates for the text given as a light userdata. Runs
 * protected: reading fields may run __index metamethods, which may raise. */
static int collect_candidates(lua_State *L)
{
	const char *text = lua_touserdata(L, 1);
	const char *last = NULL;
	for (const char *p = text; *p; p++)
		if (*p == '.' || *p == ':')
			last = p;
	lua_pushglobaltable(L);
	if (last) {
		/* walk a.b.c up to the last separator; only fields, no calls */
		const char *p = text;
		while (p < last) {
			size_t n = strcspn(p, ".:");
			if (p + n > last)
				n = (size_t)(last - p);
			if (!lua_istable(L, -1) && !push_index_table(L))
				return 0;
			lua_pushlstring(L, p, n);
			lua_gettable(L, -2);    /* may run __index: fine, it is the user's own data */
			p += n;
			if (p < last && *p == ':')
				return 0;           /* a:b.c is not a path */
			if (p < last)
				p++;
		}
		size_t plen = (size_t)(last - text) + 1;
		if (*last == ':') {
			if (push_index_table(L))
				add_keys(L, -1, text, plen, last + 1);
		} else {
			if (lua_istable(L, -1))
				add_keys(L, -1, text, plen, last + 1);
			else
				add_userdata_fields(L, -1, text, plen, last + 1);
			lua_pushvalue(L, -1);
			if (push_index_table(L))
				add_keys(L, -1, text, plen, last + 1);
		}
	} else {
		add_keys(L, -1, "", 0, text);
		static const char *const keywords[] = { "and", "break", "do", "else", "elseif", "end",
			"false", "for", "function", "goto", "if", "in", "local", "nil", "not", "or",
			"repeat", "return", "then", "true", "until", "while", NULL };
		for (int i = 0; keywords[i]; i++)
			if (strncmp(keywords[i], text, strlen(text)) == 0)
				add_candidate(keywords[i]);
	}
	return 0;
}

static char **complete(const char *text, int start, int end)
{
	(void)start;
	(void)end;
	rl_attempted_completion_over = 1;
	for (size_t i = 0; i < ncandidates; i++)
		free(candidates[i]);
	ncandidates = 0;
	lua_State *L = replL;
	int top = lua_gettop(L);
	lua_pushcfunction(L, collect_candidates);
	lua_pushlightuserdata(L, (void *)text);
	lua_pcall(L, 1, 0, 0);   /* on an error: whatever was collected before it */
	lua_settop(L, top);
	if (ncandidates == 0)
		return NULL;
	return rl_completion_matches(text, next_candidate);
}

/* ---- the prompt ---- */

static void setup_lua(lua_State *L)
{
	lua_getglobal(L, "print");
	lua_pushcclosure(L, repl_print, 1);
	lua_setglobal(L, "print");
	lua_getglobal(L, "os");
	lua_pushcfunction(L, repl_exit);
	lua_setfield(L, -2, "exit");
	lua_pop(L, 1);

	lua_getglobal(L, "require");
	lua_pushliteral(L, "mqlua.repl");
	if (mqlua_pcall(L, 1, 1, "loading mqlua.repl") != LUA_OK)
		return;   /* logged; the prompt works without its helpers */
	if (lua_getfield(L, -1, "install") == LUA_TFUNCTION) {
		lua_pushglobaltable(L);
		mqlua_pcall(L, 1, 0, "mqlua.repl.install");
	} else {
		lua_pop(L, 1);
	}
	lua_getfield(L, -1, "show");
	lua_rawsetp(L, LUA_REGISTRYINDEX, &replL);
	lua_pop(L, 1);
}

int repl_run(lua_State *L)
{
	const char *why = editline_load();
	if (why) {
		fprintf(stderr, "mqlua: %s\n", why);
		return 1;
	}
	replL = L;
	setup_lua(L);

	/* before anything initialises libedit (add_history does): its signal
	 * handlers would re-send SIGINT/SIGTERM to the whole process group */
	rl_readline_name = "mqlua";
	rl_catch_signals = 0;
	history_open();
	rl_attempted_completion_function = complete;
	rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(}[]),+-*/%^~#";
	rl_completion_append_character = '\0';

	printf("mqlua %s (%s): help() lists the helpers, Ctrl-D quits\n", MQLUA_VERSION, LUA_RELEASE);
	fflush(stdout);
	repl_active = 1;
	log_around = log_around_prompt;
	rl_callback_handler_install(PROMPT1, on_line);
	struct loop *loop = loop_default();
	loop_io_init(&stdin_io, STDIN_FILENO, on_stdin, NULL);
	loop_io_start(loop, &stdin_io, POLLIN);
	loop_run(loop);
	loop_io_stop(loop, &stdin_io);
	rl_callback_handler_remove();
	repl_active = 0;
	log_around = NULL;
	fputs("\n", stdout);
	fflush(stdout);
	return 0;
}
