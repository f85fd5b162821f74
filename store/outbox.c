/*
 * outbox.c - the outgoing queue in the store (see outbox.h). Every write
 * goes into the store's open group-commit transaction.
 */
#include "store/outbox.h"

#include <string.h>

static const char sql_append[] =
	"INSERT INTO outbox(client, topic, payload, qos, retain, created, properties) "
	"VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_ack[] = "DELETE FROM outbox WHERE id = ?1";
static const char sql_dead[] =
	"INSERT INTO dead_letters(id, client, topic, payload, qos, retain, created, failed, reason, reason_text, "
	"properties) SELECT id, client, topic, payload, qos, retain, created, ?2, ?3, ?4, properties FROM outbox "
	"WHERE id = ?1";
static const char sql_fetch[] =
	"SELECT id, topic, payload, qos, retain, created, properties FROM outbox WHERE client = ?1 AND id > ?2 "
	"ORDER BY id LIMIT ?3";
static const char sql_count[] = "SELECT count(*) FROM outbox WHERE client = ?1";
static const char sql_oldest[] = "SELECT min(created) FROM outbox WHERE client = ?1";
static const char sql_drop_oldest[] =
	"DELETE FROM outbox WHERE id = (SELECT id FROM outbox WHERE client = ?1 ORDER BY id LIMIT 1)";
static const char sql_dead_list[] =
	"SELECT id, topic, payload, qos, retain, created, properties, reason, reason_text, failed FROM dead_letters "
	"WHERE client = ?1 ORDER BY id DESC LIMIT ?2";

/* Runs a statement that returns no rows; 0 or -1. */
static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int64_t outbox_append(struct store *s, const char *client, const char *topic,
                      const void *payload, size_t len, int qos, bool retain,
                      const void *props, size_t propslen)
{
	if (store_begin(s) != 0 || store_outbox_reseed(s) != 0)
		return -1;
	sqlite3_stmt *st = store_stmt(s, sql_append);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, len ? payload : "", (int)len, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, qos);
	sqlite3_bind_int(st, 5, retain);
	sqlite3_bind_double(st, 6, store_now());
	if (propslen)
		sqlite3_bind_blob(st, 7, props, (int)propslen, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	if (step_done(st) != 0)
		return store_fail(s, "cannot queue the message");
	int64_t id = sqlite3_last_insert_rowid(store_db(s));
	store_outbox_id_given(s, id);
	return id;
}

int outbox_ack(struct store *s, int64_t id)
{
	if (store_begin_lazy(s) != 0)   /* losing an ack's delete costs a resend, not a message */
		return -1;
	sqlite3_stmt *st = store_stmt(s, sql_ack);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return step_done(st) == 0 ? 0 : store_fail(s, "cannot delete an acknowledged message");
}

int outbox_dead(struct store *s, int64_t id, int reason, const char *reason_text)
{
	if (store_begin(s) != 0)
		return -1;
	sqlite3_stmt *st = store_stmt(s, sql_dead);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_double(st, 2, store_now());
	sqlite3_bind_int(st, 3, reason);
	sqlite3_bind_text(st, 4, reason_text, -1, SQLITE_STATIC);
	if (step_done(st) != 0)
		return store_fail(s, "cannot record a dead letter");
	return outbox_ack(s, id);
}

static void row_to_msg(sqlite3_stmt *st, struct outbox_msg *m)
{
	m->id = sqlite3_column_int64(st, 0);
	m->topic = (const char *)sqlite3_column_text(st, 1);
	m->payload = sqlite3_column_blob(st, 2);
	m->payloadlen = sqlite3_column_bytes(st, 2);
	m->qos = sqlite3_column_int(st, 3);
	m->retain = sqlite3_column_int(st, 4) != 0;
	m->created = sqlite3_column_double(st, 5);
	m->props = sqlite3_column_blob(st, 6);
	m->propslen = sqlite3_column_bytes(st, 6);
}

int outbox_fetch(struct store *s, const char *client, int64_t after, int max, outbox_fn fn, void *ud)
{
	sqlite3_stmt *st = store_stmt(s, sql_fetch);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int(st, 3, max);
	int n = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct outbox_msg m;
		row_to_msg(st, &m);
		n++;
		if (!fn(&m, ud))
			break;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(s, "cannot read the queue");
	return n;
}

int64_t outbox_count(struct store *s, const char *client)
{
	sqlite3_stmt *st = store_stmt(s, sql_count);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC);
	int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	return n;
}

int64_t outbox_count_qos(struct store *s, const char *client, int qos)
{
	static const char sql[] = "SELECT count(*) FROM outbox WHERE client = ?1 AND qos = ?2";
	sqlite3_stmt *st = store_stmt(s, sql);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, qos);
	int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	return n;
}

double outbox_oldest(struct store *s, const char *client)
{
	sqlite3_stmt *st = store_stmt(s, sql_oldest);
	if (!st)
		return 0;
	sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC);
	double t = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_double(st, 0) : 0;
	sqlite3_reset(st);
	return t;
}

int outbox_drop_oldest(struct store *s, const char *client)
{
	if (store_begin(s) != 0)
		return -1;
	sqlite3_stmt *st = store_stmt(s, sql_drop_oldest);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC);
	return step_done(st) == 0 ? 0 : store_fail(s, "cannot drop the oldest message");
}

int outbox_dead_letters(struct store *s, const char *client, int max, dead_fn fn, void *ud)
{
	sqlite3_stmt *st = store_stmt(s, sql_dead_list);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, max);
	int n = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct outbox_msg m;
		row_to_msg(st, &m);
		n++;
		if (!fn(&m, sqlite3_column_int(st, 7), (const char *)sqlite3_column_text(st, 8),
		        sqlite3_column_double(st, 9), ud))
			break;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : store_fail(s, "cannot read the dead letters");
}
