/*
 * test_store.c - unit tests of the retained-message cache (store/retained.c)
 * and of the scripts' state (store/state.c), on a store in a temporary file
 * and on a memory store: every case runs once on each ("[file]", "[memory]"),
 * and the cases about reopening a file run on the file store only.
 *
 * The timers cases cover store/timers.c, the due times of durable timers,
 * and the upgrade of a version-1 store to the schema that has them.
 *
 * Filters are matched with bindings/topic.c's topic_matches, the function
 * client:retained() uses, so the wildcard cases check what a script sees.
 *
 * Prints `ok - <name>` or `not ok - <name>` per case, details on `# ` lines,
 * and exits 1 if a case failed. `test_store NAME...` runs only the cases
 * whose name contains a NAME.
 */
#include "bindings/mqlua.h"
#include "store/outbox.h"
#include "store/retained.h"
#include "store/state.h"
#include "store/timers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/check.h"

/* ---- fixtures ---- */

static char dir[64];           /* this case's temporary directory ("" for memory) */
static char path[128];         /* its store file */
static enum store_durability durability;
static struct store *current;  /* the case's open store: main closes it at the end */

/* Opens the case's store (again, for the reopen cases). */
static struct store *open_store(void)
{
	char err[512];
	struct store *s = store_open(path, durability, err, sizeof err);
	if (!s)
		NOTE("store_open(%s): %s", path, err);
	return s;
}

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

static struct state_value val(char type, const char *text)
{
	return (struct state_value){ type, text, strlen(text) };
}

/* state_get of key as "type:text", "ABSENT" or "ERROR". */
static const char *got(struct store *s, const char *scope, const char *key)
{
	static char out[512];
	struct state_value v;
	int rc = state_get(s, scope, key, &v);
	if (rc < 0)
		return "ERROR";
	if (rc == 0)
		return "ABSENT";
	snprintf(out, sizeof out, "%c:%.*s", v.type, (int)v.len, v.data);
	return out;
}

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

/* ---- main ---- */

/* ---- outbox ---- */

/* outbox_fetch of client after id, as "topic=payload@qos;" per message. */
static bool record_msg(const struct outbox_msg *m, void *ud)
{
	char *text = ud;
	size_t n = strlen(text);
	snprintf(text + n, 2048 - n, "%s=%.*s@%d%s;", m->topic, m->payloadlen, (const char *)m->payload,
	         m->qos, m->retain ? "r" : "");
	return true;
}

static const char *queued_after(struct store *s, const char *client, int64_t after, int max)
{
	static char text[2048];
	text[0] = 0;
	return outbox_fetch(s, client, after, max, record_msg, text) < 0 ? "ERROR" : text;
}

static int64_t add(struct store *s, const char *client, const char *topic, const char *payload, int qos)
{
	return outbox_append(s, client, topic, payload, strlen(payload), qos, false, NULL, 0);
}

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

/* The properties' bytes of each fetched message, as "<id-order>:<hex>;" ("-" for none). */
static bool record_props(const struct outbox_msg *m, void *ud)
{
	char *text = ud;
	size_t n = strlen(text);
	if (!m->props)
		n += (size_t)snprintf(text + n, 2048 - n, "-");
	for (int i = 0; i < m->propslen && n < 2040; i++)
		n += (size_t)snprintf(text + n, 2048 - n, "%02x", ((const unsigned char *)m->props)[i]);
	snprintf(text + n, 2048 - n, ";");
	return true;
}

static bool record_dead_props(const struct outbox_msg *m, int reason, const char *why, double failed, void *ud)
{
	(void)reason, (void)why, (void)failed;
	return record_props(m, ud);
}

