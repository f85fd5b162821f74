/*
 * script.h - the runtime's Lua state: standard libraries, `mqlua` preloaded,
 * package.path pointing at mqlua's own Lua modules, and running chunks the
 * way lua.c does (errors with a traceback, the global `arg`).
 */
#ifndef MQLUA_SCRIPT_H
#define MQLUA_SCRIPT_H

#include <lua.h>

/* A new state with everything opened; NULL when out of memory. */
lua_State *script_new_state(const char *exe_path);
/* Runs the file (NULL or "-" for stdin) with the given arguments on the
 * stack... as the script's main chunk. Returns LUA_OK or prints the error
 * with its traceback (prefixed "mqlua: ") and returns the status. */
int script_run_file(lua_State *L, const char *path, int nargs);
int script_run_string(lua_State *L, const char *code, const char *name);
/* require(name) and set the global of the same name, as lua -l does. */
int script_require(lua_State *L, const char *name);

#endif
