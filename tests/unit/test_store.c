/*
 * test_store.c - unit tests of the retained-message cache (store/retained.c),
 * the scripts' state (store/state.c) and the outbox (store/outbox.c), with
 * its group commits and per-client claims; store_fixture.h runs each case on
 * a file store and on a memory store.
 *
 * Filters are matched with bindings/topic.c's topic_matches, the function
 * client:retained() uses, so the wildcard cases check what a script sees.
 */
#include "bindings/mqlua.h"
#include "tests/unit/store_fixture.h"

static bool match(const char *filter, const char *topic)
{
	return topic_matches(filter, strlen(filter), topic, strlen(topic));
}

static int put(struct store *s, const char *client, const char *topic, const char *payload, int qos)
{
	return retained_put(s, client, topic, payload, strlen(payload), qos);
}

/* What retained_each passed, as "topic=payload@qos;" for each message. */
struct seen {
	char text[2048];
	int calls;
	int stop_after;          /* 0: never stop */
	double min_updated, max_updated;
};

static bool record(const struct retained_msg *m, void *ud)
{
	struct seen *k = ud;
	size_t n = strlen(k->text);
	snprintf(k->text + n, sizeof k->text - n, "%s=%.*s@%d;", m->topic, m->payloadlen,
	         (const char *)m->payload, m->qos);
	if (k->calls == 0 || m->updated < k->min_updated)
		k->min_updated = m->updated;
	if (k->calls == 0 || m->updated > k->max_updated)
		k->max_updated = m->updated;
	k->calls++;
	return !(k->stop_after && k->calls >= k->stop_after);
}

/* retained_each of client and filter, as text ("ERROR" on failure). */
static const char *cached(struct store *s, const char *client, const char *filter)
{
	static struct seen k;
	memset(&k, 0, sizeof k);
	int n = retained_each(s, client, filter, match, record, &k);
	if (n < 0)
		return "ERROR";
	if (n != k.calls)
		return "COUNT MISMATCH";
	return k.text;
}


/* ---- retained ---- */

static void test_retained_put_then_read(struct store *s)
{
	CHECK_INT(put(s, "c1", "home/lamp", "on", 1), 0);
	CHECK(store_in_transaction(s));              /* the write joined the iteration's transaction */
	CHECK_STR(cached(s, "c1", "home/lamp"), "home/lamp=on@1;");
	CHECK_STR(cached(s, "c1", "#"), "home/lamp=on@1;");
	CHECK_STR(cached(s, "c1", NULL), "home/lamp=on@1;");
	CHECK_INT(store_commit(s), 0);
	CHECK_STR(cached(s, "c1", "home/lamp"), "home/lamp=on@1;");
}

