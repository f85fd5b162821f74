/*
 * test_netbuf.c - runtime/netbuf.c: chunked reads of a socket being drained,
 * over a real socket pair, with a read() that counts its calls.
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

static const struct check_case cases[] = {
	CHECK_CASE(test_small_reads_share_one_call),
	CHECK_CASE(test_bytes_left_after_end_are_served_first),
	CHECK_CASE(test_other_descriptors_pass_through),
	CHECK_CASE(test_large_reads_go_straight_to_the_caller),
	CHECK_CASE(test_end_of_stream_and_close),
	CHECK_CASE(test_nested_drains),
};

int main(int argc, char **argv)
{
	return check_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
