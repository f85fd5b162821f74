/*
 * fuzz_url.c - libFuzzer target for the --broker URL parser (runtime/url.c).
 *
 * The input, up to its first NUL, is a URL. url_parse must not crash or
 * read out of bounds, must say why when it refuses, and what it accepts
 * must hold together: a non-empty host without '@', a port in 1..65535, TLS
 * exactly for mqtts://, a password only with a user name. Then the parsed
 * URL is written out again (user and password %-escaped, an IPv6 host in
 * brackets) and parsed a second time: it must give the same fields.
 */
#include "runtime/url.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *url, const char *why)
{
	fprintf(stderr, "fuzz_url: %s\n  url: '%s'\n", why, url);
	abort();
}

/* Appends s to out (of size len at *o) with every byte but [A-Za-z0-9] as %XX. */
static void escaped(char *out, size_t len, size_t *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p && *o + 4 < len; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) {
			out[(*o)++] = (char)*p;
		} else {
			out[(*o)++] = '%';
			out[(*o)++] = hex[*p >> 4];
			out[(*o)++] = hex[*p & 15];
		}
	}
	out[*o] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = malloc(size + 1);
	if (!url)
		return 0;
	memcpy(url, data, size);
	url[size] = 0;

	struct broker_url u;
	char err[300] = "";
	if (url_parse(url, &u, err, sizeof err) != 0) {
		if (!*err)
			fail(url, "refused without a reason");
		free(url);
		return 0;
	}
	if (!u.host[0] || strchr(u.host, '@'))
		fail(url, "accepted with an empty host or an '@' in the host");
	if (u.port < 1 || u.port > 65535)
		fail(url, "accepted with a port out of 1..65535");
	if (u.tls != (strncmp(url, "mqtts://", 8) == 0))
		fail(url, "tls does not follow the scheme");
	if (u.has_password && !u.has_username)
		fail(url, "a password without a user name");

	/* write it out again and parse that */
	char again[3 * 2 * 256 + 300];
	size_t o = (size_t)snprintf(again, sizeof again, "%s", u.tls ? "mqtts://" : "mqtt://");
	if (u.has_username) {
		escaped(again, sizeof again, &o, u.username);
		if (u.has_password) {
			again[o++] = ':';
			escaped(again, sizeof again, &o, u.password);
		}
		again[o++] = '@';
	}
	bool bracket = strchr(u.host, ':') || u.host[0] == '[';
	snprintf(again + o, sizeof again - o, "%s%s%s:%d", bracket ? "[" : "", u.host, bracket ? "]" : "", u.port);
	struct broker_url v;
	if (url_parse(again, &v, err, sizeof err) != 0) {
		fprintf(stderr, "  again: '%s': %s\n", again, err);
		fail(url, "the URL written from the parsed fields does not parse");
	}
	if (memcmp(&u, &v, sizeof u) != 0) {
		fprintf(stderr, "  again: '%s': host '%s'/'%s' port %d/%d user '%s'/'%s'\n", again, u.host, v.host,
		        u.port, v.port, u.username, v.username);
		fail(url, "the URL written from the parsed fields parses differently");
	}
	free(url);
	return 0;
}
