/*
 * test_cron.c - unit tests of runtime/cron.c: the errors for bad specs, and
 * the next run of specs across month ends, Feb 29, cron's day-of-month /
 * day-of-week rule and the daylight-saving changes of Europe/Berlin and
 * America/New_York (TZ is set per case; needs Debian's tzdata).
 *
 * Prints `ok - <name>` or `not ok - <name>` per case, details on `# ` lines,
 * and exits 1 if a case failed. `test_cron NAME...` runs only the cases
 * whose name contains a NAME.
 */
#include "runtime/cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/check.h"

static void use_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* "YYYY-MM-DD HH:MM:SS" in UTC, as epoch seconds. */
static time_t utc(const char *s)
{
	struct tm tm = { 0 };
	if (!strptime(s, "%Y-%m-%d %H:%M:%S", &tm))
		return -1;
	return timegm(&tm);
}

/* The next n runs of spec after the UTC time `from`, as local
 * "YYYY-MM-DD HH:MM ZONE" joined by ", " ("ERROR: why" for a bad spec). */
static const char *runs(const char *spec, const char *from, int n)
{
	static char out[1024];
	char err[256];
	struct cron c;
	if (cron_parse(&c, spec, err, sizeof err) != 0) {
		snprintf(out, sizeof out, "ERROR: %s", err);
		return out;
	}
	out[0] = 0;
	time_t t = utc(from);
	for (int i = 0; i < n; i++) {
		t = cron_next(&c, t);
		size_t len = strlen(out);
		if (t < 0) {
			snprintf(out + len, sizeof out - len, "%snever", i ? ", " : "");
			break;
		}
		struct tm tm;
		localtime_r(&t, &tm);
		char when[64];
		strftime(when, sizeof when, "%Y-%m-%d %H:%M %Z", &tm);
		snprintf(out + len, sizeof out - len, "%s%s", i ? ", " : "", when);
	}
	return out;
}

/* The error text for spec, or "accepted". */
static const char *error_of(const char *spec)
{
	static char err[256];
	struct cron c;
	if (cron_parse(&c, spec, err, sizeof err) == 0)
		return "accepted";
	return err;
}

static void test_errors_name_the_field(void)
{
	CHECK_STR(error_of("61 * * * *"), "bad cron spec '61 * * * *': minute 61 out of range 0-59");
	CHECK_STR(error_of("* 24 * * *"), "bad cron spec '* 24 * * *': hour 24 out of range 0-23");
	CHECK_STR(error_of("0 0 0 * *"), "bad cron spec '0 0 0 * *': day-of-month 0 out of range 1-31");
	CHECK_STR(error_of("0 0 1 13 *"), "bad cron spec '0 0 1 13 *': month 13 out of range 1-12");
	CHECK_STR(error_of("0 0 * * 8"), "bad cron spec '0 0 * * 8': day-of-week 8 out of range 0-7");
	CHECK_STR(error_of("0 1-70 * * *"), "bad cron spec '0 1-70 * * *': hour 70 out of range 0-23");
	CHECK_STR(error_of("*/0 * * * *"), "bad cron spec '*/0 * * * *': minute: bad step in '*/0'");
	CHECK_STR(error_of("5-1 * * * *"), "bad cron spec '5-1 * * * *': minute: '5-1' is not a range");
	CHECK_STR(error_of("0 0 * foo *"), "bad cron spec '0 0 * foo *': month: cannot read 'foo'");
	CHECK_STR(error_of("0 0 * * mon,xyz"), "bad cron spec '0 0 * * mon,xyz': day-of-week: cannot read 'xyz'");
	CHECK_STR(error_of("* * * *"), "bad cron spec '* * * *': expected 5 fields (minute hour day-of-month "
	          "month day-of-week), HH:MM, or @hourly/@daily/@weekly/@monthly/@yearly");
	CHECK_STR(error_of("* * * * * *"), "bad cron spec '* * * * * *': expected 5 fields (minute hour "
	          "day-of-month month day-of-week), HH:MM, or @hourly/@daily/@weekly/@monthly/@yearly");
	CHECK_STR(error_of(""), "bad cron spec '': expected 5 fields (minute hour day-of-month month "
	          "day-of-week), HH:MM, or @hourly/@daily/@weekly/@monthly/@yearly");
	CHECK_STR(error_of("@often"), "bad cron spec '@often': unknown shorthand (known: @hourly, @daily, "
	          "@midnight, @weekly, @monthly, @yearly, @annually)");
	CHECK_STR(error_of("25:00"), "bad cron spec '25:00': hour 25 out of range 0-23");
	CHECK_STR(error_of("12:60"), "bad cron spec '12:60': minute 60 out of range 0-59");
	CHECK_STR(error_of("12:5"), "bad cron spec '12:5': expected HH:MM");
	CHECK_STR(error_of("-1:05"), "bad cron spec '-1:05': expected HH:MM");
	CHECK_STR(error_of("0 0 30 2 *"), "bad cron spec '0 0 30 2 *': no chosen month has the chosen "
	          "day-of-month, it would never run");
	CHECK_STR(error_of("0 0 31 apr,jun,sep,nov *"), "bad cron spec '0 0 31 apr,jun,sep,nov *': no chosen "
	          "month has the chosen day-of-month, it would never run");
	CHECK_STR(error_of("0 0 31 2 mon"), "accepted");   /* Mondays in February */
	CHECK_STR(error_of("0 0 29 feb *"), "accepted");
	CHECK_STR(error_of("9:05"), "accepted");
}

