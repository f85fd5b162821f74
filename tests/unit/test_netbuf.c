/*
 * test_netbuf.c - runtime/netbuf.c over real socket pairs: chunked reads of a
 * socket being drained (a read() that counts its calls), held writes sent
 * together, a full socket, close, and libmosquitto's wake-up bytes.
 */
#include "check.h"
#include "runtime/netbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int calls;

static ssize_t counted_read(int fd, void *buf, size_t n)
{
	calls++;
	return read(fd, buf, n);
}

static int sv[2];

/* A non-blocking socket pair with `len` bytes 0,1,2... written to sv[1]. */
static void pair_with(size_t len)
{
	calls = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	unsigned char *data = malloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 7);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(sv[1], data + off, len - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	free(data);
}

static void unpair(void)
{
	netbuf_close(sv[0]);
	close(sv[0]);
	close(sv[1]);
}

static void test_small_reads_share_one_call(void)
{
	pair_with(1000);
	unsigned long long before = netbuf_socket_reads;
	int prev = netbuf_begin(sv[0]);
	unsigned char b[600];
	CHECK_INT(netbuf_read(sv[0], b, 1, counted_read), 1);
	CHECK_INT(b[0], 0);
	CHECK_INT(netbuf_read(sv[0], b, 1, counted_read), 1);
	CHECK_INT(b[0], 7);
	CHECK_INT(calls, 1);
	CHECK_INT(netbuf_pending(sv[0]), 998);
	CHECK_INT(netbuf_read(sv[0], b, 600, counted_read), 600);
	CHECK_INT(b[0], (2 * 7) & 0xff);
	/* a short read: only what is buffered, no call */
	CHECK_INT(netbuf_read(sv[0], b, 600, counted_read), 398);
	CHECK_INT(b[397], (999 * 7) & 0xff);
	CHECK_INT(calls, 1);
	CHECK_INT(netbuf_socket_reads - before, 1);
	/* empty: the next read goes to the socket and says EAGAIN as read() does */
	errno = 0;
	CHECK_INT(netbuf_read(sv[0], b, 1, counted_read), -1);
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
	netbuf_end(sv[0], prev);
	CHECK_INT(netbuf_pending(sv[0]), 0);
	unpair();
}

static void test_bytes_left_after_end_are_served_first(void)
{
	pair_with(100);
	int prev = netbuf_begin(sv[0]);
	unsigned char b[10];
	CHECK_INT(netbuf_read(sv[0], b, 10, counted_read), 10);
	netbuf_end(sv[0], prev);
	/* no longer filling, but the 90 bytes read from the socket come first */
	CHECK_INT(netbuf_pending(sv[0]), 90);
	CHECK_INT(netbuf_read(sv[0], b, 10, counted_read), 10);
	CHECK_INT(b[0], 70);
	CHECK_INT(calls, 1);
	write(sv[1], "z", 1);
	unsigned char rest[100];
	CHECK_INT(netbuf_read(sv[0], rest, sizeof rest, counted_read), 80);
	/* empty and not draining: straight to the socket */
	CHECK_INT(netbuf_read(sv[0], rest, sizeof rest, counted_read), 1);
	CHECK_INT(rest[0], 'z');
	CHECK_INT(calls, 2);
	unpair();
}

static void test_other_descriptors_pass_through(void)
{
	pair_with(50);
	int other[2];
	if (pipe(other) != 0)
		abort();
	write(other[1], "abc", 3);
	int prev = netbuf_begin(sv[0]);
	char b[8];
	CHECK_INT(netbuf_read(other[0], b, 1, counted_read), 1);
	CHECK_INT(netbuf_pending(other[0]), 0);
	CHECK_INT(netbuf_read(other[0], b, 8, counted_read), 2);
	CHECK(memcmp(b, "bc", 2) == 0);
	netbuf_end(sv[0], prev);
	close(other[0]);
	close(other[1]);
	unpair();
}

static void test_large_reads_go_straight_to_the_caller(void)
{
	size_t len = 3 * NETBUF_SIZE;
	pair_with(0);
	int prev = netbuf_begin(sv[0]);
	unsigned char *big = malloc(len);
	for (size_t i = 0; i < 10; i++)
		big[i] = (unsigned char)i;
	write(sv[1], big, 10);
	CHECK_INT(netbuf_read(sv[0], big, NETBUF_SIZE, counted_read), 10);
	CHECK_INT(netbuf_pending(sv[0]), 0);
	CHECK_INT(big[9], 9);
	netbuf_end(sv[0], prev);
	free(big);
	unpair();
}

