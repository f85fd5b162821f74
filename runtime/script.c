/*
 * script.c - see script.h.
 */

#include "runtime/script.h"
#include "bindings/mqlua.h"

#include <lualib.h>
#include <lauxlib.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int luaopen_mqlua(lua_State *L);

/* Prints an error left by a failed chunk on stderr, as lua.c does. */
static int report(lua_State *L, int status)
{
	if (status != LUA_OK && mqlua_interrupted) {
		lua_pop(L, 1);   /* stopped by SIGINT/SIGTERM: not an error of the script */
		return status;
	}
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		if (!msg)
			msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
		fprintf(stderr, "mqlua: %s\n", msg);
		fflush(stderr);
		lua_pop(L, 1);
	}
	return status;
}

static bool main_waited;   /* the main chunk has waited: main() is in the loop */

/* The main chunk failed (its traceback on top of co): reported as lua.c
 * does; after it has waited, nobody returns its status, so exit here. */
static void main_failed(lua_State *co)
{
	report(co, LUA_ERRRUN);
	if (main_waited && !mqlua_interrupted)
		exit(1);
}

static int docall(lua_State *L, int narg, int nres)
{
	int base = lua_gettop(L) - narg;
	lua_pushcfunction(L, mqlua_traceback);
	lua_insert(L, base);
	int status = lua_pcall(L, narg, nres, base);
	lua_remove(L, base);
	return status;
}

/* package.path gets <dir of the executable>/../scripts first, so that
 * build/mqlua finds the Lua modules under the repository's scripts/. */
static void set_paths(lua_State *L, const char *exe_path)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0) {
		if (!exe_path)
			return;
		snprintf(exe, sizeof exe, "%s", exe_path);
	} else {
		exe[n] = 0;
	}
	char *dir = dirname(exe);
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "path");
	lua_pushfstring(L, "%s/../scripts/?.lua;%s/../scripts/?/init.lua;/usr/share/mqlua/?.lua;%s",
	                dir, dir, lua_tostring(L, -1));
	lua_setfield(L, -3, "path");
	lua_pop(L, 2);
}

lua_State *script_new_state(const char *exe_path)
{
	lua_State *L = luaL_newstate();
	if (!L)
		return NULL;
	luaL_openlibs(L);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen_mqlua);
	lua_setfield(L, -2, "mqlua");
	lua_pop(L, 1);
	set_paths(L, exe_path);
	return L;
}

int script_run_file(lua_State *L, const char *path, int nargs)
{
	if (path && strcmp(path, "-") == 0)
		path = NULL;
	int status = luaL_loadfile(L, path);
	if (status != LUA_OK) {
		lua_insert(L, -(nargs + 1));
		lua_pop(L, nargs);
		return report(L, status);
	}
	lua_insert(L, -(nargs + 1));
	task_set_main_failed(main_failed);
	main_waited = false;
	status = task_call(L, nargs, NULL);
	if (status == LUA_YIELD)
		main_waited = true;   /* it goes on as a task on the loop */
	return status == LUA_YIELD ? LUA_OK : status;
}

int script_run_string(lua_State *L, const char *code, const char *name)
{
	int status = luaL_loadbuffer(L, code, strlen(code), name);
	if (status == LUA_OK)
		status = docall(L, 0, 0);
	return report(L, status);
}

int script_require(lua_State *L, const char *name)
{
	lua_getglobal(L, "require");
	lua_pushstring(L, name);
	int status = docall(L, 1, 1);
	if (status == LUA_OK)
		lua_setglobal(L, name);
	return report(L, status);
}
