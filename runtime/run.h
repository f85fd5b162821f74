/*
 * run.h - `mqlua run DIR`: every *.lua in DIR as a script of its own,
 * reloaded when its file changes (inotify) or on SIGHUP.
 */
#ifndef MQLUA_RUN_H
#define MQLUA_RUN_H

#include <lua.h>

extern const char run_usage[];

/* Loads every *.lua in dir (sorted by name) and starts watching dir. Prints
 * why and returns non-zero when dir cannot be read or holds no *.lua file;
 * a script that fails to load is logged and skipped. The loop then stays
 * alive (the watch) until SIGINT/SIGTERM. */
int run_start(lua_State *L, const char *dir);

#endif
