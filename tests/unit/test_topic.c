/*
 * test_topic.c - unit tests of topic names and filters (bindings/topic.c:
 * topic_check_name, topic_check_filter, topic_matches) and of the --broker
 * URL parser (runtime/url.c: url_parse).
 *
 * topic_matches and the validators are compared with libmosquitto's own
 * mosquitto_topic_matches_sub / mosquitto_{pub,sub}_topic_check over
 * generated sets, so that mqlua's message_callback_add dispatch agrees with
 * what the broker routes.
 *
 * Prints `ok - <name>` or `not ok - <name>` per case, details on `# ` lines,
 * and exits 1 if a case failed. The functions are pure, so cases run in
 * this process. `test_topic NAME...` runs only the cases whose name
 * contains a NAME.
 */
#include "bindings/mqlua.h"
#include "runtime/url.h"

#include <mosquitto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

/* s contains the text part (plain, not a pattern). */
#define CHECK_HAS(s, part) do { \
	const char *s_ = (s); \
	if (!s_ || !strstr(s_, (part))) \
		FAIL("%s: expected text containing \"%s\", got \"%s\"", #s, (part), s_ ? s_ : "NULL"); \
} while (0)

/* Shows a string with non-printable bytes escaped, for failure messages. */
static const char *shown(const char *s, size_t len)
{
	static char buf[4][200];
	static int which;
	char *b = buf[which++ % 4];
	size_t o = 0;
	for (size_t i = 0; i < len && o < sizeof buf[0] - 6; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"')
			b[o++] = (char)ch;
		else
			o += (size_t)snprintf(b + o, 6, "\\x%02x", ch);
	}
	b[o] = 0;
	return b;
}

/* ---- topic names ---- */

static const char *name_why(const char *s) { return topic_check_name(s, strlen(s)); }
static const char *filter_why(const char *s) { return topic_check_filter(s, strlen(s)); }

static void test_check_name_accepts_valid_topic_names(void)
{
	static const char *const valid[] = {
		"a", "a/b", "/", "//", "a//b", "/a", "a/", "$SYS/broker/version", "$", "a b", "caf\xc3\xa9/\xe2\x82\xac",
		"sensors/kitchen/temperature", "x$y",
	};
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		const char *why = name_why(valid[i]);
		if (why)
			FAIL("topic \"%s\" refused: %s", shown(valid[i], strlen(valid[i])), why);
	}
	static char longest[65536];
	memset(longest, 'x', 65535);
	CHECK(topic_check_name(longest, 65535) == NULL);
}

static void test_check_name_rejects_with_the_reason(void)
{
	CHECK_HAS(topic_check_name("", 0), "empty");
	CHECK_HAS(name_why("a/+"), "wildcard");
	CHECK_HAS(name_why("a/+/b"), "wildcard");
	CHECK_HAS(name_why("a+b"), "wildcard");   /* also inside a level: brokers refuse it */
	CHECK_HAS(name_why("#"), "wildcard");
	CHECK_HAS(name_why("a/b#"), "wildcard");
	CHECK_HAS(topic_check_name("a\0b", 3), "NUL");
	CHECK_HAS(name_why("a/\xff"), "UTF-8");
	CHECK_HAS(name_why("\xc3"), "UTF-8");               /* truncated sequence */
	CHECK_HAS(name_why("\xc0\xaf"), "UTF-8");           /* overlong '/' */
	CHECK_HAS(name_why("\xed\xa0\x80"), "UTF-8");       /* UTF-16 surrogate */
	static char toolong[65537];
	memset(toolong, 'x', 65536);
	CHECK_HAS(topic_check_name(toolong, 65536), "65535");
}

static void test_check_filter_accepts_valid_filters(void)
{
	static const char *const valid[] = {
		"#", "+", "a", "a/+", "+/b", "a/+/b", "+/+", "a/#", "/#", "+/#", "$SYS/#", "+/", "/+", "//", "a//#",
		"$SYS/broker/+", "caf\xc3\xa9/#",
	};
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		const char *why = filter_why(valid[i]);
		if (why)
			FAIL("filter \"%s\" refused: %s", valid[i], why);
	}
}

