/*
 * ref_client.c - the reference side of the mqlua benchmarks.
 *
 * A plain, single-threaded C client on libmosquitto, written the way a C
 * programmer would write it: default library options, callbacks, and
 * mosquitto_loop() in a simple loop. tests/bench/run times it against the
 * same work written in Lua for mqlua (recv.lua, pub.lua, pingpong.lua here); both print the
 * same result lines so the runner can parse either.
 *
 *   ref_client recv     HOST PORT TOPIC COUNT QOS CLIENT_ID
 *   ref_client pub      HOST PORT TOPIC COUNT QOS PAYLOAD_BYTES
 *   ref_client session  HOST PORT TOPIC QOS CLIENT_ID
 *   ref_client pingpong HOST PORT N
 *   ref_client echo     HOST PORT
 *   ref_client idle     HOST PORT TOPIC
 *   ref_client retained HOST PORT FILTER COUNT
 *   ref_client fill     HOST PORT PREFIX COUNT PAYLOAD_BYTES
 *   ref_client startup  N PROGRAM [ARG...]
 *   ref_client noop
 *
 * Result lines: "recv COUNT SECONDS RATE", "pub COUNT SECONDS RATE",
 * "pingpong N P50_US P99_US", "rss KB" (idle: connected and subscribed to
 * TOPIC; retained: holding a copy of the COUNT retained messages FILTER
 * brought), "startup N P50_US" (the median wall time of N runs of PROGRAM,
 * fork to exit). fill publishes COUNT retained QoS 0 messages to
 * PREFIX/0 ... PREFIX/COUNT-1; noop is the trivial C program startup is
 * compared with. Exit 0 on success, 2 on a timeout (no progress for
 * IDLE_TIMEOUT seconds), 1 on any other failure.
 */
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#define IDLE_TIMEOUT 10.0
#define KEEPALIVE 60
#define PING_TOPIC "bench/ping"
#define PONG_TOPIC "bench/pong"
#define STOP_PAYLOAD "stop"

/* Everything the callbacks share with the mode functions. */
struct bench {
	const char *topic;
	int qos;
	long count;          /* messages to receive / publish / round trips */
	long done;           /* received, acknowledged, or round trips completed */
	bool connected;      /* CONNACK accepted */
	bool subscribed;     /* SUBACK received */
	bool finished;       /* the mode's work is complete */
	int connack_rc;
	double first;        /* time of the first counted event */
	double last;         /* time of the last counted event */
	double progress;     /* time of the last event of any kind, for the idle timeout */
	double sent_at;      /* pingpong: time the current ping was published */
	double *rtts;        /* pingpong: round-trip times in seconds */
	struct mosquitto_message *held;   /* retained: the copies kept */
	char *payload;
	int payload_len;
};

/* Monotonic time in seconds. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

_Noreturn static void usage(void)
{
	fprintf(stderr,
		"usage: ref_client recv HOST PORT TOPIC COUNT QOS CLIENT_ID\n"
		"       ref_client pub HOST PORT TOPIC COUNT QOS PAYLOAD_BYTES\n"
		"       ref_client session HOST PORT TOPIC QOS CLIENT_ID\n"
		"       ref_client pingpong HOST PORT N\n"
		"       ref_client echo HOST PORT\n"
		"       ref_client idle HOST PORT TOPIC\n"
		"       ref_client retained HOST PORT FILTER COUNT\n"
		"       ref_client fill HOST PORT PREFIX COUNT PAYLOAD_BYTES\n"
		"       ref_client startup N PROGRAM [ARG...]\n"
		"       ref_client noop\n");
	exit(1);
}

/* Parses a non-negative decimal argument or exits with a message naming it. */
static long parse_count(const char *name, const char *text)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || *end || end == text || v < 0) {
		fprintf(stderr, "ref_client: bad %s '%s'\n", name, text);
		exit(1);
	}
	return v;
}