static void test_retained_upsert_replaces_payload_and_qos(struct store *s)
{
	CHECK_INT(put(s, "c1", "home/lamp", "on", 1), 0);
	CHECK_INT(put(s, "c1", "home/lamp", "off", 2), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(put(s, "c1", "home/lamp", "dim", 0), 0);
	CHECK_STR(cached(s, "c1", "#"), "home/lamp=dim@0;");
}

static void test_retained_empty_payload_deletes(struct store *s)
{
	CHECK_INT(put(s, "c1", "a", "1", 1), 0);
	CHECK_INT(put(s, "c1", "b", "2", 1), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(put(s, "c1", "a", "", 1), 0);
	CHECK_STR(cached(s, "c1", "#"), "b=2@1;");
	CHECK_STR(cached(s, "c1", "a"), "");
	CHECK_INT(put(s, "c1", "never-cached", "", 0), 0);   /* deleting nothing is fine */
	CHECK_INT(store_commit(s), 0);
	CHECK_STR(cached(s, "c1", "#"), "b=2@1;");
}

/* Keeps a copy of the last message it is passed (freed by the caller). */
static bool grab(const struct retained_msg *m, void *ud)
{
	struct retained_msg *out = ud;
	char *p = malloc((size_t)m->payloadlen + 1);
	if (!p)
		return false;
	memcpy(p, m->payload, (size_t)m->payloadlen);
	free((void *)out->payload);
	free((void *)out->topic);
	out->payload = p;
	out->payloadlen = m->payloadlen;
	out->topic = strdup(m->topic);
	out->qos = m->qos;
	out->updated = m->updated;
	return true;
}

static void test_retained_binary_payload_kept_exactly(struct store *s)
{
	static const char bin[] = { 'x', 0, (char)0xff, 0, 'y' };
	CHECK_INT(retained_put(s, "c1", "bin", bin, sizeof bin, 2), 0);
	struct retained_msg m = { 0 };
	int n = retained_each(s, "c1", "bin", match, grab, &m);
	bool same = m.payload && m.payloadlen == (int)sizeof bin && memcmp(m.payload, bin, sizeof bin) == 0;
	int qos = m.qos;
	free((void *)m.payload);
	free((void *)m.topic);
	CHECK_INT(n, 1);
	CHECK(same);
	CHECK_INT(qos, 2);
}

/* A set of topics for the filter cases, put in an order unlike topic order. */
static int put_tree(struct store *s)
{
	static const char *const topics[] = {
		"a/b/c", "a", "$SYS/broker/uptime", "x", "a/b", "b/x", "a/bc", "a0", "a/c/x",
		"/x", "a/", "c/x/y", "$SYS/x", "b/y/x", "caf\xc3\xa9/x", "a//b",
	};
	for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
		if (put(s, "c1", topics[i], "p", 1) != 0)
			return -1;
	return 0;
}

static void test_retained_hash_matches_all_but_dollar_topics_in_order(struct store *s)
{
	CHECK_INT(put_tree(s), 0);
	CHECK_STR(cached(s, "c1", "#"),
	          "/x=p@1;a=p@1;a/=p@1;a//b=p@1;a/b=p@1;a/b/c=p@1;a/bc=p@1;a/c/x=p@1;a0=p@1;"
	          "b/x=p@1;b/y/x=p@1;c/x/y=p@1;caf\xc3\xa9/x=p@1;x=p@1;");
	CHECK_STR(cached(s, "c1", "$SYS/#"), "$SYS/broker/uptime=p@1;$SYS/x=p@1;");
	CHECK_STR(cached(s, "c1", "+/x"), "/x=p@1;b/x=p@1;caf\xc3\xa9/x=p@1;");
	CHECK_STR(cached(s, "c1", "+/+"), "/x=p@1;a/=p@1;a/b=p@1;a/bc=p@1;b/x=p@1;caf\xc3\xa9/x=p@1;");
	CHECK_STR(cached(s, "c1", "$SYS/+"), "$SYS/x=p@1;");
}

static void test_retained_filters_with_a_literal_prefix(struct store *s)
{
	CHECK_INT(put_tree(s), 0);
	/* "a/b/#" also matches its parent "a/b"; "a/bc" and "a0" share the prefix but not the level */
	CHECK_STR(cached(s, "c1", "a/b/#"), "a/b=p@1;a/b/c=p@1;");
	CHECK_STR(cached(s, "c1", "a/#"), "a=p@1;a/=p@1;a//b=p@1;a/b=p@1;a/b/c=p@1;a/bc=p@1;a/c/x=p@1;");
	CHECK_STR(cached(s, "c1", "a/+"), "a/=p@1;a/b=p@1;a/bc=p@1;");
	CHECK_STR(cached(s, "c1", "a/+/x"), "a/c/x=p@1;");
	CHECK_STR(cached(s, "c1", "a//#"), "a/=p@1;a//b=p@1;");
	CHECK_STR(cached(s, "c1", "b/+/x"), "b/y/x=p@1;");
	CHECK_STR(cached(s, "c1", "c/#"), "c/x/y=p@1;");
	CHECK_STR(cached(s, "c1", "caf\xc3\xa9/+"), "caf\xc3\xa9/x=p@1;");
	CHECK_STR(cached(s, "c1", "/#"), "/x=p@1;");
	CHECK_STR(cached(s, "c1", "zz/#"), "");
	/* no wildcard: exact lookups */
	CHECK_STR(cached(s, "c1", "a/b"), "a/b=p@1;");
	CHECK_STR(cached(s, "c1", "a/b/"), "");
	CHECK_STR(cached(s, "c1", "$SYS/x"), "$SYS/x=p@1;");
}

static void test_retained_clients_are_separate(struct store *s)
{
	CHECK_INT(put(s, "c1", "t", "one", 1), 0);
	CHECK_INT(put(s, "c2", "t", "two", 2), 0);
	CHECK_INT(put(s, "c2", "u", "u2", 0), 0);
	CHECK_STR(cached(s, "c1", "#"), "t=one@1;");
	CHECK_STR(cached(s, "c2", "#"), "t=two@2;u=u2@0;");
	CHECK_STR(cached(s, "c3", "#"), "");
	CHECK_INT(put(s, "c2", "t", "", 0), 0);
	CHECK_STR(cached(s, "c1", "t"), "t=one@1;");
	CHECK_STR(cached(s, "c2", "t"), "");
	/* a client_id that is a prefix of another shares nothing with it */
	CHECK_INT(put(s, "c", "t", "short", 0), 0);
	CHECK_STR(cached(s, "c", "#"), "t=short@0;");
	CHECK_STR(cached(s, "c1", "#"), "t=one@1;");
}

static void test_retained_stops_when_fn_returns_false(struct store *s)
{
	CHECK_INT(put_tree(s), 0);
	struct seen k = { .stop_after = 2 };
	CHECK_INT(retained_each(s, "c1", "a/#", match, record, &k), 2);
	CHECK_STR(k.text, "a=p@1;a/=p@1;");
	/* the statement was reset: the next call starts again */
	CHECK_STR(cached(s, "c1", "a/#"), "a=p@1;a/=p@1;a//b=p@1;a/b=p@1;a/b/c=p@1;a/bc=p@1;a/c/x=p@1;");
}

static void test_retained_records_the_time(struct store *s)
{
	double before = store_now();
	CHECK_INT(put(s, "c1", "t", "x", 0), 0);
	double after = store_now();
	struct seen k = { .text = "" };
	CHECK_INT(retained_each(s, "c1", "t", match, record, &k), 1);
	if (k.min_updated < before || k.max_updated > after)
		FAIL("updated %.6f not within [%.6f, %.6f]", k.min_updated, before, after);
	CHECK(before > 1.6e9);       /* wall-clock seconds, not a monotonic clock */
}

static void test_retained_null_match_takes_every_row(struct store *s)
{
	CHECK_INT(put_tree(s), 0);
	struct seen k = { .text = "" };
	/* without a match function a wildcard filter only narrows by its literal prefix */
	CHECK_INT(retained_each(s, "c1", NULL, NULL, record, &k), 16);
}

static void test_retained_survives_close_and_reopen(struct store *s)
{
	CHECK_INT(put(s, "c1", "home/lamp", "on", 1), 0);
	CHECK_INT(put(s, "c1", "home/door", "shut", 2), 0);
	current = NULL;
	store_close(s);              /* commits what is pending */
	current = open_store();
	CHECK(current);
	CHECK_STR(cached(current, "c1", "home/+"), "home/door=shut@2;home/lamp=on@1;");
}

/* ---- state ---- */


static void test_state_set_get_every_type(struct store *s)
{
	struct state_value vs[] = {
		val('s', "hello"), val('n', "0.10000000000000001"), val('i', "-9223372036854775808"),
		val('b', "true"), val('j', "{\"a\":[1,2]}"), val('s', ""),
	};
	const char *keys[] = { "str", "num", "int", "bool", "json", "empty" };
	for (int i = 0; i < 6; i++)
		CHECK_INT(state_set(s, "", keys[i], &vs[i]), 0);
	CHECK(store_in_transaction(s));
	CHECK_STR(got(s, "", "str"), "s:hello");
	CHECK_STR(got(s, "", "num"), "n:0.10000000000000001");
	CHECK_STR(got(s, "", "int"), "i:-9223372036854775808");
	CHECK_STR(got(s, "", "bool"), "b:true");
	CHECK_STR(got(s, "", "json"), "j:{\"a\":[1,2]}");
	CHECK_STR(got(s, "", "empty"), "s:");
	CHECK_STR(got(s, "", "missing"), "ABSENT");
	CHECK_INT(store_commit(s), 0);
	CHECK_STR(got(s, "", "json"), "j:{\"a\":[1,2]}");
}

static void test_state_values_are_bytes_and_null_terminated_on_get(struct store *s)
{
	static const char bin[] = { 'a', 0, 'b' };
	struct state_value v = { 's', bin, sizeof bin }, out;
	CHECK_INT(state_set(s, "", "bin", &v), 0);
	CHECK_INT(state_get(s, "", "bin", &out), 1);
	CHECK_INT(out.type, 's');
	CHECK_INT(out.len, 3);
	CHECK(memcmp(out.data, bin, 3) == 0);
	CHECK_INT(out.data[3], 0);
}

static void test_state_overwrite_and_delete(struct store *s)
{
	struct state_value a = val('i', "1"), b = val('s', "one");
	CHECK_INT(state_set(s, "", "k", &a), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(state_set(s, "", "k", &b), 0);
	CHECK_STR(got(s, "", "k"), "s:one");
	CHECK_INT(state_set(s, "", "k", NULL), 0);
	CHECK_STR(got(s, "", "k"), "ABSENT");
	CHECK_INT(state_set(s, "", "never", NULL), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_STR(got(s, "", "k"), "ABSENT");
}

static void test_state_refuses_an_unknown_type(struct store *s)
{
	struct state_value v = val('x', "1");
	CHECK_INT(state_set(s, "", "k", &v), -1);
	CHECK_STR(got(s, "", "k"), "ABSENT");
}

struct listing {
	char text[1024];
	int stop_after;
	int calls;
};

static bool list_one(const char *key, const struct state_value *v, void *ud)
{
	struct listing *k = ud;
	size_t n = strlen(k->text);
	snprintf(k->text + n, sizeof k->text - n, "%s=%c:%.*s;", key, v->type, (int)v->len, v->data);
	k->calls++;
	return !(k->stop_after && k->calls >= k->stop_after);
}

static void test_state_each_in_key_order_per_scope(struct store *s)
{
	const char *keys[] = { "b", "a", "c", "B", "aa" };
	for (int i = 0; i < 5; i++) {
		struct state_value v = val('i', keys[i]);
		CHECK_INT(state_set(s, "", keys[i], &v), 0);
	}
	struct state_value other = val('s', "other");
	CHECK_INT(state_set(s, "script2", "a", &other), 0);
	struct listing k = { .text = "" };
	CHECK_INT(state_each(s, "", list_one, &k), 5);
	CHECK_STR(k.text, "B=i:B;a=i:a;aa=i:aa;b=i:b;c=i:c;");
	struct listing k2 = { .text = "" };
	CHECK_INT(state_each(s, "script2", list_one, &k2), 1);
	CHECK_STR(k2.text, "a=s:other;");
	CHECK_STR(got(s, "script2", "b"), "ABSENT");
	CHECK_STR(got(s, "", "a"), "i:a");
	struct listing k3 = { .text = "" };
	CHECK_INT(state_each(s, "nobody", list_one, &k3), 0);
	struct listing k4 = { .text = "", .stop_after = 2 };
	CHECK_INT(state_each(s, "", list_one, &k4), 2);
	CHECK_STR(k4.text, "B=i:B;a=i:a;");
}

static void test_state_survives_close_and_reopen(struct store *s)
{
	struct state_value n = val('n', "3.1415926535897931"), j = val('j', "[true]");
	CHECK_INT(state_set(s, "", "pi", &n), 0);
	CHECK_INT(state_set(s, "sc", "list", &j), 0);
	CHECK_INT(state_set(s, "", "gone", &n), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(state_set(s, "", "gone", NULL), 0);
	current = NULL;
	store_close(s);              /* commits the delete too */
	current = open_store();
	CHECK(current);
	CHECK_STR(got(current, "", "pi"), "n:3.1415926535897931");
	CHECK_STR(got(current, "sc", "list"), "j:[true]");
	CHECK_STR(got(current, "", "gone"), "ABSENT");
}

/* ---- outbox ---- */


static void test_outbox_ids_increase_and_fetch_in_order(struct store *s)
{
	int64_t a = add(s, "c1", "t/a", "1", 1);
	int64_t b = add(s, "c2", "t/b", "other client", 1);
	int64_t c = add(s, "c1", "t/c", "2", 2);
	CHECK(a > 0 && b > a && c > b);
	CHECK_STR(queued_after(s, "c1", 0, 10), "t/a=1@1;t/c=2@2;");
	CHECK_STR(queued_after(s, "c1", a, 10), "t/c=2@2;");
	CHECK_STR(queued_after(s, "c1", 0, 1), "t/a=1@1;");
	CHECK_INT(outbox_count(s, "c1"), 2);
	CHECK_INT(outbox_count_qos(s, "c1", 2), 1);
}

static void test_outbox_ack_deletes_and_ids_are_not_reused(struct store *s)
{
	int64_t a = add(s, "c1", "t", "x", 1);
	CHECK_INT(outbox_ack(s, a), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(outbox_count(s, "c1"), 0);
	int64_t b = add(s, "c1", "t", "y", 1);
	CHECK(b > a);
}

static bool record_dead(const struct outbox_msg *m, int reason, const char *why, double failed, void *ud)
{
	char *text = ud;
	size_t n = strlen(text);
	(void)failed;
	snprintf(text + n, 2048 - n, "%s=%.*s@%d %d %s;", m->topic, m->payloadlen, (const char *)m->payload,
	         m->qos, reason, why ? why : "");
	return true;
}

static void test_outbox_dead_letter_keeps_the_message_and_reason(struct store *s)
{
	int64_t a = add(s, "c1", "denied/x", "payload", 1);
	CHECK_INT(outbox_dead(s, a, 135, "Not authorized"), 0);
	CHECK_INT(outbox_count(s, "c1"), 0);
	char text[2048] = "";
	CHECK_INT(outbox_dead_letters(s, "c1", 10, record_dead, text), 1);
	CHECK_STR(text, "denied/x=payload@1 135 Not authorized;");
}

static void test_outbox_drop_oldest_and_oldest_time(struct store *s)
{
	CHECK(outbox_oldest(s, "c1") == 0);
	double before = store_now();
	add(s, "c1", "t", "1", 1);
	add(s, "c1", "t", "2", 1);
	double oldest = outbox_oldest(s, "c1");
	CHECK(oldest >= before - 1 && oldest <= store_now() + 1);
	CHECK_INT(outbox_drop_oldest(s, "c1"), 0);
	CHECK_STR(queued_after(s, "c1", 0, 10), "t=2@1;");
}

static void test_outbox_rollback_on_failed_transaction_keeps_committed_rows(struct store *s)
{
	add(s, "c1", "t", "committed", 1);
	CHECK_INT(store_commit(s), 0);
	add(s, "c1", "t", "pending", 1);
	CHECK(store_in_transaction(s));
	CHECK(store_has_urgent(s));
	CHECK_INT(sqlite3_exec(store_db(s), "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(store_commit(s), -1);   /* nothing to commit any more: reported, not hidden */
	CHECK_STR(queued_after(s, "c1", 0, 10), "t=committed@1;");
	int64_t lost = sqlite3_last_insert_rowid(store_db(s));
	int64_t next = add(s, "c1", "t", "after", 1);
	CHECK(next > lost);               /* the rolled-back id is not handed out again */
}

static void test_lazy_writes_wait_urgent_ones_do_not(struct store *s)
{
	int64_t a = add(s, "c1", "t", "x", 1);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(outbox_ack(s, a), 0);
	CHECK(store_in_transaction(s));
	CHECK(!store_has_urgent(s));
	CHECK(!store_commit_due(s));      /* an ack alone may wait */
	add(s, "c1", "t", "y", 1);
	CHECK(store_has_urgent(s));
	CHECK(store_commit_due(s));       /* a new message may not */
	CHECK_INT(store_commit(s), 0);
}

static void test_claims_are_per_client_and_exclusive(struct store *s)
{
	char err[1024];
	CHECK_INT(store_claim(s, "c1", err, sizeof err), 0);
	CHECK_INT(store_claim(s, "c1", err, sizeof err), 0);   /* ours already */
	CHECK_INT(store_claim(s, "c2", err, sizeof err), 0);
	/* another open of the same file behaves like another process: flock is per open file */
	struct store *other = open_store();
	CHECK(other);
	if (!other)
		return;
	int rc = store_claim(other, "c1", err, sizeof err);
	CHECK_INT(rc, -1);
	CHECK(strstr(err, "is used by process") != NULL);
	CHECK(strstr(err, path) != NULL);
	store_release(s, "c1");
	CHECK_INT(store_claim(other, "c1", err, sizeof err), 0);
	store_close(other);
}

static const struct store_case cases[] = {
	STORE_CASE(test_retained_put_then_read, false),
	STORE_CASE(test_retained_upsert_replaces_payload_and_qos, false),
	STORE_CASE(test_retained_empty_payload_deletes, false),
	STORE_CASE(test_retained_binary_payload_kept_exactly, false),
	STORE_CASE(test_retained_hash_matches_all_but_dollar_topics_in_order, false),
	STORE_CASE(test_retained_filters_with_a_literal_prefix, false),
	STORE_CASE(test_retained_clients_are_separate, false),
	STORE_CASE(test_retained_stops_when_fn_returns_false, false),
	STORE_CASE(test_retained_records_the_time, false),
	STORE_CASE(test_retained_null_match_takes_every_row, false),
	STORE_CASE(test_retained_survives_close_and_reopen, true),
	STORE_CASE(test_state_set_get_every_type, false),
	STORE_CASE(test_state_values_are_bytes_and_null_terminated_on_get, false),
	STORE_CASE(test_state_overwrite_and_delete, false),
	STORE_CASE(test_state_refuses_an_unknown_type, false),
	STORE_CASE(test_state_each_in_key_order_per_scope, false),
	STORE_CASE(test_state_survives_close_and_reopen, true),
	STORE_CASE(test_outbox_ids_increase_and_fetch_in_order, false),
	STORE_CASE(test_outbox_ack_deletes_and_ids_are_not_reused, false),
	STORE_CASE(test_outbox_dead_letter_keeps_the_message_and_reason, false),
	STORE_CASE(test_outbox_drop_oldest_and_oldest_time, false),
	STORE_CASE(test_outbox_rollback_on_failed_transaction_keeps_committed_rows, false),
	STORE_CASE(test_lazy_writes_wait_urgent_ones_do_not, false),
	STORE_CASE(test_claims_are_per_client_and_exclusive, true),
};

int main(int argc, char **argv)
{
	return store_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
