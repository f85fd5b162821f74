/*
 * timers.h - the due times of durable timers (mqlua.after/every/at with a
 * name), so that a restarted script gets its timers back at their original
 * time. One row per name and store; writes join the loop iteration's
 * transaction (store_begin), like the outbox.
 */
#ifndef MQLUA_STORE_TIMERS_H
#define MQLUA_STORE_TIMERS_H

#include "store/store.h"

/* 1 and *due (wall-clock epoch seconds) when name has a row, 0 when not, -1 on error. */
int timers_get(struct store *s, const char *name, double *due);
/* Inserts or replaces name's due time. 0 or -1. */
int timers_set(struct store *s, const char *name, double due);
/* Deletes name's row (nothing if it has none). 0 or -1. */
int timers_delete(struct store *s, const char *name);

#endif
