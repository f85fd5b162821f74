/*
 * store.c - opening a store (schema, version, pragmas per durability),
 * refusing damaged files without touching them, the group-commit
 * transaction, per-client_id queue claims, and the statement cache.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_STMTS 32
#define MAX_CLAIMS 64

struct claim {
	char *client;
	int fd;
};

struct cached_stmt {
	const char *sql;
	sqlite3_stmt *stmt;
};

struct store {
	sqlite3 *db;
	char path[PATH_MAX];
	enum store_durability durability;
	bool in_txn;
	bool urgent;               /* the open transaction holds store_begin() writes */
	int64_t max_outbox_id;     /* the highest outbox id handed out by this process */
	bool reseed;               /* a commit failed: ids it used must not come again */
	double txn_started;        /* monotonic seconds */
	char error[2 * PATH_MAX + 512];
	struct cached_stmt stmts[MAX_STMTS];
	int nstmts;
	struct claim claims[MAX_CLAIMS];
};

static const char *const schema_v1 =
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
	"  value BLOB NOT NULL, PRIMARY KEY(scope, key)) WITHOUT ROWID;";

/* v2: the MQTT v5 properties of a queued message (NULL: none), in the flat
 * form of bindings/properties.c, opaque to the store. A column already there
 * is kept: a store saved with README's .dump recipe may say version 1 while
 * its tables are those of version 2. */
static const char *const v2_columns[][2] = { { "outbox", "properties" }, { "dead_letters", "properties" } };

static int exec(struct store *s, const char *sql, const char *what);

static int migrate_to_v2(struct store *s)
{
	for (size_t i = 0; i < sizeof v2_columns / sizeof v2_columns[0]; i++) {
		char sql[160];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
		         v2_columns[i][0], v2_columns[i][1]);
		sqlite3_stmt *st;
		int have = -1;
		if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
			have = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
			sqlite3_finalize(st);
		}
		if (have < 0)
			return store_fail(s, "schema upgrade failed");
		snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s BLOB", v2_columns[i][0], v2_columns[i][1]);
		if (have == 0 && exec(s, sql, "schema upgrade failed") != 0)
			return -1;
	}
	return 0;
}

static int migrate_to_v1(struct store *s)
{
	return exec(s, schema_v1, "schema upgrade failed");
}

/* v3: the due times of durable timers (store/timers.c). IF NOT EXISTS: README's
 * .dump recovery recipe marks the copy as version 1. */
static int migrate_to_v3(struct store *s)
{
	return exec(s, "CREATE TABLE IF NOT EXISTS timers(name TEXT PRIMARY KEY, due REAL NOT NULL) WITHOUT ROWID;",
	            "schema upgrade failed");
}

/* Forward migrations: migrations[v] brings a store from version v to v+1.
 * Version 0 is an empty file. */
static int (*const migrations[STORE_SCHEMA_VERSION])(struct store *s) = {
	migrate_to_v1, migrate_to_v2, migrate_to_v3
};

double store_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

sqlite3 *store_db(struct store *s) { return s->db; }
const char *store_path(const struct store *s) { return s->path; }
enum store_durability store_durability(const struct store *s) { return s->durability; }
const char *store_error(const struct store *s) { return s->error; }
bool store_in_transaction(const struct store *s) { return s->in_txn; }
bool store_untouched(const struct store *s) { return !s->db; }

int store_fail(struct store *s, const char *what)
{
	snprintf(s->error, sizeof s->error, "store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
	return -1;
}

static int exec(struct store *s, const char *sql, const char *what)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(s->error, sizeof s->error, "store %s: %s: %s", s->path, what, msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* journal_mode=WAL needs the file to itself for a moment and does not wait on
 * the busy handler: a process creating the same store at the same moment
 * makes it fail with SQLITE_BUSY, so it is retried for up to 5 s. */
static int set_wal(struct store *s)
{
	for (int tries = 0;; tries++) {
		int rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
		int primary = rc & 0xff;
		if (rc == SQLITE_OK || (primary != SQLITE_BUSY && primary != SQLITE_LOCKED) || tries >= 100)
			return rc == SQLITE_OK ? 0 : exec(s, "PRAGMA journal_mode=WAL", "cannot switch to WAL");
		sqlite3_sleep(50);
	}
}

/* mkdir -p for the directory of path, mode 0700 for what it creates. */
static void make_parent_dirs(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(dir, 0700);
			*p = '/';
		}
	}
	mkdir(dir, 0700);
}