static void test_check_filter_rejects_with_the_reason(void)
{
	CHECK_HAS(topic_check_filter("", 0), "empty");
	static const char *const plus[] = { "a+", "+a", "a/b+", "a/+b/c", "++", "a/++" };
	for (size_t i = 0; i < sizeof plus / sizeof plus[0]; i++)
		CHECK_HAS(filter_why(plus[i]), "'+'");
	static const char *const hash[] = { "a#", "#/", "a/#/b", "##", "#a", "a/b#" };
	for (size_t i = 0; i < sizeof hash / sizeof hash[0]; i++)
		CHECK_HAS(filter_why(hash[i]), "'#'");
	CHECK_HAS(topic_check_filter("a/\0/#", 4), "NUL");
	CHECK_HAS(filter_why("\xfe/#"), "UTF-8");
	static char toolong[65537];
	memset(toolong, '+', 1);
	memset(toolong + 1, 'x', 65535);
	CHECK_HAS(topic_check_filter(toolong, 65536), "65535");
}

/* Every string of 1..4 characters over "a/+#$" and a few more: mqlua's
 * verdicts must equal libmosquitto's (the broker's rules). */
static void test_validators_agree_with_libmosquitto(void)
{
	static const char alphabet[] = "a/+#$";
	const int k = (int)sizeof alphabet - 1;
	int compared = 0, mismatches = 0;
	char s[8];
	for (int len = 1; len <= 5; len++) {
		int total = 1;
		for (int i = 0; i < len; i++)
			total *= k;
		for (int n = 0; n < total; n++) {
			int x = n;
			for (int i = 0; i < len; i++, x /= k)
				s[i] = alphabet[x % k];
			s[len] = 0;
			bool ours_name = topic_check_name(s, (size_t)len) == NULL;
			bool theirs_name = mosquitto_pub_topic_check2(s, (size_t)len) == MOSQ_ERR_SUCCESS;
			bool ours_filter = topic_check_filter(s, (size_t)len) == NULL;
			bool theirs_filter = mosquitto_sub_topic_check2(s, (size_t)len) == MOSQ_ERR_SUCCESS;
			compared += 2;
			if (ours_name != theirs_name && ++mismatches <= 10)
				NOTE("topic name \"%s\": mqlua says %s, libmosquitto %s", s,
				     ours_name ? "valid" : "invalid", theirs_name ? "valid" : "invalid");
			if (ours_filter != theirs_filter && ++mismatches <= 10)
				NOTE("filter \"%s\": mqlua says %s, libmosquitto %s", s,
				     ours_filter ? "valid" : "invalid", theirs_filter ? "valid" : "invalid");
		}
	}
	if (mismatches)
		FAIL("%d of %d verdicts differ", mismatches, compared);
	CHECK(compared > 7000);
}

/* ---- matching ---- */

static bool matches(const char *f, const char *t)
{
	return topic_matches(f, strlen(f), t, strlen(t));
}

static void test_matches_follows_mqtt_rules(void)
{
	static const struct { const char *filter, *topic; bool expected; } cases[] = {
		{ "a/b", "a/b", true },
		{ "a/b", "a/B", false },        /* case-sensitive */
		{ "a/b", "a/b/", false },
		{ "a/b", "a", false },
		{ "a", "a/b", false },
		{ "a/b", "a/bc", false },
		{ "a/bc", "a/b", false },
		{ "+", "a", true },
		{ "+", "a/b", false },
		{ "+", "/", false },
		{ "+/+", "/", true },            /* '+' matches an empty level */
		{ "a/+", "a/", true },
		{ "a/+", "a", false },
		{ "a/+/c", "a/b/c", true },
		{ "a/+/c", "a//c", true },
		{ "a/+/c", "a/b/d", false },
		{ "#", "a", true },
		{ "#", "a/b/c", true },
		{ "#", "/", true },
		{ "a/#", "a", true },            /* '#' also matches the parent level */
		{ "a/#", "a/", true },
		{ "a/#", "a/b/c", true },
		{ "a/#", "ab", false },
		{ "a/#", "b/a", false },
		{ "+/#", "a", true },
		{ "/#", "/a", true },
		{ "/#", "a", false },
		{ "a/b/#", "a", false },
		{ "#", "$SYS/broker", false },   /* no leading wildcard matches a $ topic */
		{ "+/broker", "$SYS/broker", false },
		{ "+", "$SYS", false },
		{ "$SYS/#", "$SYS/broker", true },
		{ "$SYS/#", "$SYS", true },
		{ "$SYS/+", "$SYS/broker", true },
		{ "a/#", "a/$b", true },         /* '$' only matters at the start */
		{ "+/$b", "a/$b", true },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool got = matches(cases[i].filter, cases[i].topic);
		if (got != cases[i].expected)
			NOTE("topic_matches(\"%s\", \"%s\"): expected %s", cases[i].filter, cases[i].topic,
			     cases[i].expected ? "true" : "false");
	}
}

