/*
 * cron.h - calendar schedules for mqlua.at: parsing "HH:MM", 5-field cron
 * expressions and the @hourly/@daily/... shorthands, and computing the next
 * run in local time (the TZ of the process). Part of the floor, like loop.h:
 * no Lua, no store.
 *
 * Daylight-saving changes follow Vixie cron's rule. A spec is "fixed" when
 * neither its minute nor its hour field starts with '*'; a fixed spec whose
 * time does not exist on a spring-forward day (02:30 in Europe/Berlin on the
 * last Sunday of March) runs once at the first moment after the gap (03:00),
 * and a fixed time that occurs twice on a fall-back day runs once, at its
 * first occurrence. Other ("wildcard") specs run at the local times that
 * exist: they skip the gap and run in both copies of the repeated hour, so
 * "every 15 minutes" never pauses for an hour.
 */
#ifndef MQLUA_CRON_H
#define MQLUA_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cron {
	uint64_t minute;       /* bit n: minute n (0-59) */
	uint32_t hour;         /* bit n: hour n (0-23) */
	uint32_t dom;          /* bit n: day of month n (1-31) */
	uint16_t month;        /* bit n: month n (1-12) */
	uint8_t dow;           /* bit n: weekday n (0 = Sunday ... 6) */
	bool dom_star, dow_star;   /* the field started with '*' */
	bool fixed;            /* neither minute nor hour starts with '*' */
};

/* Parses spec ("HH:MM", "m h dom mon dow", "@hourly", "@daily", "@midnight",
 * "@weekly", "@monthly", "@yearly", "@annually") into c. Returns 0, or -1
 * with "bad cron spec '<spec>': <why, naming the field>" in err. A spec that
 * can never run ("0 0 30 2 *") is refused too. */
int cron_parse(struct cron *c, const char *spec, char *err, size_t errlen);

/* The first time strictly after `after` (epoch seconds) at which c runs, in
 * the local time zone; -1 if none in the next ten years. Call tzset() after
 * changing TZ. */
time_t cron_next(const struct cron *c, time_t after);

#endif