static void test_end_of_stream_and_close(void)
{
	pair_with(5);
	int prev = netbuf_begin(sv[0]);
	char b[2];
	CHECK_INT(netbuf_read(sv[0], b, 2, counted_read), 2);
	CHECK_INT(netbuf_pending(sv[0]), 3);
	/* closing the descriptor drops what it had: a new file with the same
	 * number must not see those bytes */
	netbuf_close(sv[0]);
	CHECK_INT(netbuf_pending(sv[0]), 0);
	netbuf_end(sv[0], prev);
	close(sv[0]);
	close(sv[1]);

	pair_with(0);
	close(sv[1]);
	prev = netbuf_begin(sv[0]);
	CHECK_INT(netbuf_read(sv[0], b, 1, counted_read), 0);
	netbuf_end(sv[0], prev);
	netbuf_close(sv[0]);
	close(sv[0]);
}

static void test_nested_drains(void)
{
	pair_with(20);
	int outer = sv[0], outer_peer = sv[1];
	int prev = netbuf_begin(outer);
	char b[4];
	CHECK_INT(netbuf_read(outer, b, 4, counted_read), 4);
	pair_with(30);
	int inner_prev = netbuf_begin(sv[0]);
	CHECK_INT(inner_prev, outer);
	CHECK_INT(netbuf_read(sv[0], b, 4, counted_read), 4);
	CHECK_INT(netbuf_pending(sv[0]), 26);
	CHECK_INT(netbuf_read(sv[0], b, 4, counted_read), 4);
	CHECK_INT(netbuf_read(sv[0], (char[32]){ 0 }, 32, counted_read), 22);
	netbuf_end(sv[0], inner_prev);
	unpair();
	/* the outer drain goes on where it was */
	CHECK_INT(netbuf_pending(outer), 16);
	CHECK_INT(netbuf_read(outer, b, 4, counted_read), 4);
	CHECK_INT(b[0], (4 * 7) & 0xff);
	netbuf_end(outer, prev);
	netbuf_close(outer);
	close(outer);
	close(outer_peer);
}

/* ---- writes ---- */

static int writes;

static ssize_t counted_write(int fd, const void *buf, size_t n)
{
	writes++;
	return write(fd, buf, n);
}

/* Reads what arrived on sv[1] so far. */
static size_t drain_peer(char *out, size_t cap)
{
	size_t got = 0;
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	for (;;) {
		ssize_t r = read(sv[1], out + got, cap - got);
		if (r <= 0)
			return got;
		got += (size_t)r;
	}
}

static void test_writes_held_in_the_loop_go_out_together(void)
{
	pair_with(0);
	writes = 0;
	netbuf_hold(sv[0]);
	unsigned long long before = netbuf_socket_writes;
	netbuf_loop_enter();
	CHECK_INT(netbuf_write(sv[0], "abc", 3, counted_write), 3);
	CHECK_INT(netbuf_write(sv[0], "defg", 4, counted_write), 4);
	CHECK_INT(writes, 0);
	CHECK_INT(netbuf_out_pending(sv[0]), 7);
	char got[64];
	CHECK_INT(drain_peer(got, sizeof got), 0);
	/* before the loop sleeps */
	CHECK(!netbuf_flush_all());
	CHECK_INT(netbuf_out_pending(sv[0]), 0);
	CHECK_INT(netbuf_socket_writes - before, 1);
	CHECK_INT(drain_peer(got, sizeof got), 7);
	CHECK(memcmp(got, "abcdefg", 7) == 0);
	netbuf_loop_leave();
	unpair();
}

static void test_writes_outside_the_loop_go_straight_out(void)
{
	pair_with(0);
	writes = 0;
	netbuf_hold(sv[0]);
	CHECK_INT(netbuf_write(sv[0], "xy", 2, counted_write), 2);
	CHECK_INT(writes, 1);
	CHECK_INT(netbuf_out_pending(sv[0]), 0);
	/* leaving the outermost loop run sends what it held */
	netbuf_loop_enter();
	netbuf_loop_enter();
	CHECK_INT(netbuf_write(sv[0], "z", 1, counted_write), 1);
	netbuf_loop_leave();
	CHECK_INT(netbuf_out_pending(sv[0]), 1);
	netbuf_loop_leave();
	CHECK_INT(netbuf_out_pending(sv[0]), 0);
	char got[8];
	CHECK_INT(drain_peer(got, sizeof got), 3);
	CHECK(memcmp(got, "xyz", 3) == 0);
	/* a socket nobody asked to hold is never held */
	int other[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, other) != 0)
		abort();
	netbuf_loop_enter();
	CHECK_INT(netbuf_write(other[0], "q", 1, counted_write), 1);
	CHECK_INT(writes, 2);
	netbuf_loop_leave();
	close(other[0]);
	close(other[1]);
	unpair();
}