static void test_matches_uses_the_lengths_not_nul(void)
{
	/* the Lua strings it gets are counted, and may be followed by anything */
	const char *f = "a/b#junk", *t = "a/b/c";
	CHECK(topic_matches(f, 3, "a/b", 3));
	CHECK(!topic_matches(f, 3, t, 5));
	CHECK(topic_matches(f, 3, t, 3));
	CHECK(topic_matches("a/+XX", 3, "a/bYY", 3));
	CHECK(!topic_matches("a/+", 3, "a/b/c", 5));
	CHECK(topic_matches("#", 1, "a/b", 3));
}

/* Appends level number `which` of `levels` to buf (after a '/' unless first). */
static void add_level(char *buf, const char *const *levels, int which, bool first)
{
	if (!first)
		strcat(buf, "/");
	strcat(buf, levels[which]);
}

/* Builds every join of 1..depth levels from `levels` into out[]; returns the count. */
static int generate(const char *const *levels, int nlevels, int depth, char (*out)[40], int max)
{
	int n = 0;
	for (int d = 1; d <= depth; d++) {
		int total = 1;
		for (int i = 0; i < d; i++)
			total *= nlevels;
		for (int k = 0; k < total && n < max; k++) {
			int x = k;
			out[n][0] = 0;
			for (int i = 0; i < d; i++, x /= nlevels)
				add_level(out[n], levels, x % nlevels, i == 0);
			n++;
		}
	}
	return n;
}

static void test_matches_agrees_with_libmosquitto(void)
{
	static const char *const filter_levels[] = { "a", "b", "", "+", "#", "$SYS", "ab" };
	static const char *const topic_levels[] = { "a", "b", "", "$SYS", "ab", "$x" };
	static char filters[800][40], topics[300][40];
	int nf = generate(filter_levels, 7, 3, filters, 800);
	int nt = generate(topic_levels, 6, 3, topics, 300);
	int compared = 0, matched = 0, mismatches = 0;
	for (int i = 0; i < nf; i++) {
		const char *f = filters[i];
		if (topic_check_filter(f, strlen(f)))
			continue;
		for (int j = 0; j < nt; j++) {
			const char *t = topics[j];
			if (topic_check_name(t, strlen(t)))
				continue;
			bool theirs = false;
			int rc = mosquitto_topic_matches_sub(f, t, &theirs);
			if (rc != MOSQ_ERR_SUCCESS) {
				if (++mismatches <= 10)
					NOTE("libmosquitto refused \"%s\" / \"%s\" (rc %d) that mqlua accepts", f, t, rc);
				continue;
			}
			bool ours = matches(f, t);
			compared++;
			matched += ours;
			if (ours != theirs && ++mismatches <= 10)
				NOTE("filter \"%s\" topic \"%s\": mqlua says %s, libmosquitto %s", f, t,
				     ours ? "match" : "no match", theirs ? "match" : "no match");
		}
	}
	if (mismatches)
		FAIL("%d of %d combinations differ", mismatches, compared);
	/* the set must be big and contain both answers, or it proves nothing */
	CHECK(compared > 5000);
	CHECK(matched > 500);
	CHECK(compared - matched > 500);
}

/* ---- broker URLs ---- */

