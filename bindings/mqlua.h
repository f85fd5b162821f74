/*
 * mqlua.h - what the binding files share: type names, the protected-call
 * path every callback into Lua goes through, argument helpers, the default
 * broker, and the entry points of each Lua type.
 */
#ifndef MQLUA_BINDINGS_H
#define MQLUA_BINDINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>
#include <mosquitto.h>

#define MQLUA_VERSION "0.1.0"

#define MQLUA_CLIENT_T  "mqlua.Client"
#define MQLUA_MESSAGE_T "mqlua.MQTTMessage"
#define MQLUA_INFO_T    "mqlua.MQTTMessageInfo"
#define MQLUA_BROKER_T  "mqlua.Broker"

/* Calls the function below nargs arguments on the stack in protected mode
 * with a traceback; with nresults 0 it runs as a task (task_call), so it may
 * wait. On error, logs "error in <what>: <message>" with the
 * traceback, counts it in mqlua_callback_errors and leaves nothing on the
 * stack; out-of-memory is fatal. Returns the lua_pcall status. */
int mqlua_pcall(lua_State *L, int nargs, int nresults, const char *what);
/* mqlua_pcall for a handler with its own instruction budget (nresults 0;
 * budget < 0: mqlua_handler_budget, 0: none). */
int mqlua_pcall_budget(lua_State *L, int nargs, const char *what, int budget);
extern unsigned long mqlua_callback_errors;
/* $MQLUA_PLAIN_HANDLERS=1 (a benchmark's baseline): mqlua_pcall never makes a task. */
extern bool mqlua_plain_handlers;
/* ---- tasks (task.c) ---- */
/* Runs the function below nargs arguments as a task on a pooled coroutine.
 * An error is logged as "error in <what>: ..." with its traceback and
 * counted (what NULL: the main chunk, reported through the function given to
 * task_set_main_failed). Returns LUA_OK, LUA_YIELD when the task now waits,
 * or the error status. Nothing is left on L's stack. */
int task_call(lua_State *L, int nargs, const char *what);
/* task_call with an instruction budget per slice (0: none; see task.c);
 * task_call gives handlers (what not NULL) mqlua_handler_budget. */
int task_call_budget(lua_State *L, int nargs, const char *what, int budget);
/* The budget of every handler without one of its own (--handler-budget); 0: none. */
extern int mqlua_handler_budget;
void task_set_main_failed(void (*fn)(lua_State *co));
/* What the next task_call handles (a filter, a topic), named in its error
 * log line; task_call consumes it. */
extern const char *task_detail;
/* True when L is the running task's coroutine and may yield to the loop. */
bool task_can_wait(lua_State *L);
/* Suspends the running task (task_can_wait(L) must be true) until done(ud)
 * holds (checked before each poll; done NULL: never) or timeout seconds
 * passed (negative: none), then continues in k. ud must outlive the wait.
 * A waiting task keeps the loop alive. */
int task_wait(lua_State *L, bool (*done)(void *ud), void *ud, double timeout,
              lua_KFunction k, lua_KContext ctx);
/* In a continuation: whether the wait ended by its timeout. */
bool task_timed_out(lua_State *L);
void task_open(lua_State *L);
/* The coroutine of the running task (the main thread's code otherwise:
 * NULL), for the interrupt hook. */
extern lua_State *volatile mqlua_current_thread;

/* ---- script owners (owner.c), for `mqlua run DIR` ---- */
/* In run mode every task belongs to one version of one script (an owner):
 * the main chunk task to the version being loaded, a callback's task to the
 * version that registered its function (client.on_* = fn,
 * message_callback_add, mqlua.after/every/at), else to the task that
 * started it (mqlua.spawn). Reloading a script retires its old version:
 * what that version set up (timers, waiting tasks, callbacks, the filters
 * only it subscribed, the clients it made and the new version did not take
 * over) is removed. Outside run mode nothing is recorded. */
struct mqlua_owner;
extern bool mqlua_run_mode;
/* The name of the script the running task belongs to: in run mode its
 * owner's, else the main script's (script_name.c: a file's basename,
 * "(command line)" for -e code), or NULL. The pointer stays the same (and
 * valid) while the name does: stats.c compares pointers first. */