static void test_a_full_buffer_is_sent_first_and_order_is_kept(void)
{
	pair_with(0);
	netbuf_hold(sv[0]);
	netbuf_loop_enter();
	char chunk[1000];
	size_t total = 0;
	for (int i = 0; i < 40; i++) {   /* 40,000 bytes: more than NETBUF_OUT */
		memset(chunk, 'a' + i % 26, sizeof chunk);
		CHECK_INT(netbuf_write(sv[0], chunk, sizeof chunk, counted_write), sizeof chunk);
		total += sizeof chunk;
		CHECK(netbuf_out_pending(sv[0]) <= NETBUF_OUT);
	}
	CHECK(!netbuf_flush_all());
	netbuf_loop_leave();
	static char got[50000];
	CHECK_INT(drain_peer(got, sizeof got), total);
	for (size_t i = 0; i < total; i++)
		if (got[i] != 'a' + (char)((i / 1000) % 26))
			FAIL("byte %zu is %c", i, got[i]);
	unpair();
}

static void test_a_full_socket_keeps_the_rest_and_says_eagain(void)
{
	pair_with(0);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	netbuf_hold(sv[0]);
	netbuf_loop_enter();
	char chunk[1000];
	memset(chunk, 'k', sizeof chunk);
	size_t accepted = 0;
	ssize_t r = 0;
	for (int i = 0; i < 10000 && r >= 0; i++) {
		r = netbuf_write(sv[0], chunk, sizeof chunk, counted_write);
		if (r > 0)
			accepted += (size_t)r;
	}
	CHECK_INT(r, -1);
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
	CHECK(netbuf_out_pending(sv[0]) > 0);
	CHECK(netbuf_flush_all());   /* still held: poll for room */
	/* the peer reads: everything accepted arrives, once */
	static char got[20000000];
	size_t n = 0;
	for (int tries = 0; tries < 1000 && n < accepted; tries++) {
		n += drain_peer(got + n, sizeof got - n);
		netbuf_flush(sv[0]);
	}
	CHECK_INT(n, accepted);
	CHECK_INT(netbuf_out_pending(sv[0]), 0);
	netbuf_loop_leave();
	unpair();
}

static void test_close_sends_what_is_held(void)
{
	pair_with(0);
	netbuf_hold(sv[0]);
	netbuf_loop_enter();
	CHECK_INT(netbuf_write(sv[0], "bye", 3, counted_write), 3);
	netbuf_close(sv[0]);   /* libmosquitto closes right after writing DISCONNECT */
	close(sv[0]);
	netbuf_loop_leave();
	char got[8];
	CHECK_INT(drain_peer(got, sizeof got), 3);
	CHECK(memcmp(got, "bye", 3) == 0);
	close(sv[1]);
}

static void test_wakeup_bytes_are_dropped(void)
{
	pair_with(0);
	writes = 0;
	unsigned long long before = netbuf_wakeups_dropped;
	netbuf_mark_wakeup(sv[1]);
	CHECK_INT(netbuf_write(sv[1], "\0", 1, counted_write), 1);
	CHECK_INT(writes, 0);
	CHECK_INT(netbuf_wakeups_dropped - before, 1);
	char b[4];
	CHECK_INT(read(sv[0], b, sizeof b), -1);
	/* closing forgets the mark: the number may come back as another file */
	netbuf_close(sv[1]);
	CHECK_INT(netbuf_write(sv[1], "\0", 1, counted_write), 1);
	CHECK_INT(writes, 1);
	unpair();
}

static const struct check_case cases[] = {
	CHECK_CASE(test_small_reads_share_one_call),
	CHECK_CASE(test_bytes_left_after_end_are_served_first),
	CHECK_CASE(test_other_descriptors_pass_through),
	CHECK_CASE(test_large_reads_go_straight_to_the_caller),
	CHECK_CASE(test_end_of_stream_and_close),
	CHECK_CASE(test_nested_drains),
	CHECK_CASE(test_writes_held_in_the_loop_go_out_together),
	CHECK_CASE(test_writes_outside_the_loop_go_straight_out),
	CHECK_CASE(test_a_full_buffer_is_sent_first_and_order_is_kept),
	CHECK_CASE(test_a_full_socket_keeps_the_rest_and_says_eagain),
	CHECK_CASE(test_close_sends_what_is_held),
	CHECK_CASE(test_wakeup_bytes_are_dropped),
};

int main(int argc, char **argv)
{
	return check_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
