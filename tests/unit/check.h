/*
 * check.h - the in-process harness of the C unit tests: CHECK macros that
 * record `file:line: why` and end the case, and the case filter of the
 * command line. A test file includes it once and hands its cases to
 * check_run(), which prints `ok - name` / `not ok - name` and the details on
 * `# ` lines.
 */
#ifndef MQLUA_TEST_CHECK_H
#define MQLUA_TEST_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

static char details[8192];
static size_t details_len;
static bool case_failed;

__attribute__((format(printf, 3, 4)))
static void fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	case_failed = true;
	if (details_len < sizeof details - 1) {
		int n = snprintf(details + details_len, sizeof details - details_len, "%s:%d: %s\n", file, line, msg);
		if (n > 0)
			details_len += (size_t)n;
		if (details_len > sizeof details - 1)
			details_len = sizeof details - 1;
	}
}
#define NOTE(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)
/* Ends the case as failed. */
#define FAIL(...) do { NOTE(__VA_ARGS__); return; } while (0)

#define CHECK(cond) do { \
	if (!(cond)) \
		FAIL("check failed: %s", #cond); \
} while (0)

#define CHECK_INT(actual, expected) do { \
	long long a_ = (long long)(actual), e_ = (long long)(expected); \
	if (a_ != e_) \
		FAIL("%s == %s: expected %lld, got %lld", #actual, #expected, e_, a_); \
} while (0)

#define CHECK_STR(actual, expected) do { \
	const char *a_ = (actual), *e_ = (expected); \
	if (!a_ || strcmp(a_, e_) != 0) \
		FAIL("%s: expected \"%s\", got %s%s%s", #actual, e_, a_ ? "\"" : "", a_ ? a_ : "NULL", a_ ? "\"" : ""); \
} while (0)

/* True when the case runs: no NAME given, or its name contains one. */
static inline bool selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return true;
	return false;
}

/* Starts a case: no failure, no details. */
static inline void check_begin(void)
{
	case_failed = false;
	details_len = 0;
	details[0] = 0;
}

/* Prints the case's `ok`/`not ok` line and its details; true when it failed. */
static inline bool check_end(const char *name)
{
	printf("%s - %s\n", case_failed ? "not ok" : "ok", name);
	if (case_failed)
		for (char *line = strtok(details, "\n"); line; line = strtok(NULL, "\n"))
			printf("# %s\n", line);
	fflush(stdout);
	return case_failed;
}

struct check_case {
	const char *name;
	void (*fn)(void);
};
#define CHECK_CASE(fn) { #fn, fn }

/* Runs the cases the command line selects (see selected()); returns the exit
 * status: 0 when at least one ran and none failed. */
static inline int check_run(const struct check_case *cases, size_t n, int argc, char **argv)
{
	int failed = 0, ran = 0;
	for (size_t i = 0; i < n; i++) {
		if (!selected(cases[i].name, argc, argv))
			continue;
		ran++;
		check_begin();
		cases[i].fn();
		failed += check_end(cases[i].name);
	}
	if (failed)
		printf("# %d of %d cases failed\n", failed, ran);
	return failed || !ran ? 1 : 0;
}

#endif
