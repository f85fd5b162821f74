/*
 * state.c - scripts' persistent key/value state in the store (table
 * "state", keyed by scope and key). Each value keeps its type letter beside
 * its text form; converting to and from Lua values is bindings/state.c's job.
 * Writes join the loop iteration's transaction, so they commit with the
 * outbox rows written in the same iteration.
 */
#include "store/state.h"

#include <stdlib.h>
#include <string.h>

/* state_get copies the value here, so that its statement can be reset at
 * once (a statement left stepping would hold a read snapshot open). Valid
 * until the next state_get, on any store: mqlua is single-threaded. */
static char *got_buf;
static size_t got_cap;

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

static bool known_type(char t)
{
	return t == 's' || t == 'n' || t == 'i' || t == 'b' || t == 'j';
}

int state_set(struct store *s, const char *scope, const char *key, const struct state_value *v)
{
	if (v && (!known_type(v->type) || v->len > (size_t)INT32_MAX))
		return -1;
	if (store_begin(s) != 0)
		return -1;
	sqlite3_stmt *st;
	if (!v) {
		st = store_stmt(s, "DELETE FROM state WHERE scope = ?1 AND key = ?2");
		if (!st)
			return -1;
	} else {
		st = store_stmt(s, "INSERT INTO state(scope, key, type, value) VALUES(?1, ?2, ?3, ?4) "
		                   "ON CONFLICT(scope, key) DO UPDATE SET type = excluded.type, value = excluded.value");
		if (!st)
			return -1;
		sqlite3_bind_text(st, 3, &v->type, 1, SQLITE_TRANSIENT);
		/* a non-NULL pointer, so that "" is an empty blob and not NULL */
		sqlite3_bind_blob(st, 4, v->data ? v->data : "", (int)v->len, SQLITE_STATIC);
	}
	bind_text(st, 1, scope);
	bind_text(st, 2, key);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Fills v from columns tcol (type) and tcol + 1 (value) of the current row. */
static void row_value(sqlite3_stmt *st, int tcol, struct state_value *v)
{
	const unsigned char *t = sqlite3_column_text(st, tcol);
	v->type = t ? (char)t[0] : '?';
	v->data = sqlite3_column_blob(st, tcol + 1);
	v->len = (size_t)sqlite3_column_bytes(st, tcol + 1);
	if (!v->data)
		v->data = "";
}

int state_get(struct store *s, const char *scope, const char *key, struct state_value *v)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT type, value FROM state WHERE scope = ?1 AND key = ?2");
	if (!st)
		return -1;
	bind_text(st, 1, scope);
	bind_text(st, 2, key);
	int rc = sqlite3_step(st), found = 0;
	if (rc == SQLITE_ROW) {
		struct state_value row;
		row_value(st, 0, &row);
		if (row.len + 1 > got_cap) {
			size_t cap = row.len + 1 < 64 ? 64 : row.len + 1;
			char *b = realloc(got_buf, cap);
			if (!b) {
				rc = SQLITE_NOMEM;
				goto out;
			}
			got_buf = b;
			got_cap = cap;
		}
		memcpy(got_buf, row.data, row.len);
		got_buf[row.len] = '\0';
		v->type = row.type;
		v->data = got_buf;
		v->len = row.len;
		found = 1;
		rc = SQLITE_DONE;
	}
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? found : -1;
}

int state_each(struct store *s, const char *scope, state_fn fn, void *ud)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT key, type, value FROM state WHERE scope = ?1 ORDER BY key");
	if (!st)
		return -1;
	bind_text(st, 1, scope);
	int count = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		struct state_value v;
		row_value(st, 1, &v);
		count++;
		if (!fn(key ? key : "", &v, ud)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? count : -1;
}
