/*
 * cron.c - parsing calendar specs and finding their next run in local time
 * (see cron.h for the daylight-saving rule).
 *
 * The search walks "naive" local times - the local calendar fields encoded
 * as if they were UTC, so that timegm/gmtime do the calendar arithmetic
 * without any time zone - and maps each matching local minute back to the
 * instants at which the local clock shows it: none (a spring-forward gap),
 * one, or two (a fall-back overlap).
 */
#include "runtime/cron.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct field {
	const char *name;
	int min, max;
	const char *const *names;   /* names[i] stands for min + i (NULL: numbers only) */
};

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const dow_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day-of-month", 1, 31, NULL },
	{ "month", 1, 12, month_names },
	{ "day-of-week", 0, 7, dow_names },
};

/* Writes "bad cron spec '<spec>': <why>" to err; returns -1. */
__attribute__((format(printf, 4, 5)))
static int bad(char *err, size_t errlen, const char *spec, const char *fmt, ...)
{
	char why[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "bad cron spec '%s': %s", spec, why);
	return -1;
}

/* Reads a number or a name of field f at *p. Returns 0 and the value, or -1. */
static int read_value(const struct field *f, const char **p, int *out)
{
	const char *s = *p;
	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		*p = s;
		*out = (int)v;
		return 0;
	}
	if (f->names) {
		for (int i = 0; f->names[i]; i++) {
			if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
				*p = s + 3;
				*out = f->min + i;
				return 0;
			}
		}
	}
	return -1;
}

/* Parses one field (text of length len) into a bit mask. */
static int parse_field(const struct field *f, const char *text, size_t len, uint64_t *mask,
                       const char *spec, char *err, size_t errlen)
{
	char buf[128];
	if (len >= sizeof buf)
		return bad(err, errlen, spec, "%s field too long", f->name);
	memcpy(buf, text, len);
	buf[len] = 0;
	*mask = 0;
	char *save = NULL;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		const char *p = item;
		int lo, hi, step = 1;
		if (*p == '*') {
			lo = f->min;
			hi = f->max;
			p++;
		} else {
			if (read_value(f, &p, &lo) != 0)
				return bad(err, errlen, spec, "%s: cannot read '%s'", f->name, item);
			hi = lo;
			if (*p == '-') {
				p++;
				if (read_value(f, &p, &hi) != 0)
					return bad(err, errlen, spec, "%s: cannot read '%s'", f->name, item);
			} else if (*p == '/') {
				hi = f->max;   /* "10/5" is "10-max/5", as in cronie */
			}
		}
		int bad_value = lo < f->min || lo > f->max ? lo : hi < f->min || hi > f->max ? hi : -1;
		if (bad_value >= 0)
			return bad(err, errlen, spec, "%s %d out of range %d-%d", f->name, bad_value, f->min, f->max);
		if (hi < lo)
			return bad(err, errlen, spec, "%s: '%s' is not a range", f->name, item);
		if (*p == '/') {
			p++;
			char *end;
			long s = strtol(p, &end, 10);
			if (end == p || *end || s < 1 || s > f->max)
				return bad(err, errlen, spec, "%s: bad step in '%s'", f->name, item);
			step = (int)s;
			p = end;
		}
		if (*p)
			return bad(err, errlen, spec, "%s: cannot read '%s'", f->name, item);
		for (int v = lo; v <= hi; v += step)
			*mask |= 1ull << v;
	}
	if (!*mask)
		return bad(err, errlen, spec, "%s field is empty", f->name);
	return 0;
}

static int days_in_month(int month, int year)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
		return 29;
	return days[month - 1];
}