static void test_fields_lists_ranges_steps_names(void)
{
	use_tz("UTC");
	CHECK_STR(runs("*/20 * * * *", "2026-01-05 10:02:30", 4),
	          "2026-01-05 10:20 UTC, 2026-01-05 10:40 UTC, 2026-01-05 11:00 UTC, 2026-01-05 11:20 UTC");
	CHECK_STR(runs("10-30/10 9 * * *", "2026-01-05 09:10:00", 4),
	          "2026-01-05 09:20 UTC, 2026-01-05 09:30 UTC, 2026-01-06 09:10 UTC, 2026-01-06 09:20 UTC");
	CHECK_STR(runs("5,7 1,2 * * *", "2026-01-05 00:00:00", 5),
	          "2026-01-05 01:05 UTC, 2026-01-05 01:07 UTC, 2026-01-05 02:05 UTC, 2026-01-05 02:07 UTC, "
	          "2026-01-06 01:05 UTC");
	/* 2026-01-05 is a Monday */
	CHECK_STR(runs("0 9 * JAN-feb Mon-Wed", "2026-01-07 09:00:00", 3),
	          "2026-01-12 09:00 UTC, 2026-01-13 09:00 UTC, 2026-01-14 09:00 UTC");
	CHECK_STR(runs("0 9 * mar mon", "2026-01-07 09:00:00", 1), "2026-03-02 09:00 UTC");
	CHECK_STR(runs("0 12 * * 7", "2026-01-05 00:00:00", 2), "2026-01-11 12:00 UTC, 2026-01-18 12:00 UTC");
	CHECK_STR(runs("0 12 * * 0", "2026-01-05 00:00:00", 1), "2026-01-11 12:00 UTC");
	CHECK_STR(runs("0 12 * * 5-7", "2026-01-05 00:00:00", 3),
	          "2026-01-09 12:00 UTC, 2026-01-10 12:00 UTC, 2026-01-11 12:00 UTC");
	CHECK_STR(runs("50/5 * * * *", "2026-01-05 00:00:00", 3),
	          "2026-01-05 00:50 UTC, 2026-01-05 00:55 UTC, 2026-01-05 01:50 UTC");
	CHECK_STR(runs("* * * * *", "2026-01-05 23:59:00", 2), "2026-01-06 00:00 UTC, 2026-01-06 00:01 UTC");
	CHECK_STR(runs("07:30", "2026-01-05 07:30:00", 2), "2026-01-06 07:30 UTC, 2026-01-07 07:30 UTC");
}

