/*
 * task.c - tasks: Lua functions run on coroutines that may wait.
 *
 * Every script callback (on_message, message_callback_add handlers, timers...)
 * and the main chunk of a script run as tasks. A task that calls a waiting
 * function (mqlua.sleep, info:wait_for_publish, client:wait_message,
 * mqlua.wait_until) yields back to the loop, which resumes it when what it
 * waits for has happened or its timeout has passed; meanwhile other handlers
 * run. Most handlers never wait, so coroutines are pooled: a handler that
 * returns leaves its coroutine for the next one.
 *
 * Outside a task (the REPL's statements, -e chunks, a coroutine the script
 * made itself, plain lua5.4 code) the waiting functions keep their blocking
 * form: they run the loop until done.
 *
 * A host may run several Lua states with mqlua.so, or close one and open
 * another: each task remembers its state, a coroutine is only reused in the
 * state that made it, and a closing state takes its tasks with it.
 */
#include "bindings/mqlua.h"
#include "bindings/stats.h"
#include "runtime/log.h"
#include "runtime/loop.h"

#include <stdio.h>
#include <stdlib.h>

#define POOL_MAX 32

struct task {
	lua_State *main;           /* the main thread of co's Lua state */
	lua_State *co;
	int ref;                   /* registry reference keeping co alive */
	const char *what;          /* names the task in error logs; NULL: the main chunk */
	const char *detail;        /* what it handles (a filter, a topic), or NULL */
	char detail_copy[128];     /* detail once the caller's string may be gone */
	struct stats_task stats;   /* its client and script, and its run time */
	struct mqlua_owner *owner; /* run mode: the script version it belongs to (owner.c) */
	/* while waiting */
	bool waiting;
	bool (*done)(void *ud);    /* NULL: only the timer wakes it */
	void *ud;
	bool timed_out;
	unsigned long pass;        /* the hook pass it was resumed in */
	int budget;                /* instructions per slice, 0: none (budget_arm) */
	bool spoiled;              /* ended by an error, maybe from a hook: not pooled */
	struct loop_timer timer;
	struct task *prev, *next;  /* the waiting list, or the pool */
};

static struct task *pool;
static int pool_size;
static struct task *waiting;
static struct loop_hook hook;
static unsigned long hook_pass;
static struct task *current;   /* the task being resumed (innermost) */
static int64_t nested;         /* run time (stats ticks) of tasks resumed inside the running slice */
static void (*main_failed)(lua_State *L);

lua_State *volatile mqlua_current_thread;
const char *task_detail;
int mqlua_handler_budget;

/* ---- instruction budgets ----
 * A task with a budget runs its coroutine under a count hook: each slice
 * (from a call or a resume to its next wait or its end) may run that many
 * Lua instructions; then it fails with "handler exceeded its budget of N
 * instructions". The hook then fires at every instruction, so a pcall in
 * the handler cannot catch the error and go on. Time spent inside one C
 * function (a huge string.rep) is not counted. */

static int spent_budget;   /* the budget named by budget_spent_hook's error */

static void budget_spent_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	luaL_error(L, "handler exceeded its budget of %d instructions", spent_budget);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	spent_budget = lua_gethookcount(L);
	lua_sethook(L, budget_spent_hook, LUA_MASKCOUNT, 1);
	luaL_error(L, "handler exceeded its budget of %d instructions", spent_budget);
}

/* Before a slice of t: a fresh budget (a SIGINT hook already set stays). */
static void budget_arm(struct task *t)
{
	if (t->budget > 0 && !lua_gethook(t->co))
		lua_sethook(t->co, budget_hook, LUA_MASKCOUNT, t->budget);
}

/* After a slice: the coroutine goes back to the pool without a hook (also
 * an interrupt hook that came after the slice's last instruction). */
static void budget_disarm(struct task *t)
{
	if (lua_gethook(t->co))
		lua_sethook(t->co, NULL, 0, 0);
}

static lua_State *main_of(lua_State *L)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	lua_State *main = lua_tothread(L, -1);
	lua_pop(L, 1);
	return main;
}