int cron_parse(struct cron *c, const char *spec, char *err, size_t errlen)
{
	static const struct { const char *name, *expr; } shorthands[] = {
		{ "@hourly", "0 * * * *" }, { "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
		{ "@weekly", "0 0 * * 0" }, { "@monthly", "0 0 1 * *" }, { "@yearly", "0 0 1 1 *" },
		{ "@annually", "0 0 1 1 *" },
	};
	const char *expr = spec;
	int h, m;
	bool wildcard = false;
	memset(c, 0, sizeof *c);
	if (spec[0] == '@') {
		expr = NULL;
		for (size_t i = 0; i < sizeof shorthands / sizeof shorthands[0]; i++)
			if (strcmp(spec, shorthands[i].name) == 0)
				expr = shorthands[i].expr;
		if (!expr)
			return bad(err, errlen, spec, "unknown shorthand (known: @hourly, @daily, @midnight, "
			           "@weekly, @monthly, @yearly, @annually)");
	} else if (strchr(spec, ':')) {
		size_t len = strlen(spec);
		const char *colon = strchr(spec, ':');
		if ((len != 4 && len != 5) || colon != spec + len - 3 || !isdigit((unsigned char)spec[0]) ||
		    !isdigit((unsigned char)colon[-1]) || !isdigit((unsigned char)colon[1]) ||
		    !isdigit((unsigned char)colon[2]))
			return bad(err, errlen, spec, "expected HH:MM");
		h = atoi(spec);
		m = atoi(colon + 1);
		if (h > 23)
			return bad(err, errlen, spec, "hour %d out of range 0-23", h);
		if (m > 59)
			return bad(err, errlen, spec, "minute %d out of range 0-59", m);
		c->minute = 1ull << m;
		c->hour = 1u << h;
		c->dom = 0xfffffffe;
		c->month = 0x1ffe;
		c->dow = 0x7f;
		c->dom_star = c->dow_star = true;
		c->fixed = true;
		return 0;
	}
	const char *p = expr;
	uint64_t masks[5];
	int n = 0;
	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *start = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (n == 5) {
			n++;
			break;
		}
		size_t len = (size_t)(p - start);
		if (parse_field(&fields[n], start, len, &masks[n], spec, err, errlen) != 0)
			return -1;
		if (n == 2)
			c->dom_star = *start == '*';
		if (n == 4)
			c->dow_star = *start == '*';
		if (n < 2 && *start == '*')
			wildcard = true;
		n++;
	}
	if (n != 5)
		return bad(err, errlen, spec, "expected 5 fields (minute hour day-of-month month day-of-week), "
		           "HH:MM, or @hourly/@daily/@weekly/@monthly/@yearly");
	c->minute = masks[0];
	c->hour = (uint32_t)masks[1];
	c->dom = (uint32_t)masks[2];
	c->month = (uint16_t)masks[3];
	c->dow = (uint8_t)((masks[4] | masks[4] >> 7) & 0x7f);   /* 7 is Sunday too */
	c->fixed = !wildcard;
	if (c->dow_star) {
		/* only day-of-month restricts the days: some chosen month must have one of them */
		bool possible = false;
		for (int mo = 1; mo <= 12 && !possible; mo++)
			if (c->month >> mo & 1)
				possible = (c->dom & ((2ull << days_in_month(mo, 2000)) - 2)) != 0;
		if (!possible)
			return bad(err, errlen, spec, "no chosen month has the chosen day-of-month, it would never run");
	}
	return 0;
}

/* ---- the next run ---- */

/* The local clock's reading at instant t, as naive seconds. */
static time_t naive(time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	return t + tm.tm_gmtoff;
}

static long offset_at(time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	return tm.tm_gmtoff;
}

static bool day_matches(const struct cron *c, const struct tm *tm)
{
	bool dom = c->dom >> tm->tm_mday & 1, dow = c->dow >> tm->tm_wday & 1;
	return (c->dom_star || c->dow_star) ? dom && dow : dom || dow;
}

/* The first naive minute >= from that matches c, or -1 past limit. */
static time_t next_match(const struct cron *c, time_t from, time_t limit)
{
	time_t t = from % 60 == 0 ? from : from - from % 60 + 60;
	struct tm tm;
	while (t <= limit) {
		gmtime_r(&t, &tm);
		if (!(c->month >> (tm.tm_mon + 1) & 1)) {
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!day_matches(c, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!(c->hour >> tm.tm_hour & 1)) {
			tm.tm_hour++;
			tm.tm_min = 0;
		} else if (!(c->minute >> tm.tm_min & 1)) {
			tm.tm_min++;
		} else {
			return t;
		}
		tm.tm_sec = 0;
		tm.tm_isdst = 0;
		t = timegm(&tm);
	}
	return -1;
}

/* The instants (ascending, at most 2) at which the local clock reads the
 * naive time L. The offsets tried are those a day before and after: no zone
 * changes its offset twice within two days. */
static int instants_of(time_t L, time_t out[2])
{
	long offs[2] = { offset_at(L - 86400), offset_at(L + 86400) };
	int n = 0;
	for (int i = 0; i < 2; i++) {
		time_t e = L - offs[i];
		if (naive(e) == L && (n == 0 || out[0] != e))
			out[n++] = e;
	}
	if (n == 2 && out[0] > out[1]) {
		time_t x = out[0];
		out[0] = out[1];
		out[1] = x;
	}
	return n;
}

/* The first instant after the spring-forward gap that swallowed naive L. */
static time_t gap_end(time_t L)
{
	time_t lo = L - offset_at(L + 86400), hi = L - offset_at(L - 86400);
	if (hi <= lo)
		return lo;
	/* naive(lo) < L (lo is before the change); find the first e with naive(e) > L */
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;
		if (naive(mid) > L)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

time_t cron_next(const struct cron *c, time_t after)
{
	/* Local readings and instants differ by the offset, which changes by at
	 * most a few hours: look from 3 h before, stop 3 h past the best found. */
	const time_t slack = 3 * 3600;
	time_t base = naive(after);
	time_t limit = base + 10 * 366 * 86400L;
	time_t best = -1, best_naive = 0;
	for (time_t L = next_match(c, base - slack, limit); L >= 0; L = next_match(c, L + 60, limit)) {
		if (best >= 0 && L > best_naive + slack)
			break;
		time_t e[2];
		int n = instants_of(L, e);
		if (n == 0 && c->fixed) {
			e[0] = gap_end(L);
			n = 1;
		} else if (n == 2 && c->fixed) {
			n = 1;   /* a fixed time runs at its first occurrence only */
		}
		for (int i = 0; i < n; i++) {
			if (e[i] > after && (best < 0 || e[i] < best)) {
				best = e[i];
				best_naive = naive(best);
			}
		}
	}
	return best;
}
