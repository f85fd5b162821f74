"""fakebroker.py - a scripted MQTT peer for packet-level conformance tests.

A scenario starts an mqlua script (the client under test) that connects to a
listening socket on a free loopback port, then plays the broker's part step
by step: each packet the client sends is compared byte for byte with the
encoding the MQTT specification prescribes (written out here by hand, from
the spec, not from any client library), and the replies are written as a
broker would. A mismatch fails the scenario with the expected and actual
bytes in hex.

    from fakebroker import Scenario, connect, publish, ...
    def scenario(s):
        c = s.accept()
        c.expect("CONNECT", connect("id", keepalive=60))
        c.send(connack())
        ...
    run_all([("name", LUA_SCRIPT, scenario, "expected stdout"), ...])

Output follows the suite's contract: `ok - FILE: NAME` / `not ok - FILE: NAME`
with `# ` detail lines; the exit status is 1 if a scenario failed.
"""

import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

# ---------------------------------------------------------------------------
# Encoding, after the MQTT 3.1, 3.1.1 and 5.0 specifications


def varint(n):
    """The Variable Byte Integer encoding of n (remaining length, property length)."""
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    """A UTF-8 string or binary data field: two-byte big-endian length, then the bytes."""
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def u16(n):
    return n.to_bytes(2, "big")


def packet(first_byte, body):
    """Fixed header (type and flags, remaining length) followed by body."""
    return bytes([first_byte]) + varint(len(body)) + body


def proplist(raw=b""):
    """An MQTT 5 property list: the length, then raw (the encoded properties)."""
    return varint(len(raw)) + raw


# MQTT 5 property identifiers and value types (MQTT 5.0, 2.2.2.2), by paho's names
PROPERTY_IDS = {
    "PayloadFormatIndicator": (0x01, "byte"), "MessageExpiryInterval": (0x02, "u32"),
    "ContentType": (0x03, "str"), "ResponseTopic": (0x08, "str"), "CorrelationData": (0x09, "bin"),
    "SubscriptionIdentifier": (0x0B, "varint"), "SessionExpiryInterval": (0x11, "u32"),
    "AssignedClientIdentifier": (0x12, "str"), "ServerKeepAlive": (0x13, "u16"),
    "RequestProblemInformation": (0x17, "byte"), "WillDelayInterval": (0x18, "u32"),
    "RequestResponseInformation": (0x19, "byte"), "ResponseInformation": (0x1A, "str"),
    "ServerReference": (0x1C, "str"), "ReasonString": (0x1F, "str"), "ReceiveMaximum": (0x21, "u16"),
    "TopicAliasMaximum": (0x22, "u16"), "TopicAlias": (0x23, "u16"), "MaximumQoS": (0x24, "byte"),
    "RetainAvailable": (0x25, "byte"), "UserProperty": (0x26, "pair"), "MaximumPacketSize": (0x27, "u32"),
    "WildcardSubscriptionAvailable": (0x28, "byte"), "SubscriptionIdentifierAvailable": (0x29, "byte"),
    "SharedSubscriptionAvailable": (0x2A, "byte"),
}


def properties(*items):
    """The encoded properties (without their length) of (name, value) items,
    in the order given; a UserProperty value is a (name, value) pair."""
    out = b""
    for name, value in items:
        ident, kind = PROPERTY_IDS[name]
        out += bytes([ident])
        if kind == "byte":
            out += bytes([value])
        elif kind == "u16":
            out += u16(value)
        elif kind == "u32":
            out += value.to_bytes(4, "big")
        elif kind == "varint":
            out += varint(value)
        elif kind == "pair":
            out += utf8(value[0]) + utf8(value[1])
        else:   # str, bin: two-byte length and the bytes
            out += utf8(value)
    return out


# The one property libmosquitto puts in every MQTT 5 CONNECT: Receive Maximum
# (0x21), from max_inflight_messages_set (mqlua's default window is 20).
RECEIVE_MAXIMUM_20 = bytes([0x21, 0, 20])


def connect(client_id, level=4, clean=True, keepalive=60, will=None, username=None, password=None,
            props=RECEIVE_MAXIMUM_20, will_props=b""):
    """CONNECT. level 3 (MQTT 3.1, "MQIsdp"), 4 (3.1.1) or 5 (with the encoded
    properties `props`, and `will_props` for the will). will is (topic,
    payload, qos, retain)."""
    flags = 0x02 if clean else 0
    payload = utf8(client_id)
    if will:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        if level == 5:
            payload += proplist(will_props)
        payload += utf8(topic) + utf8(message)
    if username is not None:
        flags |= 0x80
        payload += utf8(username)
    if password is not None:
        flags |= 0x40
        payload += utf8(password)
    name = "MQIsdp" if level == 3 else "MQTT"
    header = utf8(name) + bytes([level, flags]) + u16(keepalive)
    if level == 5:
        header += proplist(props)
    return packet(0x10, header + payload)