/* Reads PRAGMA user_version into *version; -1 (s->error set) if it cannot be read. */
static int read_version(struct store *s, int *version)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "not a readable mqlua store (is it an SQLite file?)");
	int rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return store_fail(s, "not a readable mqlua store (is it an SQLite file?)");
	return 0;
}

/* Says that a store of a newer schema than ours is left alone. */
static int newer_schema(struct store *s, int version)
{
	snprintf(s->error, sizeof s->error, "store %s: made by a newer mqlua (schema version %d, "
	         "this one knows up to %d); not touched", s->path, version, STORE_SCHEMA_VERSION);
	return -1;
}

/* check_file's checks, on one snapshot of the file. */
static int check_snapshot(struct store *s, int *version)
{
	sqlite3_stmt *st;
	int rc;
	if (read_version(s, version) != 0)
		return -1;
	if (*version < 0) {
		snprintf(s->error, sizeof s->error, "store %s: damaged or not an mqlua store (schema version %d); "
		         "not touched", s->path, *version);
		return -1;
	}
	if (*version > STORE_SCHEMA_VERSION)
		return newer_schema(s, *version);
	if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "damaged (the integrity check could not run)");
	const char *first = NULL;
	char problem[256] = "";
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		first = (const char *)sqlite3_column_text(st, 0);
		if (first && strcmp(first, "ok") != 0 && !*problem)
			snprintf(problem, sizeof problem, "%s", first);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, "damaged (the integrity check failed)");
	if (*problem) {
		snprintf(s->error, sizeof s->error, "store %s: damaged: %s. The file was not changed; "
		         "move it away (mqlua starts a new store), or save what can be read into a new store "
		         "as README.md says (sqlite3 .dump)", s->path, problem);
		return -1;
	}
	if (*version >= 1) {
		static const char sql[] = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
			"name IN ('outbox', 'dead_letters', 'retained', 'state')";
		int n = -1;
		if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
			n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
			sqlite3_finalize(st);
		}
		if (n != 4) {
			snprintf(s->error, sizeof s->error, "store %s: marked as an mqlua store (version %d) but "
			         "its tables are missing; not touched", s->path, *version);
			return -1;
		}
	}
	if (*version == 0) {
		/* an existing non-empty database that is not ours: refuse it */
		if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) == SQLITE_OK) {
			int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
			sqlite3_finalize(st);
			if (n > 0) {
				snprintf(s->error, sizeof s->error, "store %s: an SQLite database that is not an "
				         "mqlua store; not touched", s->path);
				return -1;
			}
		}
	}
	return 0;
}

/* Reads the schema version, checking on the way that the file is an SQLite
 * database and not damaged. The file is never written before this passed.
 * Runs in a read transaction of its own, so that what it reads is one
 * snapshot even while another process creates the store. */
static int check_file(struct store *s, int *version)
{
	if (exec(s, "BEGIN", "not a readable mqlua store (is it an SQLite file?)") != 0)
		return -1;
	int rc = check_snapshot(s, version);
	exec(s, rc == 0 ? "COMMIT" : "ROLLBACK", "cannot end the check");
	return rc;
}

/* Brings the store from `version` (as check_file read it) to ours. Other
 * processes may be opening the same new store at the same moment: the
 * version is read again under the write lock, and whoever comes second
 * finds the work done. */