static struct task *task_get(lua_State *L)
{
	lua_State *main = main_of(L);
	struct task **p = &pool;
	while (*p && (*p)->main != main)
		p = &(*p)->next;
	struct task *t = *p;
	if (t) {
		*p = t->next;
		pool_size--;
	} else {
		t = calloc(1, sizeof *t);
		if (!t) {
			log_error("out of memory starting a task");
			abort();
		}
		t->main = main;
		t->co = lua_newthread(L);
		t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	t->next = t->prev = NULL;
	return t;
}

/* A finished task's coroutine goes back to the pool, or is released. */
static void task_put(struct task *t)
{
	lua_settop(t->co, 0);
	if (pool_size < POOL_MAX && lua_status(t->co) == LUA_OK && !t->spoiled) {
		t->next = pool;
		pool = t;
		pool_size++;
		return;
	}
	luaL_unref(t->main, LUA_REGISTRYINDEX, t->ref);
	free(t);
}

static void report_error(lua_State *co, struct task *t)
{
	const char *msg = lua_tostring(co, -1);
	if (!msg)
		msg = lua_pushfstring(co, "(error object is a %s value)", luaL_typename(co, -1));
	luaL_traceback(co, co, msg, 0);
	if (t->owner && !mqlua_interrupted)
		owner_count_error(t->owner);
	if (!t->what) {
		if (main_failed)
			main_failed(co);
		return;
	}
	const char *d = t->detail;
	if (mqlua_interrupted) {
		log_debug("%s stopped: %s", t->what, lua_tostring(co, -1));
	} else {
		mqlua_callback_errors++;
		stats_task_failed(&t->stats);
		/* in run mode the log's own prefix names the script */
		log_error("%s%s%serror in %s%s%s%s: %s", mqlua_run_mode ? "" : "[",
		          mqlua_run_mode ? "" : stats_task_script(&t->stats), mqlua_run_mode ? "" : "] ",
		          t->what, d ? " (" : "", d ? d : "", d ? ")" : "", lua_tostring(co, -1));
	}
}

/* In run mode the error counts for t's script, and its log line names it. */
static void report_owned_error(lua_State *co, struct task *t)
{
	struct task *outer = current;
	current = t;   /* log lines name t's script */
	report_error(co, t);
	current = outer;
}

/* Resumes t with narg arguments on its stack; handles the outcome. */
static int task_resume(struct task *t, int narg)
{
	struct task *outer = current;
	lua_State *outer_thread = mqlua_current_thread;
	current = t;
	mqlua_current_thread = t->co;
	lua_State *saved_running = mqlua_running_L;
	mqlua_running_L = t->co;
	/* the slice's own run time: tasks resumed inside it count for themselves */
	int64_t outer_nested = nested;
	nested = 0;
	uint64_t start = stats_ticks();
	int nres;
	budget_arm(t);
	int status = lua_resume(t->co, NULL, narg, &nres);
	int64_t slice = (int64_t)(stats_ticks() - start);
	t->stats.run += slice - nested;
	nested = outer_nested + slice;
	budget_disarm(t);
	mqlua_running_L = saved_running;
	current = outer;
	mqlua_current_thread = outer_thread;
	if (status == LUA_YIELD) {
		if (t->waiting)
			return status;
		/* a bare coroutine.yield() in a handler: there is nobody to resume it */
		lua_settop(t->co, 0);
		lua_pushliteral(t->co, "attempt to yield from a handler (coroutine.yield outside a coroutine "
		                "the script created)");
		status = LUA_ERRRUN;
	}
	if (status == LUA_ERRMEM) {
		log_error("out of memory in %s", t->what ? t->what : "the main chunk");
		abort();
	}
	if (status != LUA_OK) {
		report_owned_error(t->co, t);
		lua_resetthread(t->co);
		/* an error raised by a hook (budget, SIGINT) leaves the coroutine
		 * with hooks disabled for good (lua_resetthread does not undo it) */
		t->spoiled = true;
	}
	if (t->what)
		stats_task_end(&t->stats);
	task_put(t);
	return status;
}

/* Run mode: a task belongs to the owner of its function, else to the task
 * that starts it. */
static struct mqlua_owner *owner_for(lua_State *L, int nargs)
{
	if (!mqlua_run_mode)
		return NULL;
	struct mqlua_owner *o = owner_of(L, -(nargs + 1));
	return o ? o : current ? current->owner : NULL;
}

int task_call(lua_State *L, int nargs, const char *what)
{
	return task_call_budget(L, nargs, what, what ? mqlua_handler_budget : 0);
}

int task_call_budget(lua_State *L, int nargs, const char *what, int budget)
{
	struct mqlua_owner *owner = owner_for(L, nargs);
	struct task *t = task_get(L);
	t->what = what;
	t->detail = task_detail;
	t->owner = owner;
	t->budget = budget;
	t->waiting = false;
	if (what)
		stats_task_start(&t->stats, what);
	task_detail = NULL;     /* consumed: tasks this one starts are not the caller's */
	stats_client = NULL;
	lua_xmove(L, t->co, nargs + 1);
	return task_resume(t, nargs);
}

void task_set_main_failed(void (*fn)(lua_State *L))
{
	main_failed = fn;
}

bool task_can_wait(lua_State *L)
{
	return current && current->co == L && !mqlua_interrupted && lua_isyieldable(L);
}

static void unlink_waiting(struct task *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		waiting = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
}

/* Ends t's wait; its continuation will read timed_out. */
static void end_wait(struct task *t, bool timed_out)
{
	unlink_waiting(t);
	loop_timer_stop(loop_default(), &t->timer);
	loop_unref(loop_default());
	t->waiting = false;
	t->timed_out = timed_out;
	t->pass = hook_pass;
}

static void resume_deferred(void *data)
{
	task_resume(data, 0);
}

/* Resumed from a deferred call, not from here: the loop still touches the
 * timer (inside t) after this returns, and the task may end and be freed. */
static void on_timer(struct loop_timer *lt)
{
	struct task *t = lt->data;
	end_wait(t, true);
	if (loop_defer(loop_default(), resume_deferred, t) != 0) {
		log_error("out of memory resuming a task");
		abort();
	}
}

static void nothing(void *data)
{
	(void)data;
}

/* Before each poll: resume every task whose condition holds (once per pass,
 * so a task that waits again at once does not spin here). */
static void on_hook(struct loop_hook *h)
{
	(void)h;
	hook_pass++;
	bool again = true, resumed = false;
	while (again) {
		again = false;
		for (struct task *t = waiting; t; t = t->next) {
			if (t->pass != hook_pass && (mqlua_interrupted || (t->done && t->done(t->ud)))) {
				end_wait(t, false);
				task_resume(t, 0);
				again = resumed = true;   /* the list changed under us */
				break;
			}
		}
	}
	/* what the resumed tasks published is committed by the next iteration's
	 * hooks: make it come without sleeping */
	if (resumed)
		loop_defer(loop_default(), nothing, NULL);
	if (!waiting)
		loop_hook_stop(loop_default(), &hook);
}

int task_wait(lua_State *L, bool (*done)(void *ud), void *ud, double timeout,
              lua_KFunction k, lua_KContext ctx)
{
	struct task *t = current;
	struct loop *loop = loop_default();
	if (t->detail && t->detail != t->detail_copy) {
		snprintf(t->detail_copy, sizeof t->detail_copy, "%s", t->detail);
		t->detail = t->detail_copy;
	}
	t->waiting = true;
	t->done = done;
	t->ud = ud;
	t->timed_out = false;
	t->next = waiting;
	t->prev = NULL;
	if (waiting)
		waiting->prev = t;
	waiting = t;
	loop_timer_init(&t->timer, on_timer, t);
	t->timer.ref = false;   /* the loop_ref below keeps the loop alive */
	if (timeout >= 0)
		loop_timer_start(loop, &t->timer, timeout, 0);
	loop_ref(loop);
	if (!hook.active) {
		loop_hook_init(&hook, on_hook, NULL);
		loop_hook_start(loop, &hook);
	}
	return lua_yieldk(L, 0, ctx, k);
}

bool task_timed_out(lua_State *L)
{
	(void)L;
	return current && current->timed_out;
}

struct mqlua_owner *task_owner(void)
{
	return current ? current->owner : NULL;
}

void task_cancel_owner(const struct mqlua_owner *o)
{
	struct task *t = waiting;
	while (t) {
		if (t->owner != o) {
			t = t->next;
			continue;
		}
		end_wait(t, false);
		lua_resetthread(t->co);   /* may run __close handlers: start over after */
		task_put(t);
		t = waiting;
	}
}

/* __gc of a sentinel in the registry: the Lua state is being closed, and its
 * pooled and waiting tasks (whose coroutines go with it) are forgotten. */
static int state_closing(lua_State *L)
{
	lua_State *main = main_of(L);
	for (struct task **p = &pool; *p;) {
		struct task *t = *p;
		if (t->main != main) {
			p = &t->next;
			continue;
		}
		*p = t->next;
		pool_size--;
		free(t);
	}
	for (struct task *t = waiting, *next; t; t = next) {
		next = t->next;
		if (t->main == main) {
			end_wait(t, false);
			free(t);
		}
	}
	return 0;
}

void task_open(lua_State *L)
{
	static const char sentinel_key = 's';
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sentinel_key) == LUA_TNIL) {
		lua_newuserdatauv(L, 1, 0);
		lua_createtable(L, 0, 1);
		lua_pushcfunction(L, state_closing);
		lua_setfield(L, -2, "__gc");
		lua_setmetatable(L, -2);
		lua_rawsetp(L, LUA_REGISTRYINDEX, &sentinel_key);
	}
	lua_pop(L, 1);
}
