/*
 * test_filter_trie.c - unit tests of the topic-filter trie behind
 * message_callback_add (bindings/filter_trie.c): for random sets of filters
 * and random topics, the trie must report exactly the filters that
 * topic_matches() accepts (which test_topic checks against libmosquitto),
 * also after removals; and values, replacement and removal behave as the
 * header says. `test_filter_trie NAME...` runs only the cases whose name
 * contains a NAME (tests/unit/check.h).
 */
#include "bindings/filter_trie.h"
#include "bindings/mqlua.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

/* A repeatable xorshift generator, so that a failure can be rerun. */
static uint64_t rng_state;
static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

/* Writes a random topic (wild: a filter, valid by construction) of 1..5 levels into buf. */
static void random_name(char *buf, size_t size, bool wild)
{
	static const char *const levels[] = { "a", "b", "", "$SYS", "ab", "kitchen", "y" };
	do {   /* an empty name is not valid: draw again */
		int n = 1 + (int)rnd(5);
		size_t o = 0;
		for (int i = 0; i < n; i++) {
			const char *lv = levels[rnd(sizeof levels / sizeof levels[0])];
			if (wild && rnd(4) == 0)
				lv = "+";
			if (wild && i == n - 1 && rnd(5) == 0)
				lv = "#";
			o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? "/" : "", lv);
		}
	} while (!buf[0]);
}

#define NFILTERS 400
static char filters[NFILTERS][64];
static bool present[NFILTERS];

/* Counts, per filter (value = index + 1), how often the trie reported it. */
static void mark(int64_t value, void *arg)
{
	int *hits = arg;
	hits[value - 1]++;
}

/* Compares the trie with topic_matches over every present filter for n random topics;
 * returns the number of disagreements (noted) and adds to *matched the matches seen. */
static int compare(struct filter_trie *t, int n, long *matched)
{
	int bad = 0;
	for (int k = 0; k < n; k++) {
		char topic[64];
		random_name(topic, sizeof topic, false);
		int hits[NFILTERS] = { 0 };
		size_t count = filter_trie_match(t, topic, strlen(topic), mark, hits);
		size_t want = 0;
		for (int i = 0; i < NFILTERS; i++) {
			bool m = present[i] && topic_matches(filters[i], strlen(filters[i]), topic, strlen(topic));
			want += m;
			if (hits[i] != (int)m && ++bad <= 10)
				NOTE("filter \"%s\" topic \"%s\": trie reported it %d times, topic_matches says %s",
				     filters[i], topic, hits[i], m ? "match" : "no match");
		}
		if (count != want && ++bad <= 10)
			NOTE("topic \"%s\": trie counted %zu matches, expected %zu", topic, count, want);
		*matched += (long)want;
	}
	return bad;
}

static void test_random_filters_match_like_topic_matches(void)
{
	rng_state = 0x9e3779b97f4a7c15u;
	struct filter_trie *t = filter_trie_new();
	CHECK(t);
	int distinct = 0;
	for (int i = 0; i < NFILTERS; i++) {
		random_name(filters[i], sizeof filters[i], true);
		const char *why = topic_check_filter(filters[i], strlen(filters[i]));
		if (why)
			FAIL("generated filter \"%s\" %s", filters[i], why);
		present[i] = filter_trie_get(t, filters[i], strlen(filters[i])) == 0;   /* first copy only */
		if (present[i]) {
			CHECK_INT(filter_trie_set(t, filters[i], strlen(filters[i]), i + 1), 0);
			distinct++;
		}
	}
	long matched = 0;
	int bad = compare(t, 3000, &matched);
	/* remove a random half, then compare again */
	for (int i = 0; i < NFILTERS; i++) {
		if (present[i] && rnd(2)) {
			CHECK_INT(filter_trie_remove(t, filters[i], strlen(filters[i])), i + 1);
			CHECK_INT(filter_trie_get(t, filters[i], strlen(filters[i])), 0);
			present[i] = false;
		}
	}
	bad += compare(t, 3000, &matched);
	for (int i = 0; i < NFILTERS; i++)
		if (present[i])
			CHECK_INT(filter_trie_remove(t, filters[i], strlen(filters[i])), i + 1);
	memset(present, 0, sizeof present);
	char topic[] = "a/b";
	int hits[NFILTERS] = { 0 };
	CHECK_INT(filter_trie_match(t, topic, 3, mark, hits), 0);
	filter_trie_free(t);
	if (bad)
		FAIL("%d disagreements", bad);
	/* the sets must be big and match often, or they prove nothing */
	CHECK(distinct > 150);
	CHECK(matched > 2000);
}