const char *mqlua_script_name(void);
/* script_name.c: names the main script (outside run mode), and reads it. */
void mqlua_script_name_set(const char *path);
const char *mqlua_main_script_name(void);
/* task.c: the owner of the running task, or NULL. */
struct mqlua_owner *task_owner(void);
/* task.c: ends the waits of every task of o (their coroutines are closed). */
void task_cancel_owner(const struct mqlua_owner *o);
/* timer.c: cancels every armed timer of o (durable rows stay). */
void timer_cancel_owner(const struct mqlua_owner *o);
/* A new owner named name (a script's file name); owners are never freed,
 * so a name may be kept while any function of that version lives. */
struct mqlua_owner *owner_new(const char *name);
const char *owner_name(const struct mqlua_owner *o);
/* The name of the running task's owner, or NULL (run mode's log prefix). */
const char *owner_running_name(void);
/* Errors of tasks of o so far (counted by task.c through owner_count_error). */
unsigned long owner_errors(const struct mqlua_owner *o);
void owner_count_error(struct mqlua_owner *o);
/* True when a and b are versions of the same script. */
bool owner_same_script(const struct mqlua_owner *a, const struct mqlua_owner *b);
/* Records that the function (or callable) at idx belongs to the running
 * task's owner (owner_claim) or to o (owner_claim_as). */
void owner_claim(lua_State *L, int idx);
void owner_claim_as(lua_State *L, int idx, struct mqlua_owner *o);
/* The owner the function at idx was claimed by, or NULL. */
struct mqlua_owner *owner_of(lua_State *L, int idx);
/* While a new version's main chunk runs: remembers tbl[key] (stack indexes)
 * before the caller overwrites it, so a failed load can put it back. */
void owner_note_write(lua_State *L, int tbl, int key);
/* Likewise for state that is not a table slot: remembers the call f(the n
 * values on top, nil allowed) that puts back what the caller is about to
 * change, and pops them; undone calls run newest first with the writes. */
void owner_note_call(lua_State *L, lua_CFunction f, int n);
/* True while a new version's main chunk loads (writes are being noted). */
bool owner_noting(void);
/* mqtt.Client(id) in a new version: when the previous version of the same
 * script made a client with this id, pushes it (it is the new version's
 * now; connect() on it is a no-op while the main chunk runs) and returns
 * true. owner_client_made records a new client at ud as the running owner's. */
bool owner_reuse_client(lua_State *L, const char *id);
void owner_client_made(lua_State *L, int ud);
/* client:subscribe / unsubscribe of filter by the client at ud. */
void owner_subscribed(lua_State *L, int ud, const char *filter);
void owner_unsubscribed(lua_State *L, int ud, const char *filter);
/* Loading a version: owner_load_begin before its main chunk runs (as a task
 * of v, see owner_claim_as); owner_load_end after it returned or first
 * waited. ok: the new version's on_connect runs once for every connected
 * client it took over, then old (if any) is retired. Not ok: what v's main
 * chunk overwrote is put back and v is retired, so old goes on as before. */
void owner_load_begin(lua_State *L, struct mqlua_owner *v);
void owner_load_end(lua_State *L, struct mqlua_owner *v, struct mqlua_owner *old, bool ok);
/* Removes what version o set up (see above). */
void owner_retire(lua_State *L, struct mqlua_owner *o);
/* client_net.c: calls c's on_connect as after a CONNACK with session_present
 * (a reloaded script's view of a connection that stayed). */
struct client;
void client_replay_on_connect(struct client *c);

/* A message handler for lua_pcall that appends a traceback. */
int mqlua_traceback(lua_State *L);

/* If the only argument at index `first` is a table holding at least one of
 * `names` as a key, replaces it on the stack by those fields in order (nil
 * where absent), so every method accepts paho's keyword form as a table. */
void mqlua_named_args(lua_State *L, int first, const char *const names[]);
/* Pushes the table with weak keys that the registry holds under key (made on
 * first use). */
void mqlua_push_weak_table(lua_State *L, const void *key);
/* Pushes t[k] (t and k stack indexes); with create, a new table is stored
 * there when it is absent. Returns the type of what was pushed. */