static void test_outbox_properties_kept_with_the_row_and_its_dead_letter(struct store *s)
{
	static const unsigned char props[] = { 0x02, 0x00, 0x00, 0x00, 0x3c, 0x09, 0x00, 0x02, 0x00, 0xff };
	int64_t a = outbox_append(s, "c1", "t", "x", 1, 1, false, props, sizeof props);
	CHECK(a > 0);
	add(s, "c1", "t", "no properties", 1);
	CHECK_INT(store_commit(s), 0);
	char text[2048] = "";
	CHECK_INT(outbox_fetch(s, "c1", 0, 10, record_props, text), 2);
	CHECK_STR(text, "020000003c09000200ff;-;");
	CHECK_INT(outbox_dead(s, a, 153, "Payload format invalid"), 0);
	text[0] = 0;
	CHECK_INT(outbox_dead_letters(s, "c1", 10, record_dead_props, text), 1);
	CHECK_STR(text, "020000003c09000200ff;");
}

/* A store written by mqlua before properties existed (schema version 1). */
static const char v1_store[] =
	"CREATE TABLE outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, client TEXT NOT NULL, "
	"  topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, "
	"  created REAL NOT NULL);"
	"CREATE INDEX outbox_by_client ON outbox(client, id);"
	"CREATE TABLE dead_letters(id INTEGER PRIMARY KEY, client TEXT NOT NULL, topic TEXT NOT NULL, "
	"  payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL, "
	"  failed REAL NOT NULL, reason INTEGER NOT NULL, reason_text TEXT);"
	"CREATE TABLE retained(client TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, "
	"  qos INTEGER NOT NULL, updated REAL NOT NULL, PRIMARY KEY(client, topic)) WITHOUT ROWID;"
	"CREATE TABLE state(scope TEXT NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, "
	"  value BLOB NOT NULL, PRIMARY KEY(scope, key)) WITHOUT ROWID;"
	"INSERT INTO outbox(client, topic, payload, qos, retain, created) VALUES('c1', 'old/t', 'queued by v1', 1, 0, 1);"
	"PRAGMA user_version = 1;";

/* Replaces the case's store by a file made with sql (then `extra`), opens it as current,
 * and checks that it was brought to the current version with its row kept. */