static int parse_qos(const char *text)
{
	long q = parse_count("QOS", text);
	if (q > 2) {
		fprintf(stderr, "ref_client: bad QOS '%s'\n", text);
		exit(1);
	}
	return (int)q;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct bench *b = obj;
	b->connack_rc = rc;
	b->connected = (rc == 0);
	b->progress = now();
	if (rc == 0 && b->topic)
		mosquitto_subscribe(mosq, NULL, b->topic, b->qos);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
			 const int *granted_qos)
{
	struct bench *b = obj;
	b->subscribed = true;
	b->progress = now();
}

/* recv: counts messages on the subscription until b->count arrived. */
static void on_message_count(struct mosquitto *mosq, void *obj,
			     const struct mosquitto_message *msg)
{
	struct bench *b = obj;
	double t = now();
	if (b->done == 0)
		b->first = t;
	b->done++;
	b->last = t;
	b->progress = t;
	if (b->done == b->count)
		b->finished = true;
}

/* pub: counts acknowledgements (QoS 1/2) or completed writes (QoS 0). */
static void on_publish_count(struct mosquitto *mosq, void *obj, int mid)
{
	struct bench *b = obj;
	double t = now();
	b->done++;
	b->last = t;
	b->progress = t;
	if (b->done == b->count)
		b->finished = true;
}

/* Creates a client with the callbacks every mode uses, and connects it. */
static struct mosquitto *connect_client(const char *id, bool clean, struct bench *b,
					const char *host, int port)
{
	struct mosquitto *mosq = mosquitto_new(id, clean, b);
	if (!mosq) {
		perror("ref_client: mosquitto_new");
		exit(1);
	}
	mosquitto_connect_callback_set(mosq, on_connect);
	mosquitto_subscribe_callback_set(mosq, on_subscribe);
	b->progress = now();
	int rc = mosquitto_connect(mosq, host, port, KEEPALIVE);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "ref_client: connect %s:%d: %s\n", host, port,
			rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		exit(1);
	}
	return mosq;
}

/*
 * Runs the network loop until *flag is true. Exits 2 when nothing happened
 * for IDLE_TIMEOUT seconds, 1 when the connection is refused or lost.
 */
static void run_until(struct mosquitto *mosq, struct bench *b, const bool *flag,
		      const char *what)
{
	while (!*flag) {
		int rc = mosquitto_loop(mosq, 100, 1);
		if (b->connack_rc > 0) {
			fprintf(stderr, "ref_client: connection refused: %s\n",
				mosquitto_connack_string(b->connack_rc));
			exit(1);
		}
		if (rc != MOSQ_ERR_SUCCESS && !*flag) {
			fprintf(stderr, "ref_client: %s: %s (%ld of %ld done)\n", what,
				rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
				b->done, b->count);
			exit(1);
		}
		if (now() - b->progress > IDLE_TIMEOUT) {
			fprintf(stderr, "ref_client: %s: timeout, nothing for %.0f s (%ld of %ld done)\n",
				what, IDLE_TIMEOUT, b->done, b->count);
			exit(2);
		}
	}
}

/* Disconnects cleanly, letting the loop flush the DISCONNECT packet. */
static void finish(struct mosquitto *mosq)
{
	mosquitto_disconnect(mosq);
	for (int i = 0; i < 10 && mosquitto_loop(mosq, 10, 1) == MOSQ_ERR_SUCCESS; i++)
		;
	mosquitto_destroy(mosq);
}

static void print_rate(const char *mode, long count, double seconds)
{
	printf("%s %ld %.6f %.0f\n", mode, count, seconds,
	       seconds > 0 ? (double)count / seconds : 0.0);
	fflush(stdout);
}