int mqlua_push_subtable(lua_State *L, int t, int k, bool create);
/* Optional boolean argument: nil/none gives def, a non-boolean raises. */
bool mqlua_optboolean(lua_State *L, int arg, bool def, const char *name);

/* Where client:connect() goes when it is given no host (--broker, or an
 * embedded broker). Strings are owned by the bindings. */
struct mqlua_default_broker {
	char *host;
	int port;
	char *username;
	char *password;
	bool tls;
};
extern struct mqlua_default_broker mqlua_default_broker;
void mqlua_set_default_broker(const char *host, int port, const char *username,
                              const char *password, bool tls);

/* Set by the runtime: clients attach themselves to the shared loop when they
 * connect, so a script needs no loop_forever(). False under plain lua5.4. */
extern bool mqlua_autoattach;

/* ---- the stores (bindings/store.c) ---- */
struct store;
/* The path of the process's store: --store, else $MQLUA_STORE, else
 * ${XDG_STATE_HOME:-~/.local/state}/mqlua/store.db. */
extern char *mqlua_store_path;
/* The store at path (NULL: the process's store) with the given durability
 * (enum store_durability), opened on first use and shared by every client
 * naming the same path; a memory store is shared by all "memory" clients.
 * Its writes are committed once per loop iteration and at exit. NULL with
 * the reason in err. */
struct store *mqlua_store(const char *path, int durability, char *err, size_t errlen);
/* Commits every open store now (also done by the loop and at exit). */
void mqlua_store_commit_all(void);
void store_bindings_open(lua_State *L);  /* registers the commit hook; sets mqlua.state */
void state_open(lua_State *L);           /* sets field `state` of the table on top */

/* Per type entry points (one file each). */
void client_open(lua_State *L);          /* metatables; pushes nothing */
int client_new(lua_State *L);            /* mqtt.Client(...) */
void client_sub_open(lua_State *L);      /* sets SubscribeOptions and RETAIN_* in the table on top */
/* Disconnects every client and runs the loop until their DISCONNECTs are
 * written (at most timeout seconds). Call it from the top of the loop, not
 * from inside a callback. Returns true when all are detached. */
bool client_shutdown(double timeout);
void message_open(lua_State *L);
/* Pushes an MQTTMessage; props are the MQTT v5 properties it came with (msg.properties:
 * a table for an MQTT v5 client, empty when none came; nil for MQTT 3.1/3.1.1). */
void message_push(lua_State *L, int mid, const char *topic, const void *payload,
                  size_t payloadlen, int qos, bool retain, bool dup,
                  const mosquitto_property *props, bool v5);
void broker_open(lua_State *L);          /* pushes the mqlua.broker table */
void topic_open(lua_State *L);           /* sets topic functions in the table on top */
void timer_open(lua_State *L);           /* sets after/every in the table on top */

/* Topic names and filters (topic.c, no Lua needed). The validators return
 * NULL when valid, else a phrase saying what is wrong. */
const char *topic_check_name(const char *topic, size_t len);
const char *topic_check_filter(const char *filter, size_t len);
bool topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);

/* The Lua thread that is running the C function which entered libmosquitto
 * or the loop; callbacks must run on it (NULL: the main thread). Set it with
 * MQLUA_ENTER/MQLUA_LEAVE around calls that may run callbacks, and raise no
 * Lua error in between. */
extern lua_State *mqlua_running_L;
#define MQLUA_ENTER(L) lua_State *mqlua_saved_L_ = mqlua_running_L; mqlua_running_L = (L)
#define MQLUA_LEAVE() (mqlua_running_L = mqlua_saved_L_)

/* Set when SIGINT or SIGTERM asked the process to stop. Waits then return
 * at once, and the blocking functions raise "interrupted", so that running
 * handlers unwind back to the top of the loop, where the runtime can
 * disconnect every client cleanly (a DISCONNECT queued inside a libmosquitto
 * callback would never be written). */
extern volatile int mqlua_interrupted;
/* Raises the "interrupted" error when mqlua_interrupted is set. */
void mqlua_check_interrupted(lua_State *L);

/* Runs the shared loop (one iteration at most `timeout` seconds) until
 * done(ud) is true or `timeout` total seconds passed (negative: no limit).
 * Returns true when done. */
bool mqlua_wait(bool (*done)(void *ud), void *ud, double timeout);

#endif
