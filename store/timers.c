/*
 * timers.c - the "timers" table: name -> due time of a durable timer (see
 * timers.h). The scheduling itself is bindings/timer.c's job.
 */
#include "store/timers.h"

/* Steps a write statement to completion; 0 or -1. */
static int run(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, what);
}

int timers_get(struct store *s, const char *name, double *due)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT due FROM timers WHERE name = ?1");
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), found = 0;
	if (rc == SQLITE_ROW) {
		*due = sqlite3_column_double(st, 0);
		found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? found : store_fail(s, "cannot read a timer");
}

int timers_set(struct store *s, const char *name, double due)
{
	if (store_begin(s) != 0)
		return -1;
	sqlite3_stmt *st = store_stmt(s, "INSERT INTO timers(name, due) VALUES(?1, ?2) "
	                                 "ON CONFLICT(name) DO UPDATE SET due = excluded.due");
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 2, due);
	return run(s, st, "cannot save a timer");
}

int timers_delete(struct store *s, const char *name)
{
	if (store_begin(s) != 0)
		return -1;
	sqlite3_stmt *st = store_stmt(s, "DELETE FROM timers WHERE name = ?1");
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return run(s, st, "cannot delete a timer");
}
