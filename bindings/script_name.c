/*
 * script_name.c - which script the running code belongs to, for the
 * per-script counters of mqlua.stats() and for log lines. With one script
 * per process, that is the main script: the basename of the file given to
 * mqlua (set by the runtime), "(command line)" for -e code alone, "main"
 * otherwise (the REPL, plain lua5.4 with mqlua.so). A runtime that runs
 * several scripts replaces this file with its own mqlua_script_name().
 */
#include "bindings/mqlua.h"

#include <stdio.h>
#include <string.h>

static char name[256] = "main";

const char *mqlua_script_name(void)
{
	return name;
}

void mqlua_script_name_set(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	if (!path)
		path = "main";
	else if (strcmp(path, "-") == 0)
		path = "stdin";
	snprintf(name, sizeof name, "%s", slash && slash[1] ? slash + 1 : path);
}