def connack(rc=0, session_present=False, level=4, props=b""):
    body = bytes([1 if session_present else 0, rc])
    if level == 5:
        body += proplist(props)
    return packet(0x20, body)


def publish(topic, payload, qos=0, retain=False, dup=False, mid=None, level=4, props=b""):
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    body = utf8(topic)
    if qos:
        body += u16(mid)
    if level == 5:
        body += proplist(props)
    return packet(first, body + (payload.encode() if isinstance(payload, str) else payload))


def ack(first_byte, mid, reason=None, props=None):
    """PUBACK/PUBREC/PUBREL/PUBCOMP: the packet id, then (MQTT 5) a reason
    code and properties, each left out when None."""
    body = u16(mid)
    if reason is not None:
        body += bytes([reason])
        if props is not None:
            body += proplist(props)
    return packet(first_byte, body)


def puback(mid, reason=None, props=None):
    return ack(0x40, mid, reason, props)


def pubrec(mid):
    return ack(0x50, mid)


def pubrel(mid):
    return ack(0x62, mid)   # flags 0010 are reserved and required


def pubcomp(mid):
    return ack(0x70, mid)


def subscribe(mid, filters, level=4, props=b""):
    """SUBSCRIBE (flags 0010). filters: list of (filter, options); the
    options byte is the qos, plus (MQTT 5) 0x04 no local, 0x08 retain as
    published and retain handling << 4."""
    body = u16(mid) + (proplist(props) if level == 5 else b"")
    for f, options in filters:
        body += utf8(f) + bytes([options])
    return packet(0x82, body)


def suback(mid, granted, level=4, props=b""):
    return packet(0x90, u16(mid) + (proplist(props) if level == 5 else b"") + bytes(granted))


def unsubscribe(mid, filters, level=4, props=b""):
    body = u16(mid) + (proplist(props) if level == 5 else b"")
    for f in filters:
        body += utf8(f)
    return packet(0xA2, body)


def unsuback(mid, level=4, count=1, reasons=None, props=b""):
    """UNSUBACK; with MQTT 5, `reasons` (default: count times Success) and properties."""
    if level == 5:
        return packet(0xB0, u16(mid) + proplist(props) + bytes(reasons if reasons is not None else [0] * count))
    return packet(0xB0, u16(mid))


def disconnect(reason=None, props=None):
    """DISCONNECT; with MQTT 5 a reason code and properties (each left out when None)."""
    body = b""
    if reason is not None:
        body += bytes([reason])
        if props is not None:
            body += proplist(props)
    return packet(0xE0, body)


PINGREQ = packet(0xC0, b"")
PINGRESP = packet(0xD0, b"")
DISCONNECT = disconnect()

NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}


def describe(pkt):
    """'PUBLISH d1 q1 r0 (12 bytes)' for a raw packet (None: the connection closed)."""
    if pkt is None:
        return "the connection closed"
    t = pkt[0] >> 4
    name = NAMES.get(t, "type %d" % t)
    if t == 3:
        f = pkt[0]
        name += " d%d q%d r%d" % ((f >> 3) & 1, (f >> 1) & 3, f & 1)
    return "%s (%d bytes)" % (name, len(pkt))


def hexs(b):
    return "(none)" if b is None else b.hex(" ")


# ---------------------------------------------------------------------------
# The broker's side of one connection


