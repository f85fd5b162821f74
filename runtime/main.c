/*
 * main.c - the mqlua command: options, the global `arg` table, the broker
 * to use (--broker URL or an embedded one), the script's main chunk, then
 * the shared loop until nothing keeps it alive. SIGINT/SIGTERM disconnect
 * every client cleanly (so no will is published) and exit 0; a second
 * SIGINT exits at once. With no script on a terminal, or with -i, the
 * prompt (repl.c) runs instead of the bare loop; there SIGINT only stops
 * the statement that runs. `mqlua test ...` is testmode.c's; `mqlua run DIR`
 * takes the same options, and run.c loads and reloads DIR's scripts.
 */
#include "bindings/mqlua.h"
#include "bindings/stats.h"
#include "runtime/broker.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "runtime/repl.h"
#include "runtime/run.h"
#include "runtime/script.h"
#include "runtime/testmode.h"
#include "runtime/url.h"

#include <lauxlib.h>
#include <mosquitto.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: mqlua [options] [script [args]]\n"
	"       mqlua test [options] [files or directories]   (see mqlua test --help)\n"
	"       mqlua run [options] DIR   (every script in DIR, reloaded on change; see mqlua run --help)\n"
	"\n"
	"Runs a Lua script with the mqlua MQTT library (local mqtt = require \"mqlua\").\n"
	"The event loop keeps running after the script's main chunk while a client is\n"
	"connected, a timer is armed or a task waits; then mqlua exits 0.\n"
	"\n"
	"options:\n"
	"  -e CODE              run CODE (before the script)\n"
	"  -l NAME              require library NAME into global NAME\n"
	"  -i                   open the interactive prompt after running the script\n"
	"                       (the default when no script is given and stdin is a terminal)\n"
	"  -b, --broker URL     default broker for client:connect() without a host:\n"
	"                       mqtt://[user[:password]@]host[:port], mqtts://... (TLS),\n"
	"                       or 'embedded' to start a private mosquitto on 127.0.0.1\n"
	"  -s, --store PATH     the SQLite store for queued messages, retained messages and\n"
	"                       mqlua.state (default $MQLUA_STORE, else\n"
	"                       ${XDG_STATE_HOME:-~/.local/state}/mqlua/store.db)\n"
	"  --stats-topic TOPIC  publish mqlua.stats() as JSON, retained, on TOPIC through\n"
	"                       the first connected client\n"
	"  --stats-interval S   seconds between those messages (default 10)\n"
	"  --handler-budget N   stop a handler (callback, timer, task slice) that runs more\n"
	"                       than N Lua instructions without returning or waiting: the\n"
	"                       error is logged and the loop goes on (per client:\n"
	"                       Client{handler_budget = N}; 0: none, the default)\n"
	"  -v, --verbose        debug logging, including libmosquitto's own log\n"
	"  -q, --quiet          log errors only\n"
	"      --version        print the version and exit\n"
	"  -h, --help           print this help and exit\n"
	"  --                   stop handling options\n"
	"  -                    read the script from standard input\n"
	"\n"
	"Script errors print file:line: message and a traceback, and exit 1.\n"
	"`mqlua test` runs test files, each with a fresh private broker, and prints\n"
	"`N passed, N failed`.\n"
	"Example: mqlua --broker embedded scripts/examples/broker-version.lua\n";

static lua_State *globalL;
static struct broker embedded;
static volatile sig_atomic_t interrupts;
static volatile sig_atomic_t shutdown_signo;

static bool run_dir;   /* `mqlua run DIR` */

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, run_dir ? "mqlua run: " : "mqlua: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'mqlua %s--help' for more information.\n", run_dir ? "run " : "");
	exit(2);
}

/* The first SIGINT/SIGTERM, on the loop: stop it, and make every wait
 * return, so that running handlers unwind to the top, where
 * finish_interrupted() disconnects cleanly. */
static void signal_cb(int signo, void *data)
{
	(void)data;
	if (signo == SIGINT && repl_active) {
		repl_sigint();   /* stops the running statement, or clears the line */
		return;
	}
	shutdown_signo = signo;
	mqlua_interrupted = 1;
	if (globalL)
		lua_sethook(globalL, NULL, 0, 0);
	if (mqlua_current_thread)
		lua_sethook(mqlua_current_thread, NULL, 0, 0);
	loop_stop(loop_default());
}

/* Lua code that never returns to the loop (a runaway handler or main chunk)
 * is stopped by an "interrupted" error at its next instruction. */
static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	mqlua_interrupted = 1;
	loop_stop(loop_default());
	luaL_error(L, "interrupted");
}

