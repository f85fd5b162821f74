/*
 * store_fixture.h - what the store's unit tests (test_store.c,
 * test_store_schema.c) share: the case's store, in a temporary file or in
 * memory (every case runs on each, "[file]" and "[memory]"; the cases that
 * reopen a file run on the file store only), small readers of the outbox and
 * the state, and the runner that prints `ok - <name>` / `not ok - <name>`.
 * `test_store NAME...` runs only the cases whose name contains a NAME.
 */
#ifndef MQLUA_TEST_STORE_FIXTURE_H
#define MQLUA_TEST_STORE_FIXTURE_H

#include "store/store.h"
#include "store/outbox.h"
#include "store/retained.h"
#include "store/state.h"
#include "store/timers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/check.h"

static char dir[64];           /* this case's temporary directory ("" for memory) */
static char path[128];         /* its store file */
static enum store_durability durability;
static struct store *current;  /* the case's open store: main closes it at the end */

/* Opens the case's store (again, for the reopen cases). */
static inline struct store *open_store(void)
{
	char err[512];
	struct store *s = store_open(path, durability, err, sizeof err);
	if (!s)
		NOTE("store_open(%s): %s", path, err);
	return s;
}

static inline struct state_value val(char type, const char *text)
{
	return (struct state_value){ type, text, strlen(text) };
}

/* state_get of key as "type:text", "ABSENT" or "ERROR". */
static inline const char *got(struct store *s, const char *scope, const char *key)
{
	static char out[512];
	struct state_value v;
	int rc = state_get(s, scope, key, &v);
	if (rc < 0)
		return "ERROR";
	if (rc == 0)
		return "ABSENT";
	snprintf(out, sizeof out, "%c:%.*s", v.type, (int)v.len, v.data);
	return out;
}

/* outbox_fetch of client after id, as "topic=payload@qos;" per message. */
static inline bool record_msg(const struct outbox_msg *m, void *ud)
{
	char *text = ud;
	size_t n = strlen(text);
	snprintf(text + n, 2048 - n, "%s=%.*s@%d%s;", m->topic, m->payloadlen, (const char *)m->payload,
	         m->qos, m->retain ? "r" : "");
	return true;
}

static inline const char *queued_after(struct store *s, const char *client, int64_t after, int max)
{
	static char text[2048];
	text[0] = 0;
	return outbox_fetch(s, client, after, max, record_msg, text) < 0 ? "ERROR" : text;
}

static inline int64_t add(struct store *s, const char *client, const char *topic, const char *payload, int qos)
{
	return outbox_append(s, client, topic, payload, strlen(payload), qos, false, NULL, 0);
}

struct store_case {
	const char *name;
	void (*fn)(struct store *s);
	bool file_only;          /* the case closes s and reopens the file (as current) */
};
#define STORE_CASE(fn, file_only) { #fn, fn, file_only }

/* Runs every selected case on a file store and on a memory store; returns
 * the exit status. */
static inline int store_run(const struct store_case *cases, size_t ncases, int argc, char **argv)
{
	int failed = 0, ran = 0;
	static const enum store_durability kinds[] = { STORE_NORMAL, STORE_MEMORY };
	for (size_t i = 0; i < ncases; i++) {
		for (int kind = 0; kind < 2; kind++) {
			char name[200];
			snprintf(name, sizeof name, "%s [%s]", cases[i].name, kind == 0 ? "file" : "memory");
			if (!selected(name, argc, argv) || (cases[i].file_only && kinds[kind] == STORE_MEMORY))
				continue;
			ran++;
			check_begin();
			durability = kinds[kind];
			dir[0] = 0;
			snprintf(path, sizeof path, ":memory:");
			if (durability != STORE_MEMORY) {
				snprintf(dir, sizeof dir, "/tmp/test_store.XXXXXX");
				if (!mkdtemp(dir)) {
					NOTE("mkdtemp failed");
					dir[0] = 0;
				}
				snprintf(path, sizeof path, "%s/sub/store.db", dir);
			}
			current = case_failed ? NULL : open_store();
			if (current) {
				cases[i].fn(current);
				store_close(current);
			}
			if (dir[0]) {
				char cmd[128];
				snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
				if (system(cmd) != 0)
					NOTE("could not remove %s", dir);
			}
			failed += check_end(name);
		}
	}
	if (failed)
		printf("# %d of %d cases failed\n", failed, ran);
	return failed || !ran ? 1 : 0;
}

#endif