static void open_old_store(struct store *s, const char *extra)
{
	current = NULL;
	store_close(s);
	char cmd[3 * sizeof path + 32];
	snprintf(cmd, sizeof cmd, "rm -f -- '%s' '%s-wal' '%s-shm'", path, path, path);
	CHECK_INT(system(cmd), 0);
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	int rc = sqlite3_exec(db, v1_store, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, extra, NULL, NULL, NULL);
	sqlite3_close(db);
	CHECK_INT(rc, SQLITE_OK);
	current = open_store();
	CHECK(current);
	CHECK_STR(queued_after(current, "c1", 0, 10), "old/t=queued by v1@1;");
	char text[2048] = "";
	CHECK_INT(outbox_fetch(current, "c1", 0, 10, record_props, text), 1);
	CHECK_STR(text, "-;");
	static const unsigned char props[] = { 0x03, 0x00, 0x01, 'j' };
	CHECK(outbox_append(current, "c1", "new/t", "v2", 2, 1, false, props, sizeof props) > 0);
	CHECK_INT(store_commit(current), 0);
	text[0] = 0;
	CHECK_INT(outbox_fetch(current, "c1", 0, 10, record_props, text), 2);
	CHECK_STR(text, "-;0300016a;");
	sqlite3_stmt *st;
	CHECK_INT(sqlite3_prepare_v2(store_db(current), "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	int version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	CHECK_INT(version, STORE_SCHEMA_VERSION);
}

static void test_a_version_1_store_opens_and_migrates(struct store *s)
{
	open_old_store(s, "");
}

/* README's .dump recipe marks a saved store as version 1 whatever its tables. */
static void test_a_store_marked_version_1_with_version_2_tables_opens(struct store *s)
{
	open_old_store(s, "ALTER TABLE outbox ADD COLUMN properties BLOB;"
	               "ALTER TABLE dead_letters ADD COLUMN properties BLOB;");
}

/* ---- durable timers ---- */

/* timers_get of name as "%.3f", "ABSENT" or "ERROR". */
static const char *due_of(struct store *s, const char *name)
{
	static char out[64];
	double due = 0;
	int rc = timers_get(s, name, &due);
	if (rc <= 0)
		return rc < 0 ? "ERROR" : "ABSENT";
	snprintf(out, sizeof out, "%.3f", due);
	return out;
}

static void test_timers_set_get_replace_delete(struct store *s)
{
	CHECK_STR(due_of(s, "a"), "ABSENT");
	CHECK_INT(timers_set(s, "a", 1795647960.25), 0);
	CHECK(store_has_urgent(s));       /* committed with the iteration's group commit */
	CHECK_INT(timers_set(s, "b", 5), 0);
	CHECK_STR(due_of(s, "a"), "1795647960.250");
	CHECK_INT(timers_set(s, "a", 1795648020.5), 0);
	CHECK_STR(due_of(s, "a"), "1795648020.500");
	CHECK_INT(timers_delete(s, "a"), 0);
	CHECK_INT(timers_delete(s, "a"), 0);   /* deleting what is gone is fine */
	CHECK_STR(due_of(s, "a"), "ABSENT");
	CHECK_STR(due_of(s, "b"), "5.000");
	CHECK_INT(store_commit(s), 0);
}

static void test_timers_survive_close_and_reopen(struct store *s)
{
	CHECK_INT(timers_set(s, "kept", 1795647960.125), 0);
	CHECK_INT(timers_set(s, "fired", 1795647000), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(timers_delete(s, "fired"), 0);
	CHECK_INT(timers_set(s, "uncommitted", 1), 0);
	CHECK_INT(sqlite3_exec(store_db(s), "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);   /* a crash */
	current = NULL;
	store_close(s);
	current = open_store();
	CHECK(current);
	CHECK_STR(due_of(current, "kept"), "1795647960.125");
	CHECK_STR(due_of(current, "fired"), "1795647000.000");   /* the delete was not committed */
	CHECK_STR(due_of(current, "uncommitted"), "ABSENT");
}

static void test_timers_table_added_to_a_version_1_store(struct store *s)
{
	CHECK_INT(state_set(s, "", "kept", &(struct state_value){ 'i', "7", 1 }), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(sqlite3_exec(store_db(s), "DROP TABLE timers; PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	current = NULL;
	store_close(s);
	current = open_store();
	CHECK(current);
	sqlite3_stmt *st;
	CHECK_INT(sqlite3_prepare_v2(store_db(current), "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	int version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	CHECK_INT(version, STORE_SCHEMA_VERSION);
	CHECK_STR(got(current, "", "kept"), "i:7");
	CHECK_INT(timers_set(current, "t", 3), 0);
	CHECK_STR(due_of(current, "t"), "3.000");
	/* README's .dump recipe marks a copy as version 1 even when it has the table */
	CHECK_INT(store_commit(current), 0);
	CHECK_INT(sqlite3_exec(store_db(current), "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	s = current;
	current = NULL;
	store_close(s);
	current = open_store();
	CHECK(current);
	CHECK_STR(due_of(current, "t"), "3.000");
}

/* s contains the text part. */
#define CHECK_HAS(s, part) do { \
	const char *s_ = (s); \
	if (!strstr(s_, (part))) \
		FAIL("%s: expected text containing \"%s\", got \"%s\"", #s, (part), s_); \
} while (0)

/* A damaged header may hold a negative schema version (fuzz_store found one):
 * the store is refused with a message naming the file, and left as it was. */
static void test_a_negative_schema_version_is_refused(struct store *s)
{
	CHECK_INT(state_set(s, "", "kept", &(struct state_value){ 'i', "7", 1 }), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(sqlite3_exec(store_db(s), "PRAGMA user_version = -1325400061", NULL, NULL, NULL), SQLITE_OK);
	current = NULL;
	store_close(s);
	char err[512] = "";
	struct store *again = store_open(path, durability, err, sizeof err);
	if (again)
		store_close(again);
	CHECK(!again);
	CHECK_HAS(err, path);
	CHECK_HAS(err, "damaged or not an mqlua store (schema version -1325400061); not touched");
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	int version = 0;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	CHECK_INT(version, -1325400061);
}

#define CASE(fn, file_only) { #fn, fn, file_only }
static const struct {
	const char *name;
	void (*fn)(struct store *s);
	bool file_only;          /* the case closes s and reopens the file (as current) */
} cases[] = {
	CASE(test_retained_put_then_read, false),
	CASE(test_retained_upsert_replaces_payload_and_qos, false),
	CASE(test_retained_empty_payload_deletes, false),
	CASE(test_retained_binary_payload_kept_exactly, false),
	CASE(test_retained_hash_matches_all_but_dollar_topics_in_order, false),
	CASE(test_retained_filters_with_a_literal_prefix, false),
	CASE(test_retained_clients_are_separate, false),
	CASE(test_retained_stops_when_fn_returns_false, false),
	CASE(test_retained_records_the_time, false),
	CASE(test_retained_null_match_takes_every_row, false),
	CASE(test_retained_survives_close_and_reopen, true),
	CASE(test_a_negative_schema_version_is_refused, true),
	CASE(test_state_set_get_every_type, false),
	CASE(test_state_values_are_bytes_and_null_terminated_on_get, false),
	CASE(test_state_overwrite_and_delete, false),
	CASE(test_state_refuses_an_unknown_type, false),
	CASE(test_state_each_in_key_order_per_scope, false),
	CASE(test_state_survives_close_and_reopen, true),
	CASE(test_outbox_ids_increase_and_fetch_in_order, false),
	CASE(test_outbox_ack_deletes_and_ids_are_not_reused, false),
	CASE(test_outbox_properties_kept_with_the_row_and_its_dead_letter, false),
	CASE(test_a_version_1_store_opens_and_migrates, true),
	CASE(test_a_store_marked_version_1_with_version_2_tables_opens, true),
	CASE(test_outbox_dead_letter_keeps_the_message_and_reason, false),
	CASE(test_outbox_drop_oldest_and_oldest_time, false),
	CASE(test_outbox_rollback_on_failed_transaction_keeps_committed_rows, false),
	CASE(test_lazy_writes_wait_urgent_ones_do_not, false),
	CASE(test_claims_are_per_client_and_exclusive, true),
	CASE(test_timers_set_get_replace_delete, false),
	CASE(test_timers_survive_close_and_reopen, true),
	CASE(test_timers_table_added_to_a_version_1_store, true),
};


int main(int argc, char **argv)
{
	int failed = 0, ran = 0;
	static const enum store_durability kinds[] = { STORE_NORMAL, STORE_MEMORY };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (int kind = 0; kind < 2; kind++) {
			char name[200];
			snprintf(name, sizeof name, "%s [%s]", cases[i].name, kind == 0 ? "file" : "memory");
			if (!selected(name, argc, argv) || (cases[i].file_only && kinds[kind] == STORE_MEMORY))
				continue;
			ran++;
			case_failed = false;
			details_len = 0;
			details[0] = 0;
			durability = kinds[kind];
			dir[0] = 0;
			snprintf(path, sizeof path, ":memory:");
			if (durability != STORE_MEMORY) {
				snprintf(dir, sizeof dir, "/tmp/test_store.XXXXXX");
				if (!mkdtemp(dir)) {
					NOTE("mkdtemp failed");
					dir[0] = 0;
				}
				snprintf(path, sizeof path, "%s/sub/store.db", dir);
			}
			current = case_failed ? NULL : open_store();
			if (current) {
				cases[i].fn(current);
				store_close(current);
			}
			if (dir[0]) {
				char cmd[128];
				snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
				if (system(cmd) != 0)
					NOTE("could not remove %s", dir);
			}
			printf("%s - %s\n", case_failed ? "not ok" : "ok", name);
			if (case_failed) {
				failed++;
				for (char *line = strtok(details, "\n"); line; line = strtok(NULL, "\n"))
					printf("# %s\n", line);
			}
			fflush(stdout);
		}
	}
	if (failed)
		printf("# %d of %d cases failed\n", failed, ran);
	return failed || !ran ? 1 : 0;
}