/* session: registers a persistent session subscribed to TOPIC, then leaves. */
static int mode_session(const char *host, int port, const char *topic, int qos, const char *id)
{
	struct bench b = { .topic = topic, .qos = qos };
	struct mosquitto *mosq = connect_client(id, false, &b, host, port);
	run_until(mosq, &b, &b.subscribed, "session");
	finish(mosq);
	return 0;
}

/* recv: drains COUNT messages from a persistent session; times first to last. */
static int mode_recv(const char *host, int port, const char *topic, long count, int qos,
		     const char *id)
{
	struct bench b = { .topic = topic, .qos = qos, .count = count, .finished = count == 0 };
	struct mosquitto *mosq = connect_client(id, false, &b, host, port);
	mosquitto_message_callback_set(mosq, on_message_count);
	run_until(mosq, &b, &b.finished, "recv");
	print_rate("recv", b.done, b.last - b.first);
	finish(mosq);
	return 0;
}

/*
 * pub: publishes COUNT messages back to back, then loops until every one is
 * acknowledged (QoS 1/2) or written to the socket (QoS 0). The clock starts
 * just before the first publish, after CONNACK. Messages beyond the
 * library's inflight window wait in libmosquitto's own queue.
 */
static int mode_pub(const char *host, int port, const char *topic, long count, int qos,
		    long payload_bytes)
{
	struct bench b = { .count = count, .finished = count == 0 };
	b.payload = malloc((size_t)payload_bytes + 1);
	if (!b.payload) {
		perror("ref_client: malloc");
		return 1;
	}
	memset(b.payload, 'x', (size_t)payload_bytes);
	b.payload_len = (int)payload_bytes;

	struct mosquitto *mosq = connect_client(NULL, true, &b, host, port);
	mosquitto_publish_callback_set(mosq, on_publish_count);
	run_until(mosq, &b, &b.connected, "pub: waiting for CONNACK");

	double start = now();
	for (long i = 0; i < count; i++) {
		int rc = mosquitto_publish(mosq, NULL, topic, b.payload_len, b.payload, qos, false);
		if (rc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "ref_client: publish %ld: %s\n", i,
				rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
			return 1;
		}
	}
	b.progress = now();
	run_until(mosq, &b, &b.finished, "pub");
	print_rate("pub", b.done, (count ? b.last : now()) - start);
	finish(mosq);
	free(b.payload);
	return 0;
}

