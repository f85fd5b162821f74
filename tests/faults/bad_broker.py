"""bad_broker.py - a broker that misbehaves (the fake broker of
tests/conformance/fakebroker.py): one that stops answering after CONNACK
(keepalive must notice it and the client reconnect), one that sends garbage
(the client drops the connection, says why, reconnects), and one that ends
every connection right after CONNACK, 1,000 times, while mqlua's resident
memory is measured at the 100th and at the 1,000th connection.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
from fakebroker import PINGREQ, Failure, connack, run_all  # noqa: E402

ASAN = "asan" in os.environ.get("MQLUA_BUILD", "")


def first_connect(s, timeout=10.0):
    """Accepts a connection and reads its CONNECT; returns the connection."""
    c = s.accept(timeout)
    p = c.read(5.0)
    if not p or p[0] & 0xF0 != 0x10:
        raise Failure("expected a CONNECT, got %r" % (p,))
    return c


SILENT = """local c = mqtt.Client("bad-silent")
c:reconnect_delay_set(0.1, 0.5)
local n = 0
c.on_disconnect = function(_, _, rc) out("on_disconnect", rc, c:last_error()) end
c.on_connect = function(_, _, _, rc) n = n + 1 out("on_connect", n, rc) if n == 2 then c:disconnect() end end
c:connect(HOST, PORT, 5)
"""


def silent(s):
    c = first_connect(s)
    c.send(connack())
    t0 = time.monotonic()
    p = c.read(8.0)
    if p != PINGREQ:
        raise Failure("expected a PINGREQ after 5 s of silence, got %r" % (p,))
    pinged = time.monotonic() - t0
    # no PINGRESP: the client must give up within keepalive (5 s) after its
    # PINGREQ, 1.5 x keepalive at most with the loop's one-second tick
    p = c.read(7.5 + 1.0)
    if p is not None or not c.closed:
        raise Failure("expected the client to close the silent connection, got %r" % (p,))
    closed = time.monotonic() - t0
    if closed - pinged > 7.5:
        raise Failure("closed %.1f s after the unanswered PINGREQ, want <= 7.5 s" % (closed - pinged))
    c2 = first_connect(s, 5.0)
    c2.send(connack())
    sys.stderr.write("# silent broker: PINGREQ after %.1f s, connection closed %.1f s later\n"
                     % (pinged, closed - pinged))


def want_silent(out):
    lines = out.splitlines()
    want = ["on_connect\t1\t0", "on_disconnect\t16\tno answer from the broker within the keepalive interval (5 s)"]
    if lines[:2] != want or not (len(lines) > 2 and lines[2] == "on_connect\t2\t0"):
        return "stdout differs\n  expected: %r + on_connect 2 0\n  actual:   %r" % (want, lines)
    return None


GARBAGE = """local c = mqtt.Client("bad-garbage")
c:reconnect_delay_set(0.1, 0.5)
local n = 0
c.on_disconnect = function(_, _, rc) out("on_disconnect", rc, c:last_error()) end
c.on_connect = function(_, _, _, rc) n = n + 1 out("on_connect", n, rc) if n == 3 then c:disconnect() end end
c:connect(HOST, PORT, 60)
"""


def garbage(s):
    # a reserved packet type (0xF0 is not a packet in MQTT 3.1.1), then a
    # remaining length that never ends (five continuation bytes)
    for junk in (b"\xf0\x00", b"\x30\xff\xff\xff\xff\xff\x01"):
        c = first_connect(s)
        c.send(connack())
        time.sleep(0.1)
        c.send(junk)
        p = c.read(5.0)
        if p is not None or not c.closed:
            raise Failure("junk %r: expected the client to drop the connection, got %r" % (junk, p))
    c = first_connect(s, 5.0)
    c.send(connack())


def want_garbage(out):
    want = ["on_connect\t1\t0", "on_disconnect\t2\tthe broker sent a malformed or unexpected packet (protocol error)",
            "on_connect\t2\t0", "on_disconnect\t2\tthe broker sent a malformed or unexpected packet (protocol error)",
            "on_connect\t3\t0"]
    lines = out.splitlines()
    if lines[:5] != want:
        return "stdout differs\n  expected: %r\n  actual:   %r" % (want, lines)
    return None


CHURN = """local c = mqtt.Client("bad-churn")
c:reconnect_delay_set(0.001, 0.002)
local n = 0
local function rss_kb()
	for line in io.lines("/proc/self/status") do
		local kb = line:match("^VmRSS:%s*(%d+)")
		if kb then return tonumber(kb) end
	end
end
c.on_connect = function(_, _, _, rc)
	n = n + 1
	if n == 100 or n == 1000 then
		collectgarbage() collectgarbage()
		out("rss", n, rss_kb())
	end
	if n == 1000 then c:disconnect() end
end
c:connect(HOST, PORT, 60)
"""

churn_seen = {}


def churn(s):
    t0 = time.monotonic()
    for i in range(1000):
        c = first_connect(s, 5.0)
        c.send(connack())
        if i < 999:
            c.close()
    churn_seen["seconds"] = time.monotonic() - t0


def want_churn(out):
    rss = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if parts[0] == "rss":
            rss[int(parts[1])] = int(parts[2])
    if set(rss) != {100, 1000}:
        return "expected rss lines at 100 and 1000, got %r" % out
    growth = rss[1000] - rss[100]
    sys.stderr.write("# 1,000 reconnects in %.1f s: RSS %d kB at 100, %d kB at 1,000 (%+d kB)\n"
                     % (churn_seen.get("seconds", 0), rss[100], rss[1000], growth))
    # ASan's quarantine holds freed memory on purpose: there LeakSanitizer at exit is the check
    limit = 8192 if ASAN else 1024
    if growth >= limit:
        return "RSS grew by %d kB between the 100th and the 1,000th connection (limit %d kB)" % (growth, limit)
    return None


sys.exit(run_all([
    ("a broker that stops answering: keepalive notices, the client reconnects", SILENT, silent, want_silent),
    ("a broker that sends garbage: the client drops it, says why, reconnects", GARBAGE, garbage, want_garbage),
    ("1,000 reconnects to a broker that hangs up after CONNACK: memory stays flat", CHURN, churn, want_churn),
]))