static int migrate(struct store *s, int version)
{
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (exec(s, "BEGIN IMMEDIATE", "cannot start the schema upgrade") != 0)
		return -1;
	if (read_version(s, &version) != 0 || version > STORE_SCHEMA_VERSION) {
		if (version > STORE_SCHEMA_VERSION)
			newer_schema(s, version);
		exec(s, "ROLLBACK", "rollback");
		return -1;
	}
	for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
		if (migrations[v](s) != 0) {
			exec(s, "ROLLBACK", "rollback");
			return -1;
		}
	}
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	if (exec(s, sql, "schema upgrade failed") != 0 || exec(s, "COMMIT", "schema upgrade failed") != 0) {
		exec(s, "ROLLBACK", "rollback");
		return -1;
	}
	return 0;
}

static int open_db(struct store *s);

struct store *store_open(const char *path, enum store_durability d, char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int i = 0; i < MAX_CLAIMS; i++)
		s->claims[i].fd = -1;
	s->durability = d;
	snprintf(s->path, sizeof s->path, "%s", d == STORE_MEMORY ? ":memory:" : path);
	if (d != STORE_MEMORY) {
		make_parent_dirs(path);
		/* create it 0600 ourselves: SQLite would use the umask */
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			snprintf(err, errlen, "store %s: cannot open: %s", path, strerror(errno));
			free(s);
			return NULL;
		}
		close(fd);
	}
	/* a memory store is empty until written: SQLite is opened by the first statement */
	if (d != STORE_MEMORY && open_db(s) != 0) {
		snprintf(err, errlen, "%s", s->error);
		free(s);
		return NULL;
	}
	return s;
}

/* Opens s->db (checked, configured, migrated); on failure s->db stays NULL
 * and s->error says why. */
static int open_db(struct store *s)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	int version = 0;
	if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) {
		snprintf(s->error, sizeof s->error, "store %s: cannot open: %s", s->path,
		         s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 5000);   /* another process may hold the write lock for one iteration */
	if (check_file(s, &version) != 0)
		goto fail;
	if (s->durability != STORE_MEMORY && set_wal(s) != 0)
		goto fail;
	if (exec(s, s->durability == STORE_FULL ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", "pragma") != 0 ||
	    exec(s, "PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY", "pragma") != 0)
		goto fail;
	if (migrate(s, version) != 0)
		goto fail;
	return 0;
fail:
	sqlite3_close(s->db);
	s->db = NULL;
	return -1;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	store_commit(s);
	for (int i = 0; i < s->nstmts; i++)
		sqlite3_finalize(s->stmts[i].stmt);
	for (int i = 0; i < MAX_CLAIMS; i++)
		if (s->claims[i].client)
			store_release(s, s->claims[i].client);
	sqlite3_close(s->db);
	free(s);
}

static double monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int store_begin_lazy(struct store *s)
{
	if (s->in_txn)
		return 0;
	if (!s->db && open_db(s) != 0)
		return -1;
	if (exec(s, "BEGIN IMMEDIATE", "cannot start a transaction") != 0)
		return -1;
	s->in_txn = true;
	s->urgent = false;
	s->txn_started = monotonic();
	return 0;
}

int store_begin(struct store *s)
{
	int rc = store_begin_lazy(s);
	if (rc == 0)
		s->urgent = true;
	return rc;
}

bool store_commit_due(const struct store *s)
{
	return s->in_txn && (s->urgent || monotonic() - s->txn_started >= STORE_LAZY_SECONDS);
}

int store_outbox_id_given(struct store *s, int64_t id)
{
	if (id > s->max_outbox_id)
		s->max_outbox_id = id;
	return 0;
}

int store_outbox_reseed(struct store *s)
{
	if (!s->reseed || !s->in_txn)
		return 0;
	/* the failed transaction took AUTOINCREMENT's counter back with it */
	char sql[160];
	snprintf(sql, sizeof sql, "UPDATE sqlite_sequence SET seq = max(seq, %lld) WHERE name = 'outbox'",
	         (long long)s->max_outbox_id);
	if (exec(s, sql, "cannot keep message ids unique") != 0)
		return -1;
	s->reseed = false;
	return 0;
}

bool store_has_urgent(const struct store *s)
{
	return s->in_txn && s->urgent;
}

int store_commit(struct store *s)
{
	if (!s->in_txn)
		return 0;
	s->in_txn = false;
	s->urgent = false;
	if (exec(s, "COMMIT", "commit failed") == 0)
		return 0;
	s->reseed = true;
	char saved[sizeof s->error];
	memcpy(saved, s->error, sizeof saved);
	if (!sqlite3_get_autocommit(s->db))
		exec(s, "ROLLBACK", "rollback");
	memcpy(s->error, saved, sizeof saved);
	return -1;
}

sqlite3_stmt *store_stmt(struct store *s, const char *sql)
{
	for (int i = 0; i < s->nstmts; i++) {
		if (s->stmts[i].sql == sql) {
			sqlite3_reset(s->stmts[i].stmt);
			sqlite3_clear_bindings(s->stmts[i].stmt);
			return s->stmts[i].stmt;
		}
	}
	sqlite3_stmt *st = NULL;
	if (!s->db && open_db(s) != 0)
		return NULL;
	if (s->nstmts == MAX_STMTS) {
		snprintf(s->error, sizeof s->error, "store %s: more than %d distinct statements", s->path, MAX_STMTS);
		return NULL;
	}
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		store_fail(s, "cannot prepare a statement");
		return NULL;
	}
	s->stmts[s->nstmts++] = (struct cached_stmt){ sql, st };
	return st;
}

