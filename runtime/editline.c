/*
 * editline.c - finds libedit's functions and variables at run time for the
 * REPL (see editline.h for why it is not linked).
 */
#include "runtime/editline.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>

struct editline_api editline;

/* The soname of Debian's libedit2 (the package libedit-dev builds against). */
#define EDITLINE_SONAME "libedit.so.2"

const char *editline_load(void)
{
	static char why[512];
	static void *lib;
	if (lib)
		return NULL;
	void *h = dlopen(EDITLINE_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, sizeof why, "the REPL needs libedit (package libedit2): %s", dlerror());
		return why;
	}
	static const struct { const char *name; size_t offset; } syms[] = {
#define SYM(field, name) { name, offsetof(struct editline_api, field) }
		SYM(readline_name, "rl_readline_name"),
		SYM(basic_word_break_characters, "rl_basic_word_break_characters"),
		SYM(attempted_completion_function, "rl_attempted_completion_function"),
		SYM(attempted_completion_over, "rl_attempted_completion_over"),
		SYM(completion_append_character, "rl_completion_append_character"),
		SYM(catch_signals, "rl_catch_signals"),
		SYM(history_add, "add_history"),
		SYM(callback_read_char, "rl_callback_read_char"),
		SYM(callback_handler_install, "rl_callback_handler_install"),
		SYM(callback_handler_remove, "rl_callback_handler_remove"),
		SYM(completion_matches, "rl_completion_matches"),
		SYM(forced_update_display, "rl_forced_update_display"),
#undef SYM
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		void *p = dlsym(h, syms[i].name);
		if (!p) {
			snprintf(why, sizeof why, "the REPL needs libedit: %s has no %s", EDITLINE_SONAME, syms[i].name);
			dlclose(h);
			return why;
		}
		/* every field is one pointer: data pointers and function pointers alike */
		*(void **)((char *)&editline + syms[i].offset) = p;
	}
	lib = h;
	return NULL;
}