class Failure(Exception):
    pass


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False

    def _fill(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                try:
                    data = self.sock.recv(65536)
                except ConnectionError:
                    data = b""
                if not data:
                    self.closed = True
                    return False
                self.buf += data
                return True

    def _complete(self):
        """Length of the first complete packet in buf, or 0."""
        if len(self.buf) < 2:
            return 0
        n, mult, i = 0, 1, 1
        while True:
            if i >= len(self.buf):
                return 0
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        return i + n if len(self.buf) >= i + n else 0

    def read(self, timeout=5.0):
        """The next packet's bytes, or None if the client closed the
        connection or nothing came within timeout (self.closed tells which)."""
        deadline = time.monotonic() + timeout
        while True:
            n = self._complete()
            if n:
                pkt, self.buf = self.buf[:n], self.buf[n:]
                return pkt
            if self.closed or not self._fill(deadline):
                return None

    def expect(self, what, expected, timeout=5.0, answer_pings=True):
        """Reads the next packet (answering PINGREQs meanwhile) and fails
        unless it is exactly `expected`. Returns the packet."""
        while True:
            got = self.read(timeout)
            if answer_pings and got == PINGREQ and expected != PINGREQ:
                self.send(PINGRESP)
                continue
            break
        if got != expected:
            raise Failure("%s: packet differs\n  expected: %s\n            %s\n  actual:   %s\n            %s"
                          % (what, describe(expected), hexs(expected), describe(got), hexs(got)))
        return got

    def packets_for(self, seconds):
        """Every packet that arrives within `seconds` (PINGREQs answered and left out)."""
        out = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            p = self.read(left)
            if p is None:
                return out
            if p == PINGREQ:
                self.send(PINGRESP)
                continue
            out.append(p)

    def expect_closed(self, what="the client closes the connection", timeout=5.0):
        got = self.read(timeout)
        if got is not None or not self.closed:
            raise Failure("%s: expected the connection to close, got %s %s" % (what, describe(got), hexs(got)))

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Scenario:
    """One run: a listening socket, the mqlua child, the accepted connections."""

    def __init__(self, name, lua):
        self.name = name
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="mqlua-conf-")
        self.script = os.path.join(self.dir, "client.lua")
        with open(self.script, "w") as f:
            f.write(lua)
        self.errpath = os.path.join(self.dir, "stderr")
        self.err = open(self.errpath, "w")
        mqlua = os.environ.get("MQLUA") or os.path.join(os.environ.get("MQLUA_BUILD", "build"), "mqlua")
        # a store of its own, also when run by hand outside tests/run
        env = dict(os.environ, MQLUA_STORE=os.path.join(self.dir, "store.db"))
        self.child = subprocess.Popen([mqlua, self.script, "127.0.0.1", str(self.port)],
                                      stdout=subprocess.PIPE, stderr=self.err, env=env)
        self.conns = []

    def accept(self, timeout=10.0):
        r, _, _ = select.select([self.listener], [], [], timeout)
        if not r:
            raise Failure("the client did not connect within %g s" % timeout)
        sock, _ = self.listener.accept()
        c = Conn(sock)
        self.conns.append(c)
        return c

    def finish(self, timeout=15.0):
        """Waits for the child; returns its stdout and exit status."""
        try:
            out, _ = self.child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            out, _ = self.child.communicate()
            return out.decode(errors="replace"), "timeout"
        return out.decode(errors="replace"), self.child.returncode

    def cleanup(self):
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        for c in self.conns:
            c.close()
        self.listener.close()
        self.err.close()
        with open(self.errpath, errors="replace") as f:
            err = f.read()
        # the child's stderr goes to ours, so the runner sees sanitizer reports
        sys.stderr.write(err)
        sys.stderr.flush()
        subprocess.run(["rm", "-rf", "--", self.dir])
        return err


# The prelude every scenario script starts with: mqtt, the broker address,
# out(...) printing a line at once, code(rc), names(reason_codes) and
# show(properties).
PRELUDE = """local mqtt = require "mqlua"
local HOST, PORT = arg[1], tonumber(arg[2])
io.stdout:setvbuf("line")
local function out(...) print(...) end
-- the number of a reason code (a ReasonCode value in MQTT v5 callbacks)
local function code(rc) return type(rc) == "number" and rc or rc.value end
-- a list of reason codes as their names, comma-separated
local function names(rcs)
  local n = {}
  for i, rc in ipairs(rcs) do n[i] = tostring(rc) end
  return table.concat(n, ",")
end
-- properties in one line: names sorted, lists in order, binary strings in hex
local function show(p)
  if p == nil then return "nil" end
  local names, parts = {}, {}
  for k in pairs(p) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = p[k]
    if type(v) == "table" then
      local items = {}
      for i, e in ipairs(v) do items[i] = type(e) == "table" and e[1] .. "=" .. e[2] or tostring(e) end
      v = "[" .. table.concat(items, ",") .. "]"
    elseif type(v) == "string" and v:find("[^%g ]") then
      v = "0x" .. (v:gsub(".", function(ch) return string.format("%02x", ch:byte()) end))
    end
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  return table.concat(parts, " ")
end
"""


def run_all(scenarios):
    """Runs (name, lua, fn, want_stdout) scenarios in turn and prints the
    results; want_stdout None skips the stdout check. Returns the exit status."""
    file = os.path.basename(sys.argv[0])
    failed = 0
    only = os.environ.get("CONFORMANCE_ONLY")
    for name, lua, fn, want in scenarios:
        if only and only not in name:
            continue
        s = Scenario(name, PRELUDE + lua)
        detail = None
        try:
            fn(s)
            out, status = s.finish()
            if status != 0:
                detail = "mqlua exited with %s; stdout:\n%s" % (status, out)
            elif callable(want):
                detail = want(out)
            elif want is not None and out != want:
                detail = "mqlua's stdout differs\n  expected: %r\n  actual:   %r" % (want, out)
        except Failure as e:
            detail = str(e)
        except Exception as e:   # a bug in the scenario itself
            detail = "%s: %s" % (type(e).__name__, e)
        err = s.cleanup()
        if detail:
            failed += 1
            print("not ok - %s: %s" % (file, name))
            for line in (detail + "\nmqlua's stderr:\n" + err[-2000:]).rstrip("\n").split("\n"):
                print("# " + line)
        else:
            print("ok - %s: %s" % (file, name))
        sys.stdout.flush()
    if failed:
        print("# %d scenario%s failed" % (failed, "" if failed == 1 else "s"))
    return 1 if failed else 0

