/*
 * test_states.c - unit tests of the bindings in a host that runs more than
 * one Lua state (what a program embedding mqlua.so may do): tasks and their
 * pooled coroutines (bindings/task.c) stay with the state that made them,
 * and closing a state and opening another one works. fuzz_client_args,
 * which opens a Lua state per input, found the pool shared between states.
 *
 * Prints `ok - <name>` or `not ok - <name>` per case, details on `# ` lines,
 * and exits 1 if a case failed. `test_states NAME...` runs only the cases
 * whose name contains a NAME.
 */
#include "bindings/mqlua.h"
#include "runtime/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>

#include "tests/unit/check.h"

int luaopen_mqlua(lua_State *L);

static lua_State *new_state(void)
{
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	luaL_requiref(L, "mqlua", luaopen_mqlua, 1);
	lua_pop(L, 1);
	return L;
}

/* Runs chunk in L; NULL when it ran, else its error message. */
static const char *run(lua_State *L, const char *chunk)
{
	if (luaL_dostring(L, chunk) == LUA_OK)
		return NULL;
	return lua_tostring(L, -1);
}

/* 40 handlers as tasks (mqlua.spawn), more than the pool keeps */
static const char spawn_40[] =
	"local n = 0\n"
	"for i = 1, 40 do mqlua.spawn(function(x) n = n + x end, i) end\n"
	"assert(n == 820, 'the tasks ran: ' .. n)\n"
	"mqlua.spawn(function() error('an error in a task') end)\n";

static void test_a_closed_state_leaves_no_task_to_the_next(void)
{
	for (int round = 0; round < 3; round++) {
		lua_State *L = new_state();
		const char *err = run(L, spawn_40);
		if (err)
			NOTE("round %d: %s", round, err);
		lua_close(L);
	}
}

static void test_two_states_at_once_keep_their_own_tasks(void)
{
	lua_State *a = new_state(), *b = new_state();
	CHECK_STR(run(a, "who = 'a'") ? "error" : "ran", "ran");
	CHECK_STR(run(b, "who = 'b'") ? "error" : "ran", "ran");
	for (int i = 0; i < 3; i++) {
		const char *err = run(a, "mqlua.spawn(function() assert(who == 'a', 'a task of a ran in ' .. tostring(who)) end)");
		if (!err)
			err = run(b, "mqlua.spawn(function() seen = who end) assert(seen == 'b', 'ran in ' .. tostring(seen))");
		if (err)
			NOTE("pass %d: %s", i, err);
	}
	lua_close(a);
	const char *err = run(b, spawn_40);
	if (err)
		NOTE("after closing a: %s", err);
	lua_close(b);
}

static const struct check_case cases[] = {
	CHECK_CASE(test_a_closed_state_leaves_no_task_to_the_next),
	CHECK_CASE(test_two_states_at_once_keep_their_own_tasks),
};

int main(int argc, char **argv)
{
	log_threshold = -1;   /* the task that raises on purpose would log its error */
	return check_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