/* Async-signal context: a second signal ends the process at once. */
static void on_signal_async(int signo)
{
	if (signo != SIGINT && signo != SIGTERM)
		return;
	if (signo == SIGINT && repl_active) {
		repl_sigint_async();
		return;
	}
	if (++interrupts > 1)
		_exit(130);
	if (!shutdown_signo)
		shutdown_signo = signo;
	if (globalL)
		lua_sethook(globalL, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
	lua_State *task = mqlua_current_thread;   /* hooks are per coroutine */
	if (task)
		lua_sethook(task, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* After an interruption: every client sends its DISCONNECT (so no will is
 * published), then mqlua exits 0. */
static void finish_interrupted(lua_State *L)
{
	lua_sethook(L, NULL, 0, 0);
	log_info("%s: disconnecting every client and exiting", shutdown_signo == SIGTERM ? "SIGTERM" : "SIGINT");
	if (!client_shutdown(3.0))
		log_warn("some clients could not send their DISCONNECT in time");
	fflush(stdout);
	exit(0);
}

/* spec may be argv's or the environment's: its password is overwritten
 * once parsed (url_hide_password). */
static void use_broker(char *spec)
{
	if (strcmp(spec, "embedded") == 0) {
		struct broker_opts o = { .allow_anonymous = true, .show_log = log_threshold >= LOG_LEVEL_DEBUG };
		char err[1024];
		if (broker_start(&embedded, &o, err, sizeof err) != 0) {
			fprintf(stderr, "mqlua: %s\n", err);
			exit(1);
		}
		log_info("embedded broker listening on mqtt://%s:%d", embedded.host, embedded.port);
		mqlua_set_default_broker(embedded.host, embedded.port, NULL, NULL, false);
		return;
	}
	struct broker_url u;
	char err[512];
	if (url_parse(spec, &u, err, sizeof err) != 0)
		usage_error("--broker: %s", err);
	log_debug("default broker %s://%s%s%s:%d", u.tls ? "mqtts" : "mqtt", u.has_username ? u.username : "",
	          u.has_username ? "@" : "", u.host, u.port);
	mqlua_set_default_broker(u.host, u.port, u.has_username ? u.username : NULL,
	                         u.has_password ? u.password : NULL, u.tls);
	memset(&u, 0, sizeof u);
	url_hide_password(spec);
}

/* Builds the global `arg` like lua.c: arg[0] is the script, arguments after
 * it are 1..n, everything before it negative. Pushes the script arguments
 * and returns how many. */
static int create_arg_table(lua_State *L, char **argv, int argc, int script)
{
	int narg = argc - (script + 1);
	lua_createtable(L, narg, script + 1);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - script);
	}
	lua_setglobal(L, "arg");
	luaL_checkstack(L, narg + 3, "too many arguments to script");
	for (int i = script + 1; i < argc; i++)
		lua_pushstring(L, argv[i]);
	return narg;
}

int main(int argc, char **argv)
{
	char *broker_spec = getenv("MQLUA_BROKER");
	int script = 0;
	bool has_e = false, interactive = false;
	const char *stats_topic = NULL;
	double stats_interval = 10;

	if (argc > 1 && strcmp(argv[1], "test") == 0)
		return testmode_main(argc - 1, argv + 1, argv[0]);
	if (argc > 1 && strcmp(argv[1], "run") == 0) {
		run_dir = true;   /* the options below, then DIR where the script would be */
		memmove(argv + 1, argv + 2, (size_t)(argc - 1) * sizeof *argv);
		argc--;
	}

	/* first pass: options that change the environment, and where the script is */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			if (i + 1 < argc)
				script = i + 1;
			break;
		}
		if (a[0] != '-' || strcmp(a, "-") == 0) {
			script = i;
			break;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(run_dir ? run_usage : usage_text, stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			int maj, min, rev;
			mosquitto_lib_version(&maj, &min, &rev);
			printf("mqlua %s (%s, libmosquitto %d.%d.%d)\n", MQLUA_VERSION, LUA_RELEASE, maj, min, rev);
			return 0;
		} else if (strcmp(a, "-i") == 0) {
			interactive = true;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			log_threshold = LOG_LEVEL_DEBUG;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			log_threshold = LOG_LEVEL_ERROR;
		} else if (strcmp(a, "-b") == 0 || strcmp(a, "--broker") == 0) {
			if (++i == argc)
				usage_error("'%s' needs a URL or 'embedded'", a);
			broker_spec = argv[i];
		} else if (strncmp(a, "--broker=", 9) == 0) {
			broker_spec = argv[i] + 9;
		} else if (strcmp(a, "--handler-budget") == 0 || strncmp(a, "--handler-budget=", 17) == 0) {
			const char *v = a[16] == '=' ? a + 17 : (++i < argc ? argv[i] : NULL);
			char *end;
			long n = v ? strtol(v, &end, 10) : -1;
			if (!v || !*v || *end || n < 0 || n > INT_MAX)
				usage_error("--handler-budget wants a number of instructions (0: none), not '%s'", v ? v : "");
			mqlua_handler_budget = (int)n;
		} else if (strcmp(a, "-s") == 0 || strcmp(a, "--store") == 0) {
			if (++i == argc || !*argv[i])
				usage_error("'%s' needs a file path", a);
			mqlua_store_path = argv[i];
		} else if (strncmp(a, "--store=", 8) == 0) {
			mqlua_store_path = (char *)a + 8;
		} else if (strcmp(a, "--stats-topic") == 0) {
			if (++i == argc)
				usage_error("'%s' needs a topic", a);
			const char *why = topic_check_name(argv[i], strlen(argv[i]));
			if (why)
				usage_error("--stats-topic: the topic %s", why);
			stats_topic = argv[i];
		} else if (strcmp(a, "--stats-interval") == 0) {
			char *end = NULL;
			if (++i == argc || (stats_interval = strtod(argv[i], &end)) <= 0 || !end || *end || end == argv[i])
				usage_error("'%s' needs a positive number of seconds", a);
		} else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
			if (++i == argc)
				usage_error("'%s' needs an argument", a);
			has_e |= a[1] == 'e';
		} else if ((a[1] == 'e' || a[1] == 'l') && a[2]) {
			has_e |= a[1] == 'e';
		} else {
			usage_error("unrecognized option '%s'", a);
		}
	}
	if (run_dir && (!script || script != argc - 1 || interactive || has_e))
		usage_error("%s", !script ? "a directory of scripts is needed"
		                  : script != argc - 1 ? "give one directory (and options before it)"
		                  : "-i and -e do not apply");

	lua_State *L = script_new_state(argv[0]);
	if (!L) {
		fprintf(stderr, "mqlua: cannot create the Lua state: not enough memory\n");
		return 1;
	}
	globalL = L;
	mqlua_autoattach = true;
	srand48(getpid() ^ (long)loop_now_ns());

	struct loop *loop = loop_default();
	loop_signal_hook = on_signal_async;
	loop_signal(loop, SIGINT, signal_cb, NULL);
	loop_signal(loop, SIGTERM, signal_cb, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (broker_spec && *broker_spec)
		use_broker(broker_spec);
	if (stats_topic)
		stats_set_process_topic(stats_topic, stats_interval);
	mqlua_script_name_set(script ? argv[script] : has_e ? "(command line)" : NULL);

	/* second pass: -e and -l in order, as lua does */
	int end = script ? script : argc;
	for (int i = 1; i < end; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-b") == 0 || strcmp(a, "--broker") == 0 || strcmp(a, "-s") == 0 ||
		    strcmp(a, "--store") == 0 || strcmp(a, "--stats-topic") == 0 || strcmp(a, "--stats-interval") == 0 ||
		    strcmp(a, "--handler-budget") == 0) {
			i++;
			continue;
		}
		if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
			continue;
		const char *val = a[2] ? a + 2 : argv[++i];
		int status = a[1] == 'e' ? script_run_string(L, val, "=(command line)") : script_require(L, val);
		if (mqlua_interrupted)
			finish_interrupted(L);
		if (status != LUA_OK) {
			lua_close(L);
			return 1;
		}
	}

	if (run_dir) {
		if (run_start(L, argv[script]) != 0)
			return 1;
	} else if (script) {
		int narg = create_arg_table(L, argv, argc, script);
		if (script_run_file(L, argv[script], narg) != LUA_OK && !mqlua_interrupted)
			return 1;   /* no lua_close: the error said all, clients vanish with the process */
	} else if (!has_e && !interactive) {
		if (isatty(STDIN_FILENO)) {
			interactive = true;
		} else {
			create_arg_table(L, argv, argc, 0);
			if (script_run_file(L, NULL, 0) != LUA_OK && !mqlua_interrupted)
				return 1;
		}
	}

	if (interactive && !mqlua_interrupted) {
		if (!script)
			create_arg_table(L, argv, argc, 0);
		repl_run(L);   /* Ctrl-D and os.exit() exit from inside; SIGTERM returns */
		if (!mqlua_interrupted) {
			client_shutdown(3.0);
			fflush(stdout);
			exit(0);
		}
	}

	if (!mqlua_interrupted)
		loop_run(loop);
	if (mqlua_interrupted)
		finish_interrupted(L);
	lua_close(L);
	globalL = NULL;
	broker_stop(&embedded);
	return 0;
}