static void test_shorthands(void)
{
	use_tz("UTC");
	const char *from = "2026-01-07 10:15:00";   /* a Wednesday */
	CHECK_STR(runs("@hourly", from, 2), "2026-01-07 11:00 UTC, 2026-01-07 12:00 UTC");
	CHECK_STR(runs("@daily", from, 1), "2026-01-08 00:00 UTC");
	CHECK_STR(runs("@midnight", from, 1), "2026-01-08 00:00 UTC");
	CHECK_STR(runs("@weekly", from, 2), "2026-01-11 00:00 UTC, 2026-01-18 00:00 UTC");
	CHECK_STR(runs("@monthly", from, 2), "2026-02-01 00:00 UTC, 2026-03-01 00:00 UTC");
	CHECK_STR(runs("@yearly", from, 1), "2027-01-01 00:00 UTC");
	CHECK_STR(runs("@annually", from, 1), "2027-01-01 00:00 UTC");
}

static void test_month_ends_and_feb_29(void)
{
	use_tz("UTC");
	CHECK_STR(runs("0 0 31 * *", "2026-01-31 00:00:00", 3),
	          "2026-03-31 00:00 UTC, 2026-05-31 00:00 UTC, 2026-07-31 00:00 UTC");
	CHECK_STR(runs("0 0 30 * *", "2026-01-30 00:00:00", 2), "2026-03-30 00:00 UTC, 2026-04-30 00:00 UTC");
	CHECK_STR(runs("59 23 28-31 2 *", "2027-02-27 00:00:00", 2), "2027-02-28 23:59 UTC, 2028-02-28 23:59 UTC");
	CHECK_STR(runs("0 12 29 2 *", "2025-03-01 00:00:00", 2), "2028-02-29 12:00 UTC, 2032-02-29 12:00 UTC");
	/* 2100 is not a leap year */
	CHECK_STR(runs("0 12 29 2 *", "2096-03-01 00:00:00", 1), "2104-02-29 12:00 UTC");
	CHECK_STR(runs("0 0 1 * *", "2026-12-31 23:59:59", 1), "2027-01-01 00:00 UTC");
}

static void test_dom_or_dow_when_both_restricted(void)
{
	use_tz("UTC");
	/* the 13th, or any Friday: 2026-12-13 is a Sunday */
	CHECK_STR(runs("0 0 13 * fri", "2026-12-01 00:00:00", 4),
	          "2026-12-04 00:00 UTC, 2026-12-11 00:00 UTC, 2026-12-13 00:00 UTC, 2026-12-18 00:00 UTC");
	CHECK_STR(runs("0 0 1,15 * 3", "2026-07-01 00:00:00", 6),   /* 07-01 is a Wednesday */
	          "2026-07-08 00:00 UTC, 2026-07-15 00:00 UTC, 2026-07-22 00:00 UTC, 2026-07-29 00:00 UTC, "
	          "2026-08-01 00:00 UTC, 2026-08-05 00:00 UTC");
	/* only one restricted: that one alone decides */
	CHECK_STR(runs("0 0 13 * *", "2026-11-01 00:00:00", 2), "2026-11-13 00:00 UTC, 2026-12-13 00:00 UTC");
	CHECK_STR(runs("0 0 * * fri", "2026-11-01 00:00:00", 2), "2026-11-06 00:00 UTC, 2026-11-13 00:00 UTC");
	/* a field starting with '*' counts as unrestricted (Vixie cron): both must match */
	CHECK_STR(runs("0 0 */2 * fri", "2026-11-01 00:00:00", 2), "2026-11-13 00:00 UTC, 2026-11-27 00:00 UTC");
}

static void test_berlin_spring_forward(void)
{
	use_tz("Europe/Berlin");   /* 2026-03-29 02:00 CET -> 03:00 CEST at 01:00 UTC */
	CHECK_STR(runs("30 2 * * *", "2026-03-28 01:30:00", 3),
	          "2026-03-29 03:00 CEST, 2026-03-30 02:30 CEST, 2026-03-31 02:30 CEST");
	CHECK_STR(runs("02:30", "2026-03-29 00:00:00", 1), "2026-03-29 03:00 CEST");
	/* a fixed time in the gap and one just after both run, each once */
	CHECK_STR(runs("0 3 * * *", "2026-03-28 12:00:00", 2), "2026-03-29 03:00 CEST, 2026-03-30 03:00 CEST");
	CHECK_STR(runs("0,30 2 * * *", "2026-03-28 23:59:00", 2), "2026-03-29 03:00 CEST, 2026-03-30 02:00 CEST");
	/* wildcard specs (minute or hour starting with '*') skip the hour that does not exist */
	CHECK_STR(runs("* 2 * * *", "2026-03-28 23:59:00", 2), "2026-03-30 02:00 CEST, 2026-03-30 02:01 CEST");
	CHECK_STR(runs("*/30 * * * *", "2026-03-29 00:00:00", 3),
	          "2026-03-29 01:30 CET, 2026-03-29 03:00 CEST, 2026-03-29 03:30 CEST");
	CHECK_STR(runs("30 * * * *", "2026-03-29 00:30:00", 1), "2026-03-29 03:30 CEST");
	CHECK_STR(runs("0 0 * * *", "2026-03-28 00:00:00", 2), "2026-03-29 00:00 CET, 2026-03-30 00:00 CEST");
}

