/*
 * fuzz_lua.h - random Lua values from fuzzer input, for the targets that
 * call the bindings with them (fuzz_properties.c, fuzz_client_args.c).
 *
 * The input is read as a byte stream; when it runs out every read gives 0,
 * so any input is a valid program. Values: nil, booleans, integers
 * (extremes included), floats (NaN, infinities, -0.0 ...), strings of input
 * bytes (NULs and invalid UTF-8 included), names from a dictionary, long
 * strings around the 65535-byte limit, nested tables, functions, a light
 * userdata and a coroutine.
 */
#ifndef MQLUA_FUZZ_LUA_H
#define MQLUA_FUZZ_LUA_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

struct fz {
	const uint8_t *p;
	size_t n;
	int budget;            /* values left to make; 0: every further value is nil */
};

/* The next byte (0 once the input is used up). */
uint8_t fz_byte(struct fz *in);

/* Strings that tables use as keys and that often make a value: parameter,
 * property, callback and attribute names, option words, topics. NULL-terminated. */
extern const char *const fz_names[];

/* The keys fz_push_table picks from (fz_names unless a target sets them). */
extern const char *const *fz_keys;
extern size_t fz_nkeys;

/* Pushes one value read from in; tables nest at most depth levels more.
 * Never raises but for out of memory (call it under lua_pcall). */
void fz_push_value(lua_State *L, struct fz *in, int depth);
/* Pushes a table read from in (its keys mostly names from fz_names). */
void fz_push_table(lua_State *L, struct fz *in, int depth);

#endif
