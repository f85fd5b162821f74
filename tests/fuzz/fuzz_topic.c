/*
 * fuzz_topic.c - libFuzzer target for topic names and filters
 * (bindings/topic.c), against libmosquitto's own rules.
 *
 * The whole input is checked as a topic name and as a filter; mqlua's
 * verdict must equal libmosquitto's (mosquitto_pub_topic_check2 /
 * mosquitto_sub_topic_check2, plus what every MQTT string must be: 1 to
 * 65535 bytes of valid UTF-8 without NUL, mosquitto_validate_utf8). Then
 * the input is split at its first '\n' into a filter and a topic: when both
 * are valid, topic_matches must agree with mosquitto_topic_matches_sub.
 * Every string is handed over in a heap block of its exact length, so that
 * reading one byte past it is a sanitizer report.
 */
#include "bindings/mqlua.h"

#include <mosquitto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A heap copy of s[0..len) with nothing after it (a NUL-terminated copy in *z). */
static char *exact(const uint8_t *s, size_t len, char **z)
{
	char *p = malloc(len ? len : 1);
	*z = malloc(len + 1);
	if (!p || !*z)
		abort();
	memcpy(p, s, len);
	memcpy(*z, s, len);
	(*z)[len] = 0;
	return p;
}

static bool mqtt_string_ok(const char *s, size_t len)
{
	return len >= 1 && len <= 65535 && !memchr(s, 0, len) && mosquitto_validate_utf8(s, (int)len) == MOSQ_ERR_SUCCESS;
}

static void show(const char *what, const char *s, size_t len)
{
	fprintf(stderr, "  %s (%zu bytes): '", what, len);
	for (size_t i = 0; i < len && i < 200; i++)
		fprintf(stderr, (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? "%c" : "\\x%02x", (unsigned char)s[i]);
	fprintf(stderr, "'\n");
}

static void check_validators(const uint8_t *data, size_t size)
{
	char *z, *s = exact(data, size, &z);
	bool ours_name = topic_check_name(s, size) == NULL;
	bool ours_filter = topic_check_filter(s, size) == NULL;
	bool ok = mqtt_string_ok(s, size);
	bool theirs_name = ok && mosquitto_pub_topic_check2(s, size) == MOSQ_ERR_SUCCESS;
	bool theirs_filter = ok && mosquitto_sub_topic_check2(s, size) == MOSQ_ERR_SUCCESS;
	if (ours_name != theirs_name || ours_filter != theirs_filter) {
		show("string", s, size);
		fprintf(stderr, "fuzz_topic: as a name mqlua says %s, libmosquitto %s; as a filter mqlua says %s, "
		        "libmosquitto %s\n", ours_name ? "valid" : "invalid", theirs_name ? "valid" : "invalid",
		        ours_filter ? "valid" : "invalid", theirs_filter ? "valid" : "invalid");
		abort();
	}
	free(s);
	free(z);
}

static void check_matching(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	if (!nl)
		return;
	size_t flen = (size_t)(nl - data), tlen = size - flen - 1;
	char *fz, *tz;
	char *f = exact(data, flen, &fz), *t = exact(nl + 1, tlen, &tz);
	if (!topic_check_filter(f, flen) && !topic_check_name(t, tlen)) {
		bool ours = topic_matches(f, flen, t, tlen), theirs = false;
		int rc = mosquitto_topic_matches_sub(fz, tz, &theirs);
		if (rc != MOSQ_ERR_SUCCESS || ours != theirs) {
			show("filter", f, flen);
			show("topic", t, tlen);
			fprintf(stderr, "fuzz_topic: mqlua says %s, libmosquitto %s (rc %d)\n", ours ? "match" : "no match",
			        theirs ? "match" : "no match", rc);
			abort();
		}
	}
	free(f);
	free(fz);
	free(t);
	free(tz);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_validators(data, size);
	check_matching(data, size);
	return 0;
}
