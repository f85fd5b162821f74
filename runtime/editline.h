/*
 * editline.h - libedit for the REPL, loaded with dlopen() when the REPL
 * starts (editline.c), so that running a script maps neither libedit nor
 * what it pulls in (libtinfo, libbsd, libmd): a smaller idle process and a
 * faster start. The REPL includes this instead of <editline/readline.h> and
 * uses the usual names, which the macros below route through the loaded
 * library; nothing may use them before editline_load() succeeded.
 */
#ifndef MQLUA_EDITLINE_H
#define MQLUA_EDITLINE_H

#include <editline/readline.h>

struct editline_api {
	const char **readline_name;
	const char **basic_word_break_characters;
	rl_completion_func_t **attempted_completion_function;
	int *attempted_completion_over;
	int *completion_append_character;
	int *catch_signals;
	int (*history_add)(const char *);
	void (*callback_read_char)(void);
	void (*callback_handler_install)(const char *, rl_vcpfunc_t *);
	void (*callback_handler_remove)(void);
	char **(*completion_matches)(const char *, rl_compentry_func_t *);
	void (*forced_update_display)(void);
};
extern struct editline_api editline;

/* Loads libedit (once). Returns NULL, or words saying why it cannot be used. */
const char *editline_load(void);

#define rl_readline_name (*editline.readline_name)
#define rl_basic_word_break_characters (*editline.basic_word_break_characters)
#define rl_attempted_completion_function (*editline.attempted_completion_function)
#define rl_attempted_completion_over (*editline.attempted_completion_over)
#define rl_completion_append_character (*editline.completion_append_character)
#define rl_catch_signals (*editline.catch_signals)
#define add_history (editline.history_add)
#define rl_callback_read_char (editline.callback_read_char)
#define rl_callback_handler_install (editline.callback_handler_install)
#define rl_callback_handler_remove (editline.callback_handler_remove)
#define rl_completion_matches (editline.completion_matches)
#define rl_forced_update_display (editline.forced_update_display)

#endif
