/*
 * script_name.c - which script the running code belongs to, for the
 * per-script counters of mqlua.stats() and for log lines. With one script
 * per process, that is the main script: the basename of the file given to
 * mqlua (set by the runtime), "(command line)" for -e code alone, "stdin",
 * or "main" (the REPL, plain lua5.4 with mqlua.so). Under `mqlua run`,
 * owner.c's mqlua_script_name() names the script of the running task and
 * falls back to this.
 */
#include "bindings/mqlua.h"

#include <stdlib.h>
#include <string.h>

/* Every name given so far, newest first: a name's pointer stays valid and
 * unchanged for the whole process (mqlua.h's contract). */
struct name { struct name *next; char text[]; };
static struct name *names;

const char *mqlua_main_script_name(void)
{
	return names ? names->text : "main";
}

void mqlua_script_name_set(const char *path)
{
	if (!path)
		path = "main";
	else if (strcmp(path, "-") == 0)
		path = "stdin";
	const char *slash = strrchr(path, '/');
	if (slash && slash[1])
		path = slash + 1;
	if (names && strcmp(names->text, path) == 0)
		return;
	struct name *n = malloc(sizeof *n + strlen(path) + 1);
	if (!n)
		return;
	strcpy(n->text, path);
	n->next = names;
	names = n;
}
