/*
 * test_store_schema.c - unit tests of what the store's schema versions added
 * and of opening older or damaged files: the v5 properties kept with outbox
 * rows (version 2), the durable timers' table (store/timers.c, version 3),
 * upgrades of a version-1 store (also one README's .dump recipe re-marked),
 * and a damaged header's negative version refused. store_fixture.h runs each
 * case on a file store and on a memory store.
 */
#include "tests/unit/store_fixture.h"

#include <sqlite3.h>


/* The properties' bytes of each fetched message, as "<id-order>:<hex>;" ("-" for none). */
static bool record_props(const struct outbox_msg *m, void *ud)
{
	char *text = ud;
	size_t n = strlen(text);
	if (!m->props)
		n += (size_t)snprintf(text + n, 2048 - n, "-");
	for (int i = 0; i < m->propslen && n < 2040; i++)
		n += (size_t)snprintf(text + n, 2048 - n, "%02x", ((const unsigned char *)m->props)[i]);
	snprintf(text + n, 2048 - n, ";");
	return true;
}

static bool record_dead_props(const struct outbox_msg *m, int reason, const char *why, double failed, void *ud)
{
	(void)reason, (void)why, (void)failed;
	return record_props(m, ud);
}

static void test_outbox_properties_kept_with_the_row_and_its_dead_letter(struct store *s)
{
	static const unsigned char props[] = { 0x02, 0x00, 0x00, 0x00, 0x3c, 0x09, 0x00, 0x02, 0x00, 0xff };
	int64_t a = outbox_append(s, "c1", "t", "x", 1, 1, false, props, sizeof props);
	CHECK(a > 0);
	add(s, "c1", "t", "no properties", 1);
	CHECK_INT(store_commit(s), 0);
	char text[2048] = "";
	CHECK_INT(outbox_fetch(s, "c1", 0, 10, record_props, text), 2);
	CHECK_STR(text, "020000003c09000200ff;-;");
	CHECK_INT(outbox_dead(s, a, 153, "Payload format invalid"), 0);
	text[0] = 0;
	CHECK_INT(outbox_dead_letters(s, "c1", 10, record_dead_props, text), 1);
	CHECK_STR(text, "020000003c09000200ff;");
}

/* A store written by mqlua before properties existed (schema version 1). */
static const char v1_store[] =
	"CREATE TABLE outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, client TEXT NOT NULL, "
	"  topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, "
	"  created REAL NOT NULL);"
	"CREATE INDEX outbox_by_client ON outbox(client, id);"
	"CREATE TABLE dead_letters(id INTEGER PRIMARY KEY, client TEXT NOT NULL, topic TEXT NOT NULL, "
	"  payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL, "
	"  failed REAL NOT NULL, reason INTEGER NOT NULL, reason_text TEXT);"
	"CREATE TABLE retained(client TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, "
	"  qos INTEGER NOT NULL, updated REAL NOT NULL, PRIMARY KEY(client, topic)) WITHOUT ROWID;"
	"CREATE TABLE state(scope TEXT NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, "
	"  value BLOB NOT NULL, PRIMARY KEY(scope, key)) WITHOUT ROWID;"
	"INSERT INTO outbox(client, topic, payload, qos, retain, created) VALUES('c1', 'old/t', 'queued by v1', 1, 0, 1);"
	"PRAGMA user_version = 1;";

/* Replaces the case's store by a file made with sql (then `extra`), opens it as current,
 * and checks that it was brought to the current version with its row kept. */