/* ---- queue claims: <store>.locks/<hex of client_id>, flock()ed, holding our pid ---- */

static void claim_path(const struct store *s, const char *client, char *out, size_t outlen)
{
	size_t n = (size_t)snprintf(out, outlen, "%s.locks/", s->path);
	for (const unsigned char *p = (const unsigned char *)client; *p && n + 3 < outlen && n < 200 + strlen(s->path); p++)
		n += (size_t)snprintf(out + n, outlen - n, "%02x", *p);
}

int store_claim(struct store *s, const char *client, char *err, size_t errlen)
{
	if (s->durability == STORE_MEMORY)
		return 0;
	int slot = -1;
	for (int i = 0; i < MAX_CLAIMS; i++) {
		if (s->claims[i].client && strcmp(s->claims[i].client, client) == 0)
			return 0;   /* ours already */
		if (!s->claims[i].client && slot < 0)
			slot = i;
	}
	if (slot < 0) {
		snprintf(err, errlen, "store %s: more than %d clients in one process", s->path, MAX_CLAIMS);
		return -1;
	}
	char path[PATH_MAX + 512];
	snprintf(path, sizeof path, "%s.locks", s->path);
	mkdir(path, 0700);
	claim_path(s, client, path, sizeof path);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "store %s: cannot create the lock %s: %s", s->path, path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		snprintf(err, errlen, "store %s: the queue of client \"%s\" is used by process %s; "
		         "one process at a time sends a client's messages (give this client another "
		         "client_id or store)", s->path, client, *pid ? pid : "(unknown)");
		close(fd);
		return -1;
	}
	char pid[32];
	int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, len, 0) != len) {
		/* the lock holds anyway; only the holder's pid in messages is missing */
	}
	s->claims[slot].client = strdup(client);
	s->claims[slot].fd = fd;
	return 0;
}

void store_release(struct store *s, const char *client)
{
	for (int i = 0; i < MAX_CLAIMS; i++) {
		if (s->claims[i].client && strcmp(s->claims[i].client, client) == 0) {
			close(s->claims[i].fd);   /* drops the flock; the file stays for the next holder */
			free(s->claims[i].client);
			s->claims[i].client = NULL;
			s->claims[i].fd = -1;
			break;   /* a client holds one claim; client may be the string just freed */
		}
	}
}