static void test_berlin_fall_back(void)
{
	use_tz("Europe/Berlin");   /* 2026-10-25 03:00 CEST -> 02:00 CET at 01:00 UTC */
	CHECK_STR(runs("30 2 * * *", "2026-10-24 12:00:00", 3),
	          "2026-10-25 02:30 CEST, 2026-10-26 02:30 CET, 2026-10-27 02:30 CET");
	/* started during the second 02:xx: today's 02:30 already ran */
	CHECK_STR(runs("30 2 * * *", "2026-10-25 01:10:00", 1), "2026-10-26 02:30 CET");
	/* wildcard specs run in both copies of the hour */
	CHECK_STR(runs("*/30 * * * *", "2026-10-24 23:59:00", 5),
	          "2026-10-25 02:00 CEST, 2026-10-25 02:30 CEST, 2026-10-25 02:00 CET, 2026-10-25 02:30 CET, "
	          "2026-10-25 03:00 CET");
	CHECK_STR(runs("@hourly", "2026-10-24 23:30:00", 3),
	          "2026-10-25 02:00 CEST, 2026-10-25 02:00 CET, 2026-10-25 03:00 CET");
}

static void test_new_york(void)
{
	use_tz("America/New_York");   /* 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST */
	CHECK_STR(runs("30 2 * * *", "2026-03-07 12:00:00", 3),
	          "2026-03-08 03:00 EDT, 2026-03-09 02:30 EDT, 2026-03-10 02:30 EDT");
	CHECK_STR(runs("30 1 * * *", "2026-10-31 12:00:00", 2), "2026-11-01 01:30 EDT, 2026-11-02 01:30 EST");
	CHECK_STR(runs("0,45 1 * * *", "2026-11-01 04:00:00", 3),
	          "2026-11-01 01:00 EDT, 2026-11-01 01:45 EDT, 2026-11-02 01:00 EST");
	CHECK_STR(runs("*/45 1 * * *", "2026-11-01 04:00:00", 4),
	          "2026-11-01 01:00 EDT, 2026-11-01 01:45 EDT, 2026-11-01 01:00 EST, 2026-11-01 01:45 EST");
	CHECK_STR(runs("15 * * * *", "2026-11-01 04:30:00", 3),
	          "2026-11-01 01:15 EDT, 2026-11-01 01:15 EST, 2026-11-01 02:15 EST");
	CHECK_STR(runs("@daily", "2026-03-07 12:00:00", 2), "2026-03-08 00:00 EST, 2026-03-09 00:00 EDT");
}

static void test_next_is_strictly_after(void)
{
	use_tz("UTC");
	struct cron c;
	char err[200];
	CHECK_INT(cron_parse(&c, "* * * * *", err, sizeof err), 0);
	time_t t = utc("2026-01-05 10:00:00");
	CHECK_INT(cron_next(&c, t), t + 60);
	CHECK_INT(cron_next(&c, t - 1), t);
	CHECK_INT(cron_next(&c, t + 59), t + 60);
}

static const struct check_case cases[] = {
	CHECK_CASE(test_errors_name_the_field),
	CHECK_CASE(test_fields_lists_ranges_steps_names),
	CHECK_CASE(test_shorthands),
	CHECK_CASE(test_month_ends_and_feb_29),
	CHECK_CASE(test_dom_or_dow_when_both_restricted),
	CHECK_CASE(test_berlin_spring_forward),
	CHECK_CASE(test_berlin_fall_back),
	CHECK_CASE(test_new_york),
	CHECK_CASE(test_next_is_strictly_after),
};

int main(int argc, char **argv)
{
	return check_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
