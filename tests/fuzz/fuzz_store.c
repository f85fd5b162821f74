/*
 * fuzz_store.c - libFuzzer target for store recovery (store/): a store
 * file damaged by the input must be refused with an error naming it, or
 * opened and read without a crash.
 *
 * LLVMFuzzerInitialize makes a valid store with the store code itself
 * (outbox rows of two clients with properties bytes, a dead letter,
 * retained messages, state of every type, a durable timer), converted to
 * 512-byte pages so that most of its bytes are structure, and keeps its
 * bytes. Each input is a list of edits of that file:
 *   op (1 byte), offset (2 bytes, big-endian, modulo the file size), then
 *   op & 0x80: truncate the file at the offset;
 *   else:      write the next (op & 15) + 1 bytes of the input at the offset.
 * The damaged copy goes to a fresh file; store_open must either refuse it
 * (NULL, with a message naming the file) or open it, and then every read
 * (outbox, dead letters, retained, state, timers) and one write+commit
 * must return without a crash or sanitizer report. Every row handed to a
 * callback is read to its end (a topic must be a string, a payload's
 * length must match its bytes).
 */
#include "bindings/mqlua.h"
#include "store/outbox.h"
#include "store/retained.h"
#include "store/state.h"
#include "store/timers.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64], path[128];
static unsigned char *tmpl;
static size_t tmpl_len;
static volatile unsigned long sink;   /* keeps the reads of every byte */

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_store: %s: %s\n", what, detail ? detail : "");
	abort();
}

static void touch(const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++)
		sink += b[i];
}

static void remove_files(void)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char f[160];
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		snprintf(f, sizeof f, "%s%s", path, suffixes[i]);
		unlink(f);
	}
}

static void make_template(void)
{
	char err[1024];
	struct store *s = store_open(path, STORE_NORMAL, err, sizeof err);
	if (!s)
		die("cannot make the template store", err);
	static const unsigned char props[] = { 0x02, 0, 0, 0, 60, 0x26, 0, 1, 'k', 0, 1, 'v' };
	for (int i = 0; i < 12; i++) {
		char topic[32], payload[48];
		snprintf(topic, sizeof topic, "fuzz/%d/topic", i);
		snprintf(payload, sizeof payload, "payload %d of the template store", i);
		if (outbox_append(s, i % 3 ? "fz-a" : "fz-b", topic, payload, strlen(payload), 1 + i % 2, i % 4 == 0,
		                  i % 2 ? props : NULL, i % 2 ? sizeof props : 0) < 0)
			die("outbox_append", store_error(s));
	}
	outbox_dead(s, 2, 0x87, "not authorized");
	for (int i = 0; i < 8; i++) {
		char topic[32];
		snprintf(topic, sizeof topic, "home/room%d/temp", i);
		retained_put(s, "fz-a", topic, "21.5", 4, i % 3);
	}
	static const struct state_value values[] = {
		{ 's', "text", 4 }, { 'n', "0.25", 4 }, { 'i', "42", 2 }, { 'b', "1", 1 }, { 'j', "{\"a\":[1,2]}", 11 }
	};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		char key[16];
		snprintf(key, sizeof key, "key%zu", i);
		state_set(s, "script.lua", key, &values[i]);
	}
	timers_set(s, "nightly", 1.8e9);
	if (store_commit(s) != 0)
		die("commit", store_error(s));
	store_close(s);

	/* small pages, one self-contained file */
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA page_size=512; VACUUM;", NULL, NULL, NULL) != SQLITE_OK)
		die("cannot shrink the template's pages", sqlite3_errmsg(db));
	sqlite3_close(db);
	FILE *f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0)
		die("cannot read the template", path);
	tmpl_len = (size_t)ftell(f);
	rewind(f);
	tmpl = malloc(tmpl_len);
	if (!tmpl || fread(tmpl, 1, tmpl_len, f) != tmpl_len)
		die("cannot read the template", path);
	fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_dir(void)
{
	remove_files();
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/fuzz-store.XXXXXX", tmp && *tmp && strlen(tmp) < 30 ? tmp : "/tmp");
	if (!mkdtemp(dir))
		die("mkdtemp", dir);
	snprintf(path, sizeof path, "%s/store.db", dir);
	make_template();
	remove_files();
	atexit(remove_dir);
	return 0;
}

