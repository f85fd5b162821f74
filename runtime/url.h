/*
 * url.h - the --broker argument: mqtt://[user[:password]@]host[:port],
 * mqtts://... (TLS, port 8883 by default), IPv6 hosts in brackets, and
 * percent-escapes in the user and password. No Lua in here.
 */
#ifndef MQLUA_URL_H
#define MQLUA_URL_H

#include <stdbool.h>
#include <stddef.h>

struct broker_url {
	bool tls;
	char host[256];
	int port;
	char username[256];
	char password[256];
	bool has_username, has_password;
};

/* Parses s; on failure returns -1 with the reason in err. */
int url_parse(const char *s, struct broker_url *u, char *err, size_t errlen);
/* Overwrites the password of URL s in place with at most three '*' (the
 * freed bytes become NULs), so that the process's command line, `arg` and
 * anything printed from them no longer hold it. Leaves s alone without one. */
void url_hide_password(char *s);

#endif
