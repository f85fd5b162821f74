/*
 * store.c (bindings) - the stores a process has open, shared by path; the
 * loop hook that commits every store once per iteration and then lets each
 * client hand its newly committed messages to libmosquitto; the commit at
 * exit. The SQLite side is in store/.
 */
#include "bindings/mqlua.h"
#include "bindings/client.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "store/store.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STORES 16

char *mqlua_store_path;

static struct store *stores[MAX_STORES];
static int nstores;
static struct loop_hook commit_hook;
static struct loop_timer lazy_timer;   /* wakes an idle loop to commit lazy writes */

static const char *default_path(void)
{
	static char path[PATH_MAX];
	if (mqlua_store_path)
		return mqlua_store_path;
	const char *env = getenv("MQLUA_STORE");
	if (env && *env)
		return env;
	const char *state = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	if (state && *state)
		snprintf(path, sizeof path, "%s/mqlua/store.db", state);
	else
		snprintf(path, sizeof path, "%s/.local/state/mqlua/store.db", home && *home ? home : ".");
	return path;
}

struct store *mqlua_store(const char *path, int durability, char *err, size_t errlen)
{
	if (durability != STORE_MEMORY && !path)
		path = default_path();
	const char *key = durability == STORE_MEMORY ? ":memory:" : path;
	for (int i = 0; i < nstores; i++) {
		if (strcmp(store_path(stores[i]), key) != 0)
			continue;
		if ((int)store_durability(stores[i]) != durability)
			log_warn("store %s is already open with another durability; keeping the first one", key);
		return stores[i];
	}
	if (nstores == MAX_STORES) {
		snprintf(err, errlen, "store %s: more than %d stores in one process", key, MAX_STORES);
		return NULL;
	}
	struct store *s = store_open(path, durability, err, errlen);
	if (s) {
		stores[nstores++] = s;
		log_debug("store %s opened", store_path(s));
	}
	return s;
}

/* Commits every store; a failed commit is logged and told to the clients
 * whose messages it held. Returns true if all commits succeeded. */
static bool commit_all(bool only_due)
{
	bool ok = true;
	for (int i = 0; i < nstores; i++) {
		if (!store_in_transaction(stores[i]) || (only_due && !store_commit_due(stores[i])))
			continue;
		if (store_commit(stores[i]) == 0) {
			for (struct client *c = client_all; c; c = c->next)
				if (c->store == stores[i])
					client_outbox_committed(c);
			continue;
		}
		ok = false;
		log_error("%s: the messages published in this loop iteration were not stored", store_error(stores[i]));
		for (struct client *c = client_all; c; c = c->next)
			if (c->store == stores[i])
				client_outbox_commit_failed(c, store_error(stores[i]));
	}
	return ok;
}

void mqlua_store_commit_all(void)
{
	commit_all(false);
}


/* Once per loop iteration, before it sleeps: commit (new messages at once;
 * a transaction holding only the deletes of acked messages at most every
 * STORE_LAZY_SECONDS), then send what was committed. */
static void commit_hook_cb(struct loop_hook *h)
{
	(void)h;
	commit_all(true);
	for (struct client *c = client_all; c; c = c->next)
		client_outbox_dispatch(c);
	bool pending = false;
	for (int i = 0; i < nstores && !pending; i++)
		pending = store_in_transaction(stores[i]);
	if (pending && !loop_timer_active(&lazy_timer))
		loop_timer_start(loop_default(), &lazy_timer, STORE_LAZY_SECONDS, 0);
}

static void lazy_timer_cb(struct loop_timer *t)
{
	(void)t;   /* the wakeup is the point: the hook commits on the next turn */
}

static void close_all(void)
{
	commit_all(false);
	for (int i = 0; i < nstores; i++)
		store_close(stores[i]);
	nstores = 0;
}

void store_bindings_open(lua_State *L)
{
	static bool hooked;
	if (!hooked) {
		loop_hook_init(&commit_hook, commit_hook_cb, NULL);
		loop_timer_init(&lazy_timer, lazy_timer_cb, NULL);
		lazy_timer.ref = false;
		loop_hook_start(loop_default(), &commit_hook);
		atexit(close_all);
		hooked = true;
	}
	state_open(L);
}