static bool on_outbox(const struct outbox_msg *m, void *ud)
{
	if (!m->topic)
		die("outbox row without a topic", NULL);
	if (m->payloadlen < 0 || (m->payloadlen > 0 && !m->payload) || m->propslen < 0 || (m->propslen > 0 && !m->props))
		die("outbox row whose lengths do not match its bytes", m->topic);
	touch(m->topic, strlen(m->topic));
	touch(m->payload, (size_t)m->payloadlen);
	touch(m->props, (size_t)m->propslen);
	return true;
}

static bool on_dead(const struct outbox_msg *m, int reason, const char *text, double failed, void *ud)
{
	if (text)
		touch(text, strlen(text));
	return on_outbox(m, ud);
}

static bool on_retained(const struct retained_msg *m, void *ud)
{
	if (!m->topic || !m->payload || m->payloadlen < 0)
		die("retained row that does not hold together", m->topic);
	touch(m->topic, strlen(m->topic));
	touch(m->payload, (size_t)m->payloadlen);
	return true;
}

static bool on_state(const char *key, const struct state_value *v, void *ud)
{
	touch(key, strlen(key));
	touch(v->data, v->len);
	return true;
}

static bool any_topic(const char *filter, const char *topic)
{
	return topic_matches(filter, strlen(filter), topic, strlen(topic));
}

static void read_everything(struct store *s)
{
	static const char *const clients[] = { "fz-a", "fz-b", "other" };
	for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++) {
		outbox_fetch(s, clients[i], 0, 100, on_outbox, NULL);
		outbox_count(s, clients[i]);
		outbox_count_qos(s, clients[i], 2);
		outbox_oldest(s, clients[i]);
		outbox_dead_letters(s, clients[i], 100, on_dead, NULL);
		retained_each(s, clients[i], NULL, NULL, on_retained, NULL);
		retained_each(s, clients[i], "home/+/temp", any_topic, on_retained, NULL);
		retained_each(s, clients[i], "home/room1/temp", any_topic, on_retained, NULL);
	}
	state_each(s, "script.lua", on_state, NULL);
	struct state_value v;
	if (state_get(s, "script.lua", "key4", &v) == 1)
		touch(v.data, v.len + 1);
	double due;
	timers_get(s, "nightly", &due);
	/* one write and its commit: a failure is an error, not a crash */
	if (outbox_append(s, "fz-a", "after/open", "x", 1, 1, false, NULL, 0) > 0)
		outbox_fetch(s, "fz-a", 0, 100, on_outbox, NULL);
	store_commit(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *copy = malloc(tmpl_len);
	if (!copy)
		return 0;
	memcpy(copy, tmpl, tmpl_len);
	size_t len = tmpl_len;
	for (size_t i = 0; i + 3 <= size && len > 0;) {
		uint8_t op = data[i];
		size_t at = (((size_t)data[i + 1] << 8) | data[i + 2]) % len;
		i += 3;
		if (op & 0x80) {
			len = at;
			continue;
		}
		for (size_t n = (size_t)(op & 15) + 1; n > 0 && i < size && at < len; n--)
			copy[at++] = data[i++];
	}
	remove_files();
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(copy, 1, len, f) != len || fclose(f) != 0)
		die("cannot write the damaged copy", path);
	free(copy);

	char err[1024] = "";
	struct store *s = store_open(path, STORE_NORMAL, err, sizeof err);
	if (!s) {
		if (!strstr(err, path))
			die("refused without naming the file", err);
		return 0;
	}
	read_everything(s);
	store_close(s);
	return 0;
}
