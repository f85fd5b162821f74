/*
 * repl.h - the interactive prompt (`mqlua` on a terminal, `mqlua -i`):
 * libedit's callback interface on the shared loop, so that messages,
 * timers and reconnects are handled while the user types.
 */
#ifndef MQLUA_REPL_H
#define MQLUA_REPL_H

#include <lua.h>
#include <signal.h>

/* Set while the prompt runs: SIGINT then interrupts the running statement
 * (or clears the line) instead of ending the process. */
extern volatile sig_atomic_t repl_active;

/* Async-signal context: SIGINT while a statement runs stops it with an
 * "interrupted" error at its next instruction. */
void repl_sigint_async(void);
/* On the loop: SIGINT arrived. At an idle prompt, clears the line. */
void repl_sigint(void);

/* Runs the prompt on L until Ctrl-D or os.exit() (which disconnect every
 * client and exit 0 themselves) or until the loop is stopped (SIGTERM).
 * Returns 0, or 1 if the prompt could not start. */
int repl_run(lua_State *L);

#endif
