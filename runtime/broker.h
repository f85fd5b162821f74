/*
 * broker.h - launches a private `mosquitto` from PATH on a free loopback
 * port, for `--broker embedded`, `mqlua.broker.start()` and the tests.
 * No Lua in here: the bindings give it a Lua face.
 *
 * A started broker dies with mqlua: it is stopped at exit, and the child is
 * asked by the kernel (PR_SET_PDEATHSIG) to terminate if mqlua is killed.
 * Its configuration and directory are removed as soon as it is listening,
 * so a kill -9 leaves nothing behind.
 */
#ifndef MQLUA_BROKER_H
#define MQLUA_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct broker_opts {
	int port;                  /* 0: pick a free port */
	const char *config;        /* extra mosquitto.conf lines, may be NULL */
	bool allow_anonymous;      /* for the default listener */
	bool show_log;             /* broker log to our stderr instead of a file */
	double timeout;            /* seconds to wait until it listens (default 10) */
};

struct broker {
	pid_t pid;                 /* 0 when not running */
	int port;
	char host[16];             /* "127.0.0.1" */
	struct broker *next;       /* in the list of brokers to stop at exit */
};

/* Starts a broker; on failure returns -1 with a message in err. */
int broker_start(struct broker *b, const struct broker_opts *opts, char *err, size_t errlen);
/* Stops it (SIGTERM, then SIGKILL after 3 s). Safe to call twice. */
void broker_stop(struct broker *b);
/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int broker_free_port(void);

#endif