static void test_url_plain_host(void)
{
	struct broker_url u;
	char err[256] = "";
	CHECK_INT(url_parse("mqtt://broker.local", &u, err, sizeof err), 0);
	CHECK_STR(u.host, "broker.local");
	CHECK_INT(u.port, 1883);
	CHECK(!u.tls);
	CHECK(!u.has_username && !u.has_password);
	CHECK_INT(url_parse("mqtt://broker.local/", &u, err, sizeof err), 0);   /* a lone '/' is no path */
	CHECK_STR(u.host, "broker.local");
	CHECK_INT(url_parse("localhost:1884", &u, err, sizeof err), 0);         /* bare host:port */
	CHECK_STR(u.host, "localhost");
	CHECK_INT(u.port, 1884);
}

static void test_url_port(void)
{
	struct broker_url u;
	char err[256] = "";
	CHECK_INT(url_parse("mqtt://h:1234", &u, err, sizeof err), 0);
	CHECK_STR(u.host, "h");
	CHECK_INT(u.port, 1234);
	CHECK_INT(url_parse("mqtt://h:65535", &u, err, sizeof err), 0);
	CHECK_INT(u.port, 65535);
	CHECK_INT(url_parse("mqtts://h:1", &u, err, sizeof err), 0);
	CHECK_INT(u.port, 1);
	CHECK(u.tls);
}

static void test_url_mqtts_defaults_to_8883_and_tls(void)
{
	struct broker_url u;
	char err[256] = "";
	CHECK_INT(url_parse("mqtts://h", &u, err, sizeof err), 0);
	CHECK_STR(u.host, "h");
	CHECK_INT(u.port, 8883);
	CHECK(u.tls);
}

static void test_url_user_and_password_with_escapes(void)
{
	struct broker_url u;
	char err[256] = "";
	CHECK_INT(url_parse("mqtt://us%40er:p%40ss%3Aw%25rd@h:1884", &u, err, sizeof err), 0);
	CHECK(u.has_username && u.has_password);
	CHECK_STR(u.username, "us@er");
	CHECK_STR(u.password, "p@ss:w%rd");
	CHECK_STR(u.host, "h");
	CHECK_INT(u.port, 1884);
	/* a raw '@' in the password: the last '@' ends the credentials */
	CHECK_INT(url_parse("mqtt://user:p@ss@h", &u, err, sizeof err), 0);
	CHECK_STR(u.username, "user");
	CHECK_STR(u.password, "p@ss");
	CHECK_STR(u.host, "h");
	/* user without password, and an empty password */
	CHECK_INT(url_parse("mqtts://alice@h", &u, err, sizeof err), 0);
	CHECK(u.has_username && !u.has_password);
	CHECK_STR(u.username, "alice");
	CHECK_INT(u.port, 8883);
	CHECK_INT(url_parse("mqtt://alice:@h", &u, err, sizeof err), 0);
	CHECK(u.has_password);
	CHECK_STR(u.password, "");
}

static void test_url_bad_credentials(void)
{
	struct broker_url u;
	char err[256] = "";
	CHECK_INT(url_parse("mqtt://:pass@h", &u, err, sizeof err), -1);
	CHECK_HAS(err, "user name");
	CHECK_INT(url_parse("mqtt://u%4:x@h", &u, err, sizeof err), -1);
	CHECK_HAS(err, "user name");
	CHECK_INT(url_parse("mqtt://u:bad%zzescape@h", &u, err, sizeof err), -1);
	CHECK_HAS(err, "password");
	CHECK_INT(url_parse("mqtt://u:nul%00@h", &u, err, sizeof err), -1);
	CHECK_HAS(err, "password");
}

static void test_url_ipv6_in_brackets(void)
{
	struct broker_url u;
	char err[256] = "";
	CHECK_INT(url_parse("mqtt://[::1]:1884", &u, err, sizeof err), 0);
	CHECK_STR(u.host, "::1");
	CHECK_INT(u.port, 1884);
	CHECK_INT(url_parse("mqtts://user:pw@[fe80::1]", &u, err, sizeof err), 0);
	CHECK_STR(u.host, "fe80::1");
	CHECK_INT(u.port, 8883);
	CHECK_STR(u.username, "user");
	CHECK_INT(url_parse("mqtt://[::1", &u, err, sizeof err), -1);
	CHECK_HAS(err, "'['");
	CHECK_INT(url_parse("mqtt://[::1]x", &u, err, sizeof err), -1);
	CHECK_HAS(err, "']'");
	CHECK_INT(url_parse("mqtt://[]:1884", &u, err, sizeof err), -1);
	CHECK_HAS(err, "no host");
}

