/*
 * testmode.h - `mqlua test [options] [files or dirs]`, the test-fixture
 * mode (testmode.c); the harness itself is scripts/mqlua/test.lua.
 */
#ifndef MQLUA_TESTMODE_H
#define MQLUA_TESTMODE_H

/* Runs the test subcommand; argv[0] is "test". Returns the exit status:
 * 0 when at least one test ran and none failed, 1 otherwise, 2 for a
 * usage error. */
int testmode_main(int argc, char **argv, const char *exe);

#endif