static void test_wildcards_and_dollar_topics(void)
{
	static const struct { const char *filter, *topic; bool match; } cases[] = {
		{ "a/#", "a", true }, { "a/#", "a/b/c", true }, { "#", "a", true }, { "+", "a", true },
		{ "+/+", "a", false }, { "a/+", "a/", true }, { "+", "", true }, { "a/+/c", "a/b/c", true },
		{ "#", "$SYS/x", false }, { "+/x", "$SYS/x", false }, { "$SYS/#", "$SYS/x", true },
		{ "$SYS/+", "$SYS/x", true }, { "a/$SYS/#", "a/$SYS/x", true }, { "a/+/#", "a/$x/y", true },
		{ "a", "a/b", false }, { "a/b", "a", false }, { "/+", "/a", true }, { "+/+", "/a", true },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct filter_trie *t = filter_trie_new();
		CHECK(t);
		filter_trie_set(t, cases[i].filter, strlen(cases[i].filter), 7);
		int hits[7] = { 0 };
		size_t n = filter_trie_match(t, cases[i].topic, strlen(cases[i].topic), mark, hits);
		filter_trie_free(t);
		if (n != (size_t)cases[i].match)
			FAIL("filter \"%s\" topic \"%s\": %zu matches, expected %d", cases[i].filter, cases[i].topic,
			     n, cases[i].match);
		CHECK_INT(hits[6], cases[i].match);
	}
}

static void test_set_replaces_and_remove_reports_the_value(void)
{
	struct filter_trie *t = filter_trie_new();
	CHECK(t);
	CHECK_INT(filter_trie_set(t, "a/+", 3, 5), 0);
	CHECK_INT(filter_trie_set(t, "a/+", 3, 9), 5);
	CHECK_INT(filter_trie_get(t, "a/+", 3), 9);
	CHECK_INT(filter_trie_get(t, "a", 1), 0);        /* a prefix node holds no value */
	CHECK_INT(filter_trie_remove(t, "a/#", 3), 0);   /* absent */
	CHECK_INT(filter_trie_remove(t, "a/+", 3), 9);
	CHECK_INT(filter_trie_remove(t, "a/+", 3), 0);
	/* lengths, not NUL: "a/b" given as 1 byte is "a" */
	CHECK_INT(filter_trie_set(t, "a/b", 1, 4), 0);
	CHECK_INT(filter_trie_get(t, "a", 1), 4);
	filter_trie_free(t);
}

/* 10,000 sibling levels: the children's hash table grows, and removals in the
 * middle of probe runs keep every other child reachable. */
static void test_many_siblings_survive_removals(void)
{
	enum { N = 10000 };
	struct filter_trie *t = filter_trie_new();
	CHECK(t);
	char f[64];
	for (int i = 0; i < N; i++) {
		int len = snprintf(f, sizeof f, "sensors/room%d/+/temp", i);
		CHECK_INT(filter_trie_set(t, f, (size_t)len, i + 1), 0);
	}
	for (int i = 0; i < N; i += 2) {
		int len = snprintf(f, sizeof f, "sensors/room%d/+/temp", i);
		CHECK_INT(filter_trie_remove(t, f, (size_t)len), i + 1);
	}
	for (int i = 0; i < N; i++) {
		int len = snprintf(f, sizeof f, "sensors/room%d/dev1/temp", i);
		static int hits[N];
		size_t n = filter_trie_match(t, f, (size_t)len, mark, hits);
		if (n != (size_t)(i % 2))
			FAIL("topic %s: %zu matches, expected %d", f, n, i % 2);
	}
	filter_trie_free(t);
}

#define CASE(fn) { #fn + 5, fn }
static const struct check_case cases[] = {
	CASE(test_random_filters_match_like_topic_matches),
	CASE(test_wildcards_and_dollar_topics),
	CASE(test_set_replaces_and_remove_reports_the_value),
	CASE(test_many_siblings_survive_removals),
};

int main(int argc, char **argv)
{
	return check_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