static void open_old_store(struct store *s, const char *extra)
{
	current = NULL;
	store_close(s);
	char cmd[3 * sizeof path + 32];
	snprintf(cmd, sizeof cmd, "rm -f -- '%s' '%s-wal' '%s-shm'", path, path, path);
	CHECK_INT(system(cmd), 0);
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	int rc = sqlite3_exec(db, v1_store, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, extra, NULL, NULL, NULL);
	sqlite3_close(db);
	CHECK_INT(rc, SQLITE_OK);
	current = open_store();
	CHECK(current);
	CHECK_STR(queued_after(current, "c1", 0, 10), "old/t=queued by v1@1;");
	char text[2048] = "";
	CHECK_INT(outbox_fetch(current, "c1", 0, 10, record_props, text), 1);
	CHECK_STR(text, "-;");
	static const unsigned char props[] = { 0x03, 0x00, 0x01, 'j' };
	CHECK(outbox_append(current, "c1", "new/t", "v2", 2, 1, false, props, sizeof props) > 0);
	CHECK_INT(store_commit(current), 0);
	text[0] = 0;
	CHECK_INT(outbox_fetch(current, "c1", 0, 10, record_props, text), 2);
	CHECK_STR(text, "-;0300016a;");
	sqlite3_stmt *st;
	CHECK_INT(sqlite3_prepare_v2(store_db(current), "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	int version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	CHECK_INT(version, STORE_SCHEMA_VERSION);
}

static void test_a_version_1_store_opens_and_migrates(struct store *s)
{
	open_old_store(s, "");
}

/* README's .dump recipe marks a saved store as version 1 whatever its tables. */
static void test_a_store_marked_version_1_with_version_2_tables_opens(struct store *s)
{
	open_old_store(s, "ALTER TABLE outbox ADD COLUMN properties BLOB;"
	               "ALTER TABLE dead_letters ADD COLUMN properties BLOB;");
}

/* ---- durable timers ---- */

/* timers_get of name as "%.3f", "ABSENT" or "ERROR". */
static const char *due_of(struct store *s, const char *name)
{
	static char out[64];
	double due = 0;
	int rc = timers_get(s, name, &due);
	if (rc <= 0)
		return rc < 0 ? "ERROR" : "ABSENT";
	snprintf(out, sizeof out, "%.3f", due);
	return out;
}

static void test_timers_set_get_replace_delete(struct store *s)
{
	CHECK_STR(due_of(s, "a"), "ABSENT");
	CHECK_INT(timers_set(s, "a", 1795647960.25), 0);
	CHECK(store_has_urgent(s));       /* committed with the iteration's group commit */
	CHECK_INT(timers_set(s, "b", 5), 0);
	CHECK_STR(due_of(s, "a"), "1795647960.250");
	CHECK_INT(timers_set(s, "a", 1795648020.5), 0);
	CHECK_STR(due_of(s, "a"), "1795648020.500");
	CHECK_INT(timers_delete(s, "a"), 0);
	CHECK_INT(timers_delete(s, "a"), 0);   /* deleting what is gone is fine */
	CHECK_STR(due_of(s, "a"), "ABSENT");
	CHECK_STR(due_of(s, "b"), "5.000");
	CHECK_INT(store_commit(s), 0);
}

static void test_timers_survive_close_and_reopen(struct store *s)
{
	CHECK_INT(timers_set(s, "kept", 1795647960.125), 0);
	CHECK_INT(timers_set(s, "fired", 1795647000), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(timers_delete(s, "fired"), 0);
	CHECK_INT(timers_set(s, "uncommitted", 1), 0);
	CHECK_INT(sqlite3_exec(store_db(s), "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);   /* a crash */
	current = NULL;
	store_close(s);
	current = open_store();
	CHECK(current);
	CHECK_STR(due_of(current, "kept"), "1795647960.125");
	CHECK_STR(due_of(current, "fired"), "1795647000.000");   /* the delete was not committed */
	CHECK_STR(due_of(current, "uncommitted"), "ABSENT");
}

static void test_timers_table_added_to_a_version_1_store(struct store *s)
{
	CHECK_INT(state_set(s, "", "kept", &(struct state_value){ 'i', "7", 1 }), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(sqlite3_exec(store_db(s), "DROP TABLE timers; PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	current = NULL;
	store_close(s);
	current = open_store();
	CHECK(current);
	sqlite3_stmt *st;
	CHECK_INT(sqlite3_prepare_v2(store_db(current), "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	int version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	CHECK_INT(version, STORE_SCHEMA_VERSION);
	CHECK_STR(got(current, "", "kept"), "i:7");
	CHECK_INT(timers_set(current, "t", 3), 0);
	CHECK_STR(due_of(current, "t"), "3.000");
	/* README's .dump recipe marks a copy as version 1 even when it has the table */
	CHECK_INT(store_commit(current), 0);
	CHECK_INT(sqlite3_exec(store_db(current), "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	s = current;
	current = NULL;
	store_close(s);
	current = open_store();
	CHECK(current);
	CHECK_STR(due_of(current, "t"), "3.000");
}

/* s contains the text part. */
#define CHECK_HAS(s, part) do { \
	const char *s_ = (s); \
	if (!strstr(s_, (part))) \
		FAIL("%s: expected text containing \"%s\", got \"%s\"", #s, (part), s_); \
} while (0)

/* A damaged header may hold a negative schema version (fuzz_store found one):
 * the store is refused with a message naming the file, and left as it was. */
static void test_a_negative_schema_version_is_refused(struct store *s)
{
	CHECK_INT(state_set(s, "", "kept", &(struct state_value){ 'i', "7", 1 }), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(sqlite3_exec(store_db(s), "PRAGMA user_version = -1325400061", NULL, NULL, NULL), SQLITE_OK);
	current = NULL;
	store_close(s);
	char err[512] = "";
	struct store *again = store_open(path, durability, err, sizeof err);
	if (again)
		store_close(again);
	CHECK(!again);
	CHECK_HAS(err, path);
	CHECK_HAS(err, "damaged or not an mqlua store (schema version -1325400061); not touched");
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	int version = 0;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	CHECK_INT(version, -1325400061);
}


static const struct store_case cases[] = {
	STORE_CASE(test_a_negative_schema_version_is_refused, true),
	STORE_CASE(test_outbox_properties_kept_with_the_row_and_its_dead_letter, false),
	STORE_CASE(test_a_version_1_store_opens_and_migrates, true),
	STORE_CASE(test_a_store_marked_version_1_with_version_2_tables_opens, true),
	STORE_CASE(test_timers_set_get_replace_delete, false),
	STORE_CASE(test_timers_survive_close_and_reopen, true),
	STORE_CASE(test_timers_table_added_to_a_version_1_store, true),
};

int main(int argc, char **argv)
{
	return store_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
