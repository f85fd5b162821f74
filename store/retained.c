/*
 * retained.c - the retained-message cache in the store (table "retained",
 * keyed by client and topic). Writes join the loop iteration's transaction;
 * reads see what this process wrote, committed or not.
 *
 * A filter without wildcards is one primary-key lookup. A filter with
 * wildcards scans only the client's topics that start with its literal part
 * (a range on the primary key) and lets the caller's match function decide.
 */
#include "store/retained.h"

#include <stdlib.h>
#include <string.h>

/* Binds text of length len (which may contain any byte) at index i. */
static int bind_text(sqlite3_stmt *st, int i, const char *s, size_t len)
{
	return sqlite3_bind_text(st, i, s, (int)len, SQLITE_STATIC);
}

int retained_put(struct store *s, const char *client, const char *topic,
                 const void *payload, size_t len, int qos)
{
	if (!client)
		client = "";
	if (len > (size_t)INT32_MAX)
		return -1;
	if (store_begin(s) != 0)
		return -1;
	sqlite3_stmt *st;
	if (len == 0) {
		st = store_stmt(s, "DELETE FROM retained WHERE client = ?1 AND topic = ?2");
		if (!st)
			return -1;
	} else {
		st = store_stmt(s, "INSERT INTO retained(client, topic, payload, qos, updated) "
		                   "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(client, topic) DO UPDATE SET "
		                   "payload = excluded.payload, qos = excluded.qos, updated = excluded.updated");
		if (!st)
			return -1;
		sqlite3_bind_blob(st, 3, payload, (int)len, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, qos);
		sqlite3_bind_double(st, 5, store_now());
	}
	bind_text(st, 1, client, strlen(client));
	bind_text(st, 2, topic, strlen(topic));
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The literal part of filter before its first wildcard, without a trailing
 * '/' (so "a/b/#" scans from "a/b", which it also matches). Its length. */
static size_t literal_prefix(const char *filter)
{
	size_t n = strcspn(filter, "+#");
	if (n > 0 && filter[n - 1] == '/')
		n--;
	return n;
}

/* Writes to upper the smallest string greater than every string starting
 * with prefix[0..n). Returns its length, or 0 when there is none (an empty
 * prefix, or one of 0xff bytes only). */
static size_t prefix_upper_bound(const char *prefix, size_t n, char *upper)
{
	memcpy(upper, prefix, n);
	while (n > 0 && (unsigned char)upper[n - 1] == 0xff)
		n--;
	if (n > 0)
		upper[n - 1] = (char)((unsigned char)upper[n - 1] + 1);
	return n;
}

int retained_each(struct store *s, const char *client, const char *filter,
                  retained_match match, retained_fn fn, void *ud)
{
	if (!client)
		client = "";
	bool exact = filter && !strpbrk(filter, "+#");
	size_t plen = filter && !exact ? literal_prefix(filter) : 0;
	char *upper = NULL;
	size_t ulen = 0;
	sqlite3_stmt *st;

	if (exact) {
		st = store_stmt(s, "SELECT topic, payload, qos, updated FROM retained "
		                   "WHERE client = ?1 AND topic = ?2");
		if (!st)
			return -1;
		bind_text(st, 2, filter, strlen(filter));
	} else if (plen == 0) {
		st = store_stmt(s, "SELECT topic, payload, qos, updated FROM retained "
		                   "WHERE client = ?1 ORDER BY topic");
		if (!st)
			return -1;
	} else {
		upper = malloc(plen);
		if (!upper)
			return -1;
		ulen = prefix_upper_bound(filter, plen, upper);
		if (ulen > 0)
			st = store_stmt(s, "SELECT topic, payload, qos, updated FROM retained "
			                   "WHERE client = ?1 AND topic >= ?2 AND topic < ?3 ORDER BY topic");
		else
			st = store_stmt(s, "SELECT topic, payload, qos, updated FROM retained "
			                   "WHERE client = ?1 AND topic >= ?2 ORDER BY topic");
		if (!st) {
			free(upper);
			return -1;
		}
		bind_text(st, 2, filter, plen);
		if (ulen > 0)
			bind_text(st, 3, upper, ulen);
	}
	bind_text(st, 1, client, strlen(client));

	int count = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct retained_msg m;
		m.topic = (const char *)sqlite3_column_text(st, 0);
		if (!m.topic)
			continue;
		if (!exact && filter && match && !match(filter, m.topic))
			continue;
		m.payload = sqlite3_column_blob(st, 1);
		m.payloadlen = sqlite3_column_bytes(st, 1);
		if (!m.payload)
			m.payload = "";
		m.qos = sqlite3_column_int(st, 2);
		m.updated = sqlite3_column_double(st, 3);
		count++;
		if (!fn(&m, ud)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);           /* ends the read: no snapshot outlives the call */
	sqlite3_clear_bindings(st);
	free(upper);
	return rc == SQLITE_DONE ? count : -1;
}
