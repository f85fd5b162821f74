/*
 * url.c - see url.h.
 */
#include "runtime/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9') return ch - '0';
	if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
	return -1;
}

/* Copies s[0..len) to out, decoding %XX; false if malformed or too long. */
static bool decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == '%') {
			int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return false;
			ch = (char)(hi * 16 + lo);
			if (ch == 0)
				return false;
			i += 2;
		}
		if (o + 1 >= outlen)
			return false;
		out[o++] = ch;
	}
	out[o] = 0;
	return true;
}

int url_parse(const char *s, struct broker_url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof *u);
	const char *rest;
	if (strncmp(s, "mqtt://", 7) == 0) {
		rest = s + 7;
	} else if (strncmp(s, "mqtts://", 8) == 0) {
		rest = s + 8;
		u->tls = true;
	} else if (strstr(s, "://")) {
		snprintf(err, errlen, "unsupported URL scheme in '%.*s' (use mqtt://, mqtts:// or embedded)",
		         (int)(strstr(s, "://") - s + 3), s);
		return -1;
	} else {
		rest = s;   /* a bare host[:port] is accepted too */
	}
	u->port = u->tls ? 8883 : 1883;

	size_t hostpart = strcspn(rest, "/?#");
	if (rest[hostpart] != 0 && strcmp(rest + hostpart, "/") != 0) {
		if (strchr(rest + hostpart, '@'))   /* a '/' in a password: show none of it */
			snprintf(err, errlen, "a broker URL has no path or query (escape '/', '?' and '#' "
			         "in a password as %%2F, %%3F, %%23)");
		else
			snprintf(err, errlen, "a broker URL has no path or query: '%s'", rest + hostpart);
		return -1;
	}
	const char *end = rest + hostpart;
	const char *at = NULL;
	for (const char *p = rest; p < end; p++)
		if (*p == '@')
			at = p;   /* the last '@': a password may contain an escaped one */
	const char *h = rest;
	if (at) {
		const char *colon = memchr(rest, ':', at - rest);
		size_t ulen = colon ? (size_t)(colon - rest) : (size_t)(at - rest);
		if (ulen == 0 || !decode(rest, ulen, u->username, sizeof u->username)) {
			snprintf(err, errlen, "bad user name in broker URL");
			return -1;
		}
		u->has_username = true;
		if (colon) {
			if (!decode(colon + 1, at - colon - 1, u->password, sizeof u->password)) {
				snprintf(err, errlen, "bad password in broker URL (use %%XX escapes)");
				return -1;
			}
			u->has_password = true;
		}
		h = at + 1;
	}
	const char *port = NULL;
	size_t hlen;
	if (*h == '[') {
		const char *close = memchr(h, ']', end - h);
		if (!close) {
			snprintf(err, errlen, "unclosed '[' in broker URL host");
			return -1;
		}
		hlen = close - h - 1;
		memcpy(u->host, h + 1, hlen < sizeof u->host ? hlen : 0);
		if (close + 1 < end) {
			if (close[1] != ':') {
				snprintf(err, errlen, "unexpected text after ']' in broker URL");
				return -1;
			}
			port = close + 2;
		}
		h++;
	} else {
		const char *colon = memchr(h, ':', end - h);
		hlen = colon ? (size_t)(colon - h) : (size_t)(end - h);
		if (colon)
			port = colon + 1;
		if (hlen < sizeof u->host)
			memcpy(u->host, h, hlen);
	}
	if (hlen == 0 || hlen >= sizeof u->host) {
		snprintf(err, errlen, hlen ? "broker URL host is too long" : "broker URL has no host");
		return -1;
	}
	u->host[hlen] = 0;
	if (port) {
		char *stop;
		long p = strtol(port, &stop, 10);
		if (port == end || *port < '0' || *port > '9' || stop != end || p < 1 || p > 65535) {
			snprintf(err, errlen, "bad port in broker URL: '%.*s' (1 to 65535)", (int)(end - port), port);
			return -1;
		}
		u->port = (int)p;
	}
	return 0;
}

void url_hide_password(char *s)
{
	char *rest = strstr(s, "://");
	rest = rest ? rest + 3 : s;
	char *at = strrchr(rest, '@');
	if (!at)
		return;
	char *colon = memchr(rest, ':', (size_t)(at - rest));
	if (!colon || at == colon + 1)
		return;
	size_t len = (size_t)(at - colon - 1), stars = len < 3 ? len : 3;
	size_t tail = strlen(at) + 1;
	memset(colon + 1, '*', stars);
	memmove(colon + 1 + stars, at, tail);
	memset(colon + 1 + stars + tail, 0, len - stars);
}
