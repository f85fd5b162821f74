/*
 * log.c - one line per message on stderr: local time with milliseconds, the
 * level, in run mode the script's name, the text. Lines are written with a
 * single write() so that lines from the broker child and from mqlua do not
 * interleave mid-line.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_threshold = LOG_LEVEL_INFO;
void (*log_around)(bool before);
const char *(*log_prefix)(void);

const char *log_level_name(int level)
{
	static const char *names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	return level >= 0 && level <= LOG_LEVEL_DEBUG ? names[level] : "?";
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > log_threshold)
		return;
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
	n += snprintf(line + n, sizeof line - n, ".%03d %-5s ", (int)(tv.tv_usec / 1000), log_level_name(level));
	const char *prefix = log_prefix ? log_prefix() : NULL;
	if (prefix)
		n += snprintf(line + n, sizeof line - n, "[%s] ", prefix);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	if (log_around)
		log_around(true);
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
	if (log_around)
		log_around(false);
}