/* pingpong: on each pong, record the round trip and send the next ping. */
static void on_message_pong(struct mosquitto *mosq, void *obj,
			    const struct mosquitto_message *msg)
{
	struct bench *b = obj;
	double t = now();
	b->rtts[b->done++] = t - b->sent_at;
	b->progress = t;
	if (b->done == b->count) {
		b->finished = true;
		return;
	}
	b->sent_at = now();
	mosquitto_publish(mosq, NULL, PING_TOPIC, b->payload_len, b->payload, 0, false);
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, p in (0, 100]. */
static double percentile(const double *sorted, long n, double p)
{
	long rank = (long)((p / 100.0) * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

/* pingpong: N QoS 0 round trips through an echo peer; prints p50 and p99. */
static int mode_pingpong(const char *host, int port, long n)
{
	char payload[64];
	memset(payload, 'p', sizeof payload);
	struct bench b = { .topic = PONG_TOPIC, .qos = 0, .count = n, .finished = n == 0,
			   .payload = payload, .payload_len = (int)sizeof payload };
	b.rtts = calloc((size_t)n + 1, sizeof *b.rtts);
	if (!b.rtts) {
		perror("ref_client: calloc");
		return 1;
	}
	struct mosquitto *mosq = connect_client(NULL, true, &b, host, port);
	mosquitto_message_callback_set(mosq, on_message_pong);
	run_until(mosq, &b, &b.subscribed, "pingpong: waiting for SUBACK");
	if (n > 0) {
		b.sent_at = now();
		mosquitto_publish(mosq, NULL, PING_TOPIC, b.payload_len, b.payload, 0, false);
	}
	run_until(mosq, &b, &b.finished, "pingpong");
	qsort(b.rtts, (size_t)n, sizeof *b.rtts, compare_double);
	printf("pingpong %ld %.1f %.1f\n", n, n ? percentile(b.rtts, n, 50) * 1e6 : 0.0,
	       n ? percentile(b.rtts, n, 99) * 1e6 : 0.0);
	fflush(stdout);
	finish(mosq);
	free(b.rtts);
	return 0;
}

/* echo: republishes every ping as a pong; a "stop" ping ends it. */
static void on_message_echo(struct mosquitto *mosq, void *obj,
			    const struct mosquitto_message *msg)
{
	struct bench *b = obj;
	b->progress = now();
	if (msg->payloadlen == (int)strlen(STOP_PAYLOAD) &&
	    memcmp(msg->payload, STOP_PAYLOAD, strlen(STOP_PAYLOAD)) == 0) {
		b->finished = true;
		return;
	}
	mosquitto_publish(mosq, NULL, PONG_TOPIC, msg->payloadlen, msg->payload, 0, false);
}

/*
 * echo: runs until a "stop" ping arrives or the broker goes away; it is idle
 * between benchmark rounds, so it has no timeout. One echo serves any number
 * of pingpong runs, one at a time.
 */
static int mode_echo(const char *host, int port)
{
	struct bench b = { .topic = PING_TOPIC, .qos = 0 };
	struct mosquitto *mosq = connect_client(NULL, true, &b, host, port);
	mosquitto_message_callback_set(mosq, on_message_echo);
	run_until(mosq, &b, &b.subscribed, "echo: waiting for SUBACK");
	printf("echo ready\n");
	fflush(stdout);
	while (!b.finished) {
		int rc = mosquitto_loop(mosq, 1000, 1);
		if (rc != MOSQ_ERR_SUCCESS && !b.finished) {
			fprintf(stderr, "ref_client: echo: %s\n", mosquitto_strerror(rc));
			return 1;
		}
	}
	finish(mosq);
	return 0;
}

/* The resident set size of this process in KB (VmRSS), -1 if unknown. */
static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* idle: connected and subscribed, then half a second of nothing; prints its RSS. */
static int mode_idle(const char *host, int port, const char *topic)
{
	struct bench b = { .topic = topic, .qos = 1 };
	struct mosquitto *mosq = connect_client(NULL, true, &b, host, port);
	run_until(mosq, &b, &b.subscribed, "idle: waiting for SUBACK");
	double until = now() + 0.5;
	while (now() < until)
		mosquitto_loop(mosq, 100, 1);
	printf("rss %ld\n", rss_kb());
	fflush(stdout);
	finish(mosq);
	return 0;
}

/* retained: keeps a copy of every message until b->count are held. */
static void on_message_hold(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct bench *b = obj;
	b->progress = now();
	if (b->done < b->count && mosquitto_message_copy(&b->held[b->done], msg) == MOSQ_ERR_SUCCESS)
		b->done++;
	b->finished = b->done == b->count;
}

/* retained: subscribes to FILTER, holds the COUNT retained messages it brings, prints its RSS. */
static int mode_retained(const char *host, int port, const char *filter, long count)
{
	struct bench b = { .topic = filter, .qos = 0, .count = count, .finished = count == 0 };
	b.held = calloc((size_t)count + 1, sizeof *b.held);
	if (!b.held) {
		perror("ref_client: calloc");
		return 1;
	}
	struct mosquitto *mosq = connect_client(NULL, true, &b, host, port);
	mosquitto_message_callback_set(mosq, on_message_hold);
	run_until(mosq, &b, &b.finished, "retained");
	printf("rss %ld\n", rss_kb());
	fflush(stdout);
	finish(mosq);
	for (long i = 0; i < b.done; i++) {
		free(b.held[i].topic);
		free(b.held[i].payload);
	}
	free(b.held);
	return 0;
}

/* fill: publishes COUNT retained QoS 0 messages to PREFIX/0..COUNT-1, until all are written. */
static int mode_fill(const char *host, int port, const char *prefix, long count, long payload_bytes)
{
	struct bench b = { .count = count, .finished = count == 0 };
	char payload[1024], topic[512];
	if (payload_bytes > (long)sizeof payload) {
		fprintf(stderr, "ref_client: fill: at most %zu payload bytes\n", sizeof payload);
		return 1;
	}
	memset(payload, 'r', sizeof payload);
	struct mosquitto *mosq = connect_client(NULL, true, &b, host, port);
	mosquitto_publish_callback_set(mosq, on_publish_count);
	run_until(mosq, &b, &b.connected, "fill: waiting for CONNACK");
	for (long i = 0; i < count; i++) {
		snprintf(topic, sizeof topic, "%s/%ld", prefix, i);
		mosquitto_publish(mosq, NULL, topic, (int)payload_bytes, payload, 0, true);
	}
	b.progress = now();
	run_until(mosq, &b, &b.finished, "fill");
	finish(mosq);
	return 0;
}

/* startup: runs argv[0..] n times, stdout and stderr to /dev/null; prints the median wall time. */
static int mode_startup(long n, char **argv)
{
	double *t = calloc((size_t)n + 1, sizeof *t);
	if (!t || n < 1) {
		fprintf(stderr, "ref_client: startup: bad N\n");
		return 1;
	}
	for (long i = 0; i < n; i++) {
		double start = now();
		pid_t pid = fork();
		if (pid == 0) {
			if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
				_exit(126);
			execvp(argv[0], argv);
			_exit(127);
		}
		int status;
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "ref_client: startup: %s failed\n", argv[0]);
			return 1;
		}
		t[i] = now() - start;
	}
	qsort(t, (size_t)n, sizeof *t, compare_double);
	printf("startup %ld %.0f\n", n, percentile(t, n, 50) * 1e6);
	fflush(stdout);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "noop") == 0)
		return 0;
	if (argc >= 4 && strcmp(argv[1], "startup") == 0)
		return mode_startup(parse_count("N", argv[2]), argv + 3);
	if (argc < 4)
		usage();
	const char *mode = argv[1], *host = argv[2];
	int port = (int)parse_count("PORT", argv[3]);

	mosquitto_lib_init();
	int rc;
	if (strcmp(mode, "recv") == 0 && argc == 8)
		rc = mode_recv(host, port, argv[4], parse_count("COUNT", argv[5]),
			       parse_qos(argv[6]), argv[7]);
	else if (strcmp(mode, "pub") == 0 && argc == 8)
		rc = mode_pub(host, port, argv[4], parse_count("COUNT", argv[5]),
			      parse_qos(argv[6]), parse_count("PAYLOAD_BYTES", argv[7]));
	else if (strcmp(mode, "session") == 0 && argc == 7)
		rc = mode_session(host, port, argv[4], parse_qos(argv[5]), argv[6]);
	else if (strcmp(mode, "pingpong") == 0 && argc == 5)
		rc = mode_pingpong(host, port, parse_count("N", argv[4]));
	else if (strcmp(mode, "echo") == 0 && argc == 4)
		rc = mode_echo(host, port);
	else if (strcmp(mode, "idle") == 0 && argc == 5)
		rc = mode_idle(host, port, argv[4]);
	else if (strcmp(mode, "retained") == 0 && argc == 6)
		rc = mode_retained(host, port, argv[4], parse_count("COUNT", argv[5]));
	else if (strcmp(mode, "fill") == 0 && argc == 7)
		rc = mode_fill(host, port, argv[4], parse_count("COUNT", argv[5]), parse_count("PAYLOAD_BYTES", argv[6]));
	else
		usage();
	mosquitto_lib_cleanup();
	return rc;
}