static void test_url_bad_port(void)
{
	static const char *const bad[] = {
		"mqtt://h:", "mqtt://h:0", "mqtt://h:65536", "mqtt://h:99999999999999999999", "mqtt://h:-1",
		"mqtt://h:12ab", "mqtt://h:+1884", "mqtt://h: 1884", "mqtt://h:1884:1", "mqtt://[::1]:",
		"mqtt://[::1]:x",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct broker_url u;
		char err[256] = "";
		if (url_parse(bad[i], &u, err, sizeof err) != -1) {
			NOTE("\"%s\" was accepted (port %d)", bad[i], u.port);
			continue;
		}
		if (!strstr(err, "bad port"))
			NOTE("\"%s\": expected \"bad port\" in the error, got \"%s\"", bad[i], err);
	}
}

static void test_url_unknown_scheme(void)
{
	struct broker_url u;
	char err[256] = "";
	CHECK_INT(url_parse("http://h:80", &u, err, sizeof err), -1);
	CHECK_HAS(err, "unsupported URL scheme");
	CHECK_HAS(err, "http://");
	CHECK_INT(url_parse("ws://h", &u, err, sizeof err), -1);
	CHECK_HAS(err, "ws://");
	CHECK_INT(url_parse("MQTT://h", &u, err, sizeof err), -1);
	CHECK_HAS(err, "unsupported URL scheme");
}

static void test_url_empty_host(void)
{
	static const char *const bad[] = { "mqtt://", "mqtts://", "mqtt://:1884", "mqtt://user:pw@", "mqtt://u@:1", "" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct broker_url u;
		char err[256] = "";
		if (url_parse(bad[i], &u, err, sizeof err) != -1)
			NOTE("\"%s\" was accepted (host \"%s\")", bad[i], u.host);
		else if (!strstr(err, "no host"))
			NOTE("\"%s\": expected \"no host\" in the error, got \"%s\"", bad[i], err);
	}
	char longhost[400] = "mqtt://";
	memset(longhost + 7, 'h', 300);
	struct broker_url u;
	char err[256] = "";
	CHECK_INT(url_parse(longhost, &u, err, sizeof err), -1);
	CHECK_HAS(err, "too long");
}

static void test_url_path_and_query_rejected(void)
{
	static const char *const bad[] = { "mqtt://h/topic", "mqtt://h:1884/x", "mqtt://h?qos=1", "mqtt://h#frag", "mqtt://h//" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct broker_url u;
		char err[256] = "";
		if (url_parse(bad[i], &u, err, sizeof err) != -1)
			NOTE("\"%s\" was accepted", bad[i]);
		else if (!strstr(err, "no path"))
			NOTE("\"%s\": expected \"no path\" in the error, got \"%s\"", bad[i], err);
	}
}

/* ---- main ---- */

#define CASE(fn) { #fn + 5, fn }
static const struct check_case cases[] = {
	CASE(test_check_name_accepts_valid_topic_names),
	CASE(test_check_name_rejects_with_the_reason),
	CASE(test_check_filter_accepts_valid_filters),
	CASE(test_check_filter_rejects_with_the_reason),
	CASE(test_validators_agree_with_libmosquitto),
	CASE(test_matches_follows_mqtt_rules),
	CASE(test_matches_uses_the_lengths_not_nul),
	CASE(test_matches_agrees_with_libmosquitto),
	CASE(test_url_plain_host),
	CASE(test_url_port),
	CASE(test_url_mqtts_defaults_to_8883_and_tls),
	CASE(test_url_user_and_password_with_escapes),
	CASE(test_url_bad_credentials),
	CASE(test_url_ipv6_in_brackets),
	CASE(test_url_bad_port),
	CASE(test_url_unknown_scheme),
	CASE(test_url_empty_host),
	CASE(test_url_path_and_query_rejected),
};


int main(int argc, char **argv)
{
	mosquitto_lib_init();
	int status = check_run(cases, sizeof cases / sizeof cases[0], argc, argv);
	mosquitto_lib_cleanup();
	return status;
}
