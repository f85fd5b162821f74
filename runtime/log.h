/*
 * log.h - leveled logging to stderr with a timestamp, shared by the runtime
 * and the bindings (like loop.h, it is part of the floor everyone stands on).
 */
#ifndef MQLUA_LOG_H
#define MQLUA_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Messages above this level are dropped. Default: LOG_LEVEL_INFO. */
extern int log_threshold;

/* If set, called with true just before a line is written and with false
 * just after (the REPL erases and redraws its prompt line around it). */
extern void (*log_around)(bool before);

/* If set and it returns a name, lines get "[name] " after the level
 * (`mqlua run`: the script whose code is running). */
extern const char *(*log_prefix)(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *log_level_name(int level);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
