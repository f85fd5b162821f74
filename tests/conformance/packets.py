"""packets.py - packet-level conformance of mqlua's client, byte for byte,
against a scripted fake broker (fakebroker.py): CONNECT for MQTT 3.1, 3.1.1
and 5 (will, credentials, keepalive, clean session, a generated client id),
keepalive pings, QoS 1 and 2 flows both ways, re-sending after a dropped
connection, SUBSCRIBE/UNSUBSCRIBE forms, DISCONNECT, MQTT v5 properties,
subscription options and reason codes both ways, and the paho helpers.

Run by packets.sh (tests/run); CONFORMANCE_ONLY=text runs the scenarios
whose name contains text.
"""

import re
import sys
import time

from fakebroker import (DISCONNECT, PINGREQ, PINGRESP, Failure, connack, connect, describe, disconnect, hexs,
                        properties, puback, pubcomp, publish, pubrec, pubrel, run_all, suback, subscribe,
                        unsuback, unsubscribe)

SCENARIOS = []


def scenario(name, lua, want=None):
    """Registers the decorated function as the broker's side of `name`."""
    def add(fn):
        SCENARIOS.append((name, lua, fn, want))
        return fn
    return add


def handshake(s, expected_connect, level=4, session_present=False):
    """Accepts the client, checks its CONNECT, accepts it; returns the connection."""
    c = s.accept()
    c.expect("CONNECT", expected_connect)
    c.send(connack(0, session_present, level))
    return c


def goodbye(c):
    """The client's DISCONNECT and then its closing the connection."""
    c.expect("DISCONNECT", DISCONNECT)
    c.expect_closed()


# A client that connects with `setup` applied and disconnects in on_connect.
def connect_then_disconnect(client, setup="", keepalive=60, connect_extra=""):
    return """local c = %s
%s
c.on_connect = function(cl, _, _, rc) out("on_connect " .. code(rc)); cl:disconnect() end
c:connect(HOST, PORT, %d%s)
""" % (client, setup, keepalive, connect_extra)


# ---------------------------------------------------------------------------
# CONNECT

# clean_session as a script gives it: true, or left out for MQTT v5 (where
# connect's clean_start takes its place and clean_session raises)
CLEAN = {3: "true", 4: "true", 5: "nil"}

for level, proto in ((3, "MQTTv31"), (4, "MQTTv311"), (5, "MQTTv5")):
    def plain(s, level=level):
        goodbye(handshake(s, connect("conf-plain", level=level), level))
    scenario("CONNECT %s: protocol name and level, clean session, keepalive 60" % proto,
             connect_then_disconnect('mqtt.Client("conf-plain", %s, nil, mqtt.%s)' % (CLEAN[level], proto)),
             "on_connect 0\n")(plain)

    def will(s, level=level):
        goodbye(handshake(s, connect("conf-will", level=level, will=("conf/will", "gone", 1, True)), level))
    scenario("CONNECT %s with a will (qos 1, retain)" % proto,
             connect_then_disconnect('mqtt.Client("conf-will", %s, nil, mqtt.%s)' % (CLEAN[level], proto),
                                     'c:will_set("conf/will", "gone", 1, true)'), "on_connect 0\n")(will)

    def creds(s, level=level):
        goodbye(handshake(s, connect("conf-auth", level=level, keepalive=5, username="user",
                                     password="pa:ss"), level))
    scenario("CONNECT %s with username, password and keepalive 5" % proto,
             connect_then_disconnect('mqtt.Client("conf-auth", %s, nil, mqtt.%s)' % (CLEAN[level], proto),
                                     'c:username_pw_set("user", "pa:ss")', keepalive=5),
             "on_connect 0\n")(creds)


@scenario("CONNECT MQTTv311 with a will at qos 2 without retain, and a username without password",
          connect_then_disconnect('mqtt.Client("conf-will2")',
                                  'c:will_set("w/t", "", 2, false); c:username_pw_set("only-user")'),
          "on_connect 0\n")
def _(s):
    goodbye(handshake(s, connect("conf-will2", will=("w/t", "", 2, False), username="only-user")))


@scenario("CONNECT MQTTv311 with clean_session false and keepalive 0",
          connect_then_disconnect('mqtt.Client("conf-persist", false)', keepalive=0), "on_connect 0\n")
def _(s):
    goodbye(handshake(s, connect("conf-persist", clean=False, keepalive=0)))


@scenario("CONNECT MQTTv5 with clean start false",
          connect_then_disconnect('mqtt.Client{client_id = "conf-v5p", protocol = mqtt.MQTTv5}',
                                  connect_extra=', nil, 0, false'),
          "on_connect 0\n")
def _(s):
    goodbye(handshake(s, connect("conf-v5p", level=5, clean=False), 5))


for level, proto in ((3, "MQTTv31"), (4, "MQTTv311"), (5, "MQTTv5")):
    def generated(s, level=level):
        # A zero-length ClientId is allowed with a clean session in 3.1.1 and 5
        # (the server assigns one) but not in 3.1; mqlua always sends its own
        # generated id, which must then be what every server has to accept:
        # 1 to 23 bytes (3.1: at most 23) of 0-9a-zA-Z [MQTT-3.1.3-5].
        c = s.accept()
        pkt = c.read()
        name = b"MQIsdp" if level == 3 else b"MQTT"
        head = bytes([0x10]) + b"(.)" + b"\x00" + bytes([len(name)]) + name + bytes([level, 0x02, 0, 60])
        head += b"\x03\x21\x00\x14" if level == 5 else b""
        m = re.fullmatch(re.escape(head).replace(b"\\(\\.\\)", b"(.)") + rb"\x00(.)(.*)", pkt or b"", re.S)
        if not m or m.group(2)[0] != len(m.group(3)) or pkt[1] != len(pkt) - 2:
            raise Failure("CONNECT with a generated id: not the expected shape\n  actual: %s\n          %s"
                          % (describe(pkt), hexs(pkt)))
        cid = m.group(3)
        if not (1 <= len(cid) <= 23) or not re.fullmatch(rb"mqlua[0-9a-f]{12}", cid):
            raise Failure("generated client id %r: want mqlua and 12 hex digits, 1..23 bytes" % cid)
        if pkt != connect(cid.decode(), level=level):
            raise Failure("CONNECT with id %r differs from the spec's encoding\n  expected: %s\n  actual:   %s"
                          % (cid, hexs(connect(cid.decode(), level=level)), hexs(pkt)))
        c.send(connack(0, False, level))
        goodbye(c)
    scenario("CONNECT %s with client_id \"\": a generated id of 17 bytes (0-9a-zA-Z)" % proto,
             connect_then_disconnect('mqtt.Client("", %s, nil, mqtt.%s)' % (CLEAN[level], proto)), "on_connect 0\n")(generated)


@scenario("CONNACK refused (not authorised): on_connect rc 5, no DISCONNECT",
          """local c = mqtt.Client("conf-refused")
c.on_connect = function(cl, _, _, rc) out("on_connect " .. code(rc)); cl:disconnect() end
c:connect(HOST, PORT)
""", "on_connect 5\n")
def _(s):
    c = s.accept()
    c.expect("CONNECT", connect("conf-refused"))
    c.send(connack(5))
    c.close()


# ---------------------------------------------------------------------------
# keepalive


@scenario("PINGREQ after keepalive (5 s) of silence, none before",
          """local c = mqtt.Client("conf-ping")
local pings = 0
c.on_connect = function(cl) mqtt.after(7.5, function() out("still connected " .. tostring(cl:is_connected())); cl:disconnect() end) end
c:connect(HOST, PORT, 5)
""", "still connected true\n")
def _(s):
    c = handshake(s, connect("conf-ping", keepalive=5))
    start = time.monotonic()
    c.expect("PINGREQ", PINGREQ, timeout=8, answer_pings=False)
    waited = time.monotonic() - start
    if not 4.5 <= waited <= 6.5:
        raise Failure("PINGREQ came after %.2f s of silence, want keepalive (5 s)" % waited)
    c.send(PINGRESP)
    goodbye(c)


# ---------------------------------------------------------------------------
# PUBLISH flows


PUB_AND_DISCONNECT = """local c = mqtt.Client{client_id = "conf-pub", protocol = mqtt.%s, store = false}
c.on_publish = function(cl, _, mid) out("on_publish " .. mid); cl:disconnect() end
c.on_connect = function(cl) cl:publish("conf/t", "payload", %d, %s) end
c:connect(HOST, PORT)
"""


@scenario("PUBLISH QoS 0 with retain, then DISCONNECT", PUB_AND_DISCONNECT % ("MQTTv311", 0, "true"))
def _(s):
    c = handshake(s, connect("conf-pub"))
    c.expect("PUBLISH", publish("conf/t", "payload", 0, retain=True))
    goodbye(c)


@scenario("PUBLISH QoS 1 out: PUBLISH, PUBACK, on_publish", PUB_AND_DISCONNECT % ("MQTTv311", 1, "false"),
          "on_publish 1\n")
def _(s):
    c = handshake(s, connect("conf-pub"))
    c.expect("PUBLISH", publish("conf/t", "payload", 1, mid=1))
    c.send(puback(1))
    goodbye(c)


@scenario("PUBLISH QoS 2 out: PUBLISH, PUBREC, PUBREL, PUBCOMP, on_publish",
          PUB_AND_DISCONNECT % ("MQTTv311", 2, "false"), "on_publish 1\n")
def _(s):
    c = handshake(s, connect("conf-pub"))
    c.expect("PUBLISH", publish("conf/t", "payload", 2, mid=1))
    c.send(pubrec(1))
    c.expect("PUBREL", pubrel(1))
    c.send(pubcomp(1))
    goodbye(c)


@scenario("MQTTv5 PUBLISH QoS 1 without properties", PUB_AND_DISCONNECT % ("MQTTv5", 1, "true"), "on_publish 1\n")
def _(s):
    c = handshake(s, connect("conf-pub", level=5), 5)
    c.expect("PUBLISH", publish("conf/t", "payload", 1, retain=True, mid=1, level=5))
    c.send(puback(1))   # reason code and properties left out: Success
    goodbye(c)


RECEIVE = """local c = mqtt.Client{client_id = "conf-recv", protocol = mqtt.%s}
local n = 0
c.on_message = function(cl, _, m)
  out(m.topic, m.payload, m.qos, m.retain, m.dup)
  n = n + 1
  if n == %d then cl:disconnect() end
end
c:connect(HOST, PORT)
"""


@scenario("PUBLISH QoS 1 in: PUBACK with its packet id, message delivered once",
          RECEIVE % ("MQTTv311", 1), "in/1\tone\t1\tfalse\tfalse\n")
def _(s):
    c = handshake(s, connect("conf-recv"))
    c.send(publish("in/1", "one", 1, mid=7))
    c.expect("PUBACK", puback(7))
    goodbye(c)


@scenario("PUBLISH QoS 2 in: PUBREC, PUBREL, PUBCOMP; delivered once (also when the broker re-sends with DUP)",
          RECEIVE % ("MQTTv311", 1), "in/2\ttwo\t2\ttrue\tfalse\n")
def _(s):
    c = handshake(s, connect("conf-recv"))
    c.send(publish("in/2", "two", 2, retain=True, mid=9))
    c.expect("PUBREC", pubrec(9))
    c.send(publish("in/2", "two", 2, retain=True, dup=True, mid=9))   # a re-send before PUBREL
    c.expect("PUBREC again", pubrec(9))
    c.send(pubrel(9))
    c.expect("PUBCOMP", pubcomp(9))
    goodbye(c)


@scenario("MQTTv5 PUBLISH QoS 1 in without properties: PUBACK", RECEIVE % ("MQTTv5", 1),
          "in/5\tfive\t1\tfalse\tfalse\n")
def _(s):
    c = handshake(s, connect("conf-recv", level=5), 5)
    c.send(publish("in/5", "five", 1, mid=300, level=5))
    got = c.read()
    # v5 allows PUBACK with the reason code left out (Success) or given as 0
    if got not in (puback(300), bytes([0x40, 3, 1, 44, 0]), bytes([0x40, 4, 1, 44, 0, 0])):
        raise Failure("PUBACK: want 40 02 01 2c (or with reason 00)\n  actual: %s" % hexs(got))
    goodbye(c)


# ---------------------------------------------------------------------------
# re-sending after a lost connection

RESEND = """local c = mqtt.Client{client_id = "conf-resend", clean_session = %s, store = false}
c:reconnect_delay_set(0.2, 0.2)
local published = false
c.on_connect = function(cl, _, flags)
  out("on_connect session_present=" .. tostring(flags.session_present))
  if not published then published = true; cl:publish("re/t", "again", %d) end
end
c.on_publish = function(cl, _, mid) out("on_publish " .. mid); cl:disconnect() end
c:connect(HOST, PORT)
"""


def resend(s, clean, qos, after_pubrec=False):
    """The broker drops the connection before it acknowledges; returns the
    packets of the second connection up to the client's ack handling."""
    c = handshake(s, connect("conf-resend", clean=clean))
    c.expect("PUBLISH", publish("re/t", "again", qos, mid=1))
    if after_pubrec:
        c.send(pubrec(1))
        c.expect("PUBREL", pubrel(1))
    c.close()
    c2 = handshake(s, connect("conf-resend", clean=clean), session_present=not clean)
    return c2, c2.packets_for(1.5)


def want_packets(what, got, want):
    if got != want:
        raise Failure("%s\n  expected: %s\n  actual:   %s" % (
            what, "; ".join(describe(p) + " " + hexs(p) for p in want) or "(nothing)",
            "; ".join(describe(p) + " " + hexs(p) for p in got) or "(nothing)"))


@scenario("QoS 1 re-sent after a dropped connection, clean_session false: once, DUP 1, same packet id",
          RESEND % ("false", 1), "on_connect session_present=false\non_connect session_present=true\non_publish 1\n")
def _(s):
    c, got = resend(s, False, 1)
    # [MQTT-4.4.0-1] re-send with the original packet id; [MQTT-3.3.1-1] DUP set
    want_packets("after the reconnect", got, [publish("re/t", "again", 1, dup=True, mid=1)])
    c.send(puback(1))
    goodbye(c)


@scenario("QoS 1 re-sent after a dropped connection, clean_session true: exactly once",
          RESEND % ("true", 1), "on_connect session_present=false\non_connect session_present=false\non_publish 1\n")
def _(s):
    c, got = resend(s, True, 1)
    # a new session: the packet id and DUP are the client's choice, but one copy only
    if len(got) != 1 or got[0][0] & 0xF6 != 0x32 or not got[0].endswith(b"again"):
        want_packets("after the reconnect (one QoS 1 PUBLISH of the message)", got,
                     [publish("re/t", "again", 1, dup=True, mid=1)])
    mid = int.from_bytes(got[0][8:10], "big")
    c.send(puback(mid))
    goodbye(c)


@scenario("QoS 2 re-sent after a connection dropped before PUBREC, clean_session false: DUP 1, same id",
          RESEND % ("false", 2), "on_connect session_present=false\non_connect session_present=true\non_publish 1\n")
def _(s):
    c, got = resend(s, False, 2)
    want_packets("after the reconnect", got, [publish("re/t", "again", 2, dup=True, mid=1)])
    c.send(pubrec(1))
    c.expect("PUBREL", pubrel(1))
    c.send(pubcomp(1))
    goodbye(c)


@scenario("QoS 2 after a connection dropped between PUBREC and PUBCOMP, clean_session false: PUBREL again",
          RESEND % ("false", 2), "on_connect session_present=false\non_connect session_present=true\non_publish 1\n")
def _(s):
    c, got = resend(s, False, 2, after_pubrec=True)
    # [MQTT-4.4.0-1]: unacknowledged PUBREL packets are re-sent, not the PUBLISH
    want_packets("after the reconnect", got, [pubrel(1)])
    c.send(pubcomp(1))
    goodbye(c)


@scenario("QoS 2 re-sent after a connection dropped before PUBREC, clean_session true: exactly once",
          RESEND % ("true", 2), "on_connect session_present=false\non_connect session_present=false\non_publish 1\n")
def _(s):
    c, got = resend(s, True, 2)
    if len(got) != 1 or got[0][0] & 0xF6 != 0x34 or not got[0].endswith(b"again"):
        want_packets("after the reconnect (one QoS 2 PUBLISH of the message)", got,
                     [publish("re/t", "again", 2, dup=True, mid=1)])
    mid = int.from_bytes(got[0][8:10], "big")
    c.send(pubrec(mid))
    c.expect("PUBREL", pubrel(mid))
    c.send(pubcomp(mid))
    goodbye(c)


@scenario("after a reconnect without a session, the client SUBSCRIBEs again",
          """local c = mqtt.Client("conf-resub")
c:reconnect_delay_set(0.2, 0.2)
local n = 0
c.on_connect = function(cl)
  n = n + 1
  if n == 1 then cl:subscribe("r/#", 1) else mqtt.after(0.5, function() cl:disconnect() end) end
end
c.on_subscribe = function() out("on_subscribe " .. n) end
c:connect(HOST, PORT)
""", "on_subscribe 1\n")
def _(s):
    c = handshake(s, connect("conf-resub"))
    c.expect("SUBSCRIBE", subscribe(1, [("r/#", 1)]))
    c.send(suback(1, [1]))
    time.sleep(0.2)
    c.close()
    c2 = handshake(s, connect("conf-resub"))
    c2.expect("SUBSCRIBE again", subscribe(2, [("r/#", 1)]))
    c2.send(suback(2, [1]))   # mqlua's own re-subscription: the script sees no on_subscribe
    goodbye(c2)


# ---------------------------------------------------------------------------
# SUBSCRIBE / UNSUBSCRIBE

SUB = """local c = mqtt.Client{client_id = "conf-sub", protocol = mqtt.%s}
c.on_subscribe = function(cl, _, mid, granted)
  local g = {}
  for i, rc in ipairs(granted) do g[i] = code(rc) end
  out("on_subscribe " .. mid .. " " .. table.concat(g, ","))
  cl:disconnect()
end
c.on_connect = function(cl) cl:subscribe(%s) end
c:connect(HOST, PORT)
"""


@scenario("SUBSCRIBE one filter", SUB % ("MQTTv311", '"s/a", 1'), "on_subscribe 1 1\n")
def _(s):
    c = handshake(s, connect("conf-sub"))
    c.expect("SUBSCRIBE", subscribe(1, [("s/a", 1)]))
    c.send(suback(1, [1]))
    goodbye(c)


@scenario("SUBSCRIBE {topic, qos}", SUB % ("MQTTv311", '{"s/+/b", 2}'), "on_subscribe 1 2\n")
def _(s):
    c = handshake(s, connect("conf-sub"))
    c.expect("SUBSCRIBE", subscribe(1, [("s/+/b", 2)]))
    c.send(suback(1, [2]))
    goodbye(c)


@scenario("SUBSCRIBE a list of tuples with one qos: one packet", SUB % ("MQTTv311", '{{"a", 1}, {"b/#", 1}}'),
          "on_subscribe 1 1,1\n")
def _(s):
    c = handshake(s, connect("conf-sub"))
    c.expect("SUBSCRIBE", subscribe(1, [("a", 1), ("b/#", 1)]))
    c.send(suback(1, [1, 1]))
    goodbye(c)


@scenario("SUBSCRIBE a mixed-qos list: one packet per qos, one on_subscribe in list order",
          SUB % ("MQTTv311", '{{"a", 0}, {"b", 2}, {"c", 0}}'), "on_subscribe 1 0,1,0\n")
def _(s):
    c = handshake(s, connect("conf-sub"))
    p1 = c.read()
    p2 = c.read()
    # libmosquitto's mosquitto_subscribe_multiple takes one qos: mqlua groups by qos
    want = {subscribe(1, [("a", 0), ("c", 0)]), subscribe(2, [("b", 2)])}
    alt = {subscribe(2, [("a", 0), ("c", 0)]), subscribe(1, [("b", 2)])}
    if {p1, p2} not in (want, alt):
        want_packets("two SUBSCRIBE packets", [p for p in (p1, p2) if p], sorted(want))
    for p in (p1, p2):
        mid = int.from_bytes(p[2:4], "big")
        c.send(suback(mid, [0, 0] if b"\x00\x01c" in p else [1]))   # b granted 1, not 2
    goodbye(c)


@scenario("MQTTv5 SUBSCRIBE without properties: options byte = qos", SUB % ("MQTTv5", '"v5/#", 2'),
          "on_subscribe 1 2\n")
def _(s):
    c = handshake(s, connect("conf-sub", level=5), 5)
    c.expect("SUBSCRIBE", subscribe(1, [("v5/#", 2)], level=5))
    c.send(suback(1, [2], level=5))
    goodbye(c)


UNSUB = """local c = mqtt.Client{client_id = "conf-unsub", protocol = mqtt.%s}
c.on_unsubscribe = function(cl, _, mid) out("on_unsubscribe " .. mid); cl:disconnect() end
c.on_connect = function(cl) cl:unsubscribe(%s) end
c:connect(HOST, PORT)
"""


@scenario("UNSUBSCRIBE one filter", UNSUB % ("MQTTv311", '"u/a"'), "on_unsubscribe 1\n")
def _(s):
    c = handshake(s, connect("conf-unsub"))
    c.expect("UNSUBSCRIBE", unsubscribe(1, ["u/a"]))
    c.send(unsuback(1))
    goodbye(c)


@scenario("UNSUBSCRIBE a list: one packet", UNSUB % ("MQTTv311", '{"u/a", "u/+/b", "#"}'), "on_unsubscribe 1\n")
def _(s):
    c = handshake(s, connect("conf-unsub"))
    c.expect("UNSUBSCRIBE", unsubscribe(1, ["u/a", "u/+/b", "#"]))
    c.send(unsuback(1))
    goodbye(c)


@scenario("MQTTv5 UNSUBSCRIBE without properties", UNSUB % ("MQTTv5", '"u5"'), "on_unsubscribe 1\n")
def _(s):
    c = handshake(s, connect("conf-unsub", level=5), 5)
    c.expect("UNSUBSCRIBE", unsubscribe(1, ["u5"], level=5))
    c.send(unsuback(1, level=5))
    goodbye(c)


# ---------------------------------------------------------------------------
# MQTT v5 properties, subscription options and reason codes
#
# The order of different properties in a packet is the sender's choice (the
# specification gives none); mqlua's is fixed (its table of property names),
# so the expected bytes below are in that order. The order of UserProperty
# pairs is part of their meaning and is kept, repeated names included.

V5 = "mqtt.Client{client_id = %r, protocol = mqtt.MQTTv5%s}"
VERSION2 = ", callback_api_version = mqtt.CallbackAPIVersion.VERSION2"


@scenario("MQTTv5 CONNECT with properties: SessionExpiryInterval, ReceiveMaximum, MaximumPacketSize, "
          "TopicAliasMaximum, request flags, UserProperty in order",
          connect_then_disconnect(V5 % ("conf-cprops", ""), connect_extra=""", nil, 0, true, {
  SessionExpiryInterval = 3600, ReceiveMaximum = 10, MaximumPacketSize = 1048576, TopicAliasMaximum = 5,
  RequestResponseInformation = 1, RequestProblemInformation = 0,
  UserProperty = { { "site", "porch" }, { "k", "1" }, { "site", "hall" } } }"""), "on_connect 0\n")
def _(s):
    # ReceiveMaximum given: libmosquitto's own (20, from max_inflight_messages) is not added
    goodbye(handshake(s, connect("conf-cprops", level=5, props=properties(
        ("SessionExpiryInterval", 3600), ("RequestProblemInformation", 0), ("RequestResponseInformation", 1),
        ("ReceiveMaximum", 10), ("TopicAliasMaximum", 5), ("UserProperty", ("site", "porch")),
        ("UserProperty", ("k", "1")), ("UserProperty", ("site", "hall")), ("MaximumPacketSize", 1048576))), 5))


@scenario("MQTTv5 CONNECT with will properties: WillDelayInterval, ContentType, binary CorrelationData, "
          "UserProperty, ... between the client id and the will topic",
          connect_then_disconnect(V5 % ("conf-wprops", ""), r'''c:will_set("conf/will", "gone", 1, true, {
  WillDelayInterval = 30, PayloadFormatIndicator = 1, MessageExpiryInterval = 600, ContentType = "text/plain",
  ResponseTopic = "conf/re", CorrelationData = "\0\1\255", UserProperty = { { "w", "1" }, { "w", "2" } } })'''),
          "on_connect 0\n")
def _(s):
    goodbye(handshake(s, connect("conf-wprops", level=5, will=("conf/will", "gone", 1, True), will_props=properties(
        ("PayloadFormatIndicator", 1), ("MessageExpiryInterval", 600), ("ContentType", "text/plain"),
        ("ResponseTopic", "conf/re"), ("CorrelationData", b"\x00\x01\xff"), ("WillDelayInterval", 30),
        ("UserProperty", ("w", "1")), ("UserProperty", ("w", "2")))), 5))


# every property a client may put in a PUBLISH (SubscriptionIdentifier is the server's)
PUBLISH_PROPS_LUA = r'''{ PayloadFormatIndicator = 1, MessageExpiryInterval = 60, ContentType = "text/plain; charset=utf-8",
  ResponseTopic = "conf/reply", CorrelationData = "\0\1\2\255", TopicAlias = 3,
  UserProperty = { { "k", "1" }, { "a", "2" }, { "k", "3" } } }'''
PUBLISH_PROPS = properties(
    ("PayloadFormatIndicator", 1), ("MessageExpiryInterval", 60), ("ContentType", "text/plain; charset=utf-8"),
    ("ResponseTopic", "conf/reply"), ("CorrelationData", b"\x00\x01\x02\xff"), ("TopicAlias", 3),
    ("UserProperty", ("k", "1")), ("UserProperty", ("a", "2")), ("UserProperty", ("k", "3")))
PUB_PROPS_SCRIPT = """local c = %s
c.on_publish = function(cl, _, mid, rc, p)
  out("on_publish " .. mid .. (rc and " " .. tostring(rc) .. " " .. show(p) or ""))
  cl:disconnect()
end
c.on_connect = function(cl) cl:publish("conf/p5", "payload", %d, false, %s) end
c:connect(HOST, PORT)
"""


@scenario("MQTTv5 PUBLISH QoS 0 with every publish property (binary CorrelationData, TopicAlias, "
          "UserProperty order with a repeated name)",
          PUB_PROPS_SCRIPT % (V5 % ("conf-pprops", ", store = false"), 0, PUBLISH_PROPS_LUA))
def _(s):
    c = s.accept()
    c.expect("CONNECT", connect("conf-pprops", level=5))
    c.send(connack(0, level=5, props=properties(("TopicAliasMaximum", 10))))
    c.expect("PUBLISH", publish("conf/p5", "payload", 0, level=5, props=PUBLISH_PROPS))
    goodbye(c)


@scenario("MQTTv5 PUBLISH QoS 1 with every publish property, through the store: the same bytes; "
          "the PUBACK's reason (0x10) and ReasonString reach on_publish (VERSION2)",
          PUB_PROPS_SCRIPT % (V5 % ("conf-pprops1", VERSION2), 1, PUBLISH_PROPS_LUA),
          "on_publish 1 No matching subscribers ReasonString=nobody listens\n")
def _(s):
    c = s.accept()
    c.expect("CONNECT", connect("conf-pprops1", level=5))
    c.send(connack(0, level=5, props=properties(("TopicAliasMaximum", 10))))
    c.expect("PUBLISH", publish("conf/p5", "payload", 1, mid=1, level=5, props=PUBLISH_PROPS))
    c.send(puback(1, 0x10, properties(("ReasonString", "nobody listens"))))
    goodbye(c)


SUB5 = """local SO = mqtt.SubscribeOptions
local c = %s
c.on_subscribe = function(cl, _, mid, rcs, p)
  out("on_subscribe " .. mid .. " " .. names(rcs) .. " | " .. show(p))
  cl:disconnect()
end
c.on_connect = function(cl) cl:subscribe(%s) end
c:connect(HOST, PORT)
"""


@scenario("MQTTv5 SUBSCRIBE with SubscribeOptions (no_local, retain_as_published, retain_handling 2), "
          "SubscriptionIdentifier and UserProperty; SUBACK properties reach on_subscribe",
          SUB5 % (V5 % ("conf-subopts", VERSION2), '''{ topic = "so/#",
  options = SO { qos = 1, no_local = true, retain_as_published = true, retain_handling = 2 },
  properties = { SubscriptionIdentifier = 42, UserProperty = { { "s", "1" }, { "r", "2" } } } }'''),
          "on_subscribe 1 Granted QoS 1 | ReasonString=granted UserProperty=[q=1]\n")
def _(s):
    c = handshake(s, connect("conf-subopts", level=5), 5)
    # options: QoS 1 | no local 0x04 | retain as published 0x08 | retain handling 2 << 4
    c.expect("SUBSCRIBE", subscribe(1, [("so/#", 0x01 | 0x04 | 0x08 | 0x20)], level=5, props=properties(
        ("SubscriptionIdentifier", 42), ("UserProperty", ("s", "1")), ("UserProperty", ("r", "2")))))
    c.send(suback(1, [1], level=5, props=properties(("ReasonString", "granted"), ("UserProperty", ("q", "1")))))
    goodbye(c)


@scenario("MQTTv5 SUBSCRIBE a list with retain_handling 1 and the largest SubscriptionIdentifier "
          "(268435455, 4-byte varint); SUBACK 0x02 and 0x87",
          SUB5 % (V5 % ("conf-subid", VERSION2), '''{ { "sb/a", SO { qos = 2, retain_handling = 1 } },
  { "sb/b", SO { qos = 2, retain_handling = 1 } } }, nil, nil, { SubscriptionIdentifier = 268435455 }'''),
          "on_subscribe 1 Granted QoS 2,Not authorized | \n")
def _(s):
    c = handshake(s, connect("conf-subid", level=5), 5)
    sub = subscribe(1, [("sb/a", 0x12), ("sb/b", 0x12)], level=5,
                    props=properties(("SubscriptionIdentifier", 268435455)))
    if b"\x0b\xff\xff\xff\x7f" not in sub:
        raise Failure("the scenario's own varint encoding is wrong: %s" % hexs(sub))
    c.expect("SUBSCRIBE", sub)
    c.send(suback(1, [2, 0x87], level=5))
    goodbye(c)


# libmosquitto 2.0.11 hands on no UNSUBACK reason codes (README): the list is empty
@scenario("MQTTv5 UNSUBSCRIBE with UserProperty (order and a repeated name kept); the UNSUBACK's "
          "ReasonString reaches on_unsubscribe (VERSION2), its reason codes do not",
          """local c = %s
c.on_unsubscribe = function(cl, _, mid, rcs, p)
  out("on_unsubscribe " .. mid .. " " .. names(rcs) .. " | " .. show(p))
  cl:disconnect()
end
c.on_connect = function(cl)
  cl:unsubscribe({ "u5/a", "u5/b" }, { UserProperty = { { "why", "done" }, { "who", "conf" }, { "why", "again" } } })
end
c:connect(HOST, PORT)
""" % (V5 % ("conf-unsub5", VERSION2)),
          "on_unsubscribe 1  | ReasonString=partly\n")
def _(s):
    c = handshake(s, connect("conf-unsub5", level=5), 5)
    c.expect("UNSUBSCRIBE", unsubscribe(1, ["u5/a", "u5/b"], level=5, props=properties(
        ("UserProperty", ("why", "done")), ("UserProperty", ("who", "conf")), ("UserProperty", ("why", "again")))))
    c.send(unsuback(1, level=5, reasons=[0x00, 0x11], props=properties(("ReasonString", "partly"))))
    goodbye(c)


@scenario("MQTTv5 DISCONNECT with reason code 4 (with will) and properties",
          connect_then_disconnect(V5 % ("conf-disc5", ""), 'c:will_set("conf/w", "x")').replace(
              "cl:disconnect()", 'cl:disconnect(4, { SessionExpiryInterval = 0, ReasonString = "bye", '
              'UserProperty = { { "d", "1" } } })'), "on_connect 0\n")
def _(s):
    c = handshake(s, connect("conf-disc5", level=5, will=("conf/w", "x", 0, False)), 5)
    c.expect("DISCONNECT", disconnect(0x04, properties(
        ("SessionExpiryInterval", 0), ("ReasonString", "bye"), ("UserProperty", ("d", "1")))))
    c.expect_closed()


# Every CONNACK property but the authentication ones and AssignedClientIdentifier,
# which a server sends only to a client that connected with an empty id [MQTT-3.2.2-16]
# (mqlua never does; libmosquitto takes it as a protocol error otherwise).
CONNACK_PROPS = [
    ("SessionExpiryInterval", 120), ("ServerKeepAlive", 30),
    ("ResponseInformation", "resp/"), ("ServerReference", "other:1883"), ("ReasonString", "welcome"),
    ("ReceiveMaximum", 5), ("TopicAliasMaximum", 4), ("MaximumQoS", 1), ("RetainAvailable", 0),
    ("UserProperty", ("srv", "b")), ("UserProperty", ("srv", "a")), ("MaximumPacketSize", 4096),
    ("WildcardSubscriptionAvailable", 1), ("SubscriptionIdentifierAvailable", 0),
    ("SharedSubscriptionAvailable", 1)]


@scenario("MQTTv5 CONNACK properties (14 kinds, UserProperty twice) reach on_connect (VERSION1's v5 form)",
          """local c = %s
c.on_connect = function(cl, _, flags, rc, p)
  out("on_connect " .. tostring(rc) .. " | " .. show(p))
  cl:disconnect()
end
c:connect(HOST, PORT)
""" % (V5 % ("conf-connack", "")),
          "on_connect Success | MaximumPacketSize=4096 MaximumQoS=1 "
          "ReasonString=welcome ReceiveMaximum=5 ResponseInformation=resp/ RetainAvailable=0 ServerKeepAlive=30 "
          "ServerReference=other:1883 SessionExpiryInterval=120 SharedSubscriptionAvailable=1 "
          "SubscriptionIdentifierAvailable=0 TopicAliasMaximum=4 UserProperty=[srv=b,srv=a] "
          "WildcardSubscriptionAvailable=1\n")
def _(s):
    c = s.accept()
    c.expect("CONNECT", connect("conf-connack", level=5))
    c.send(connack(0, level=5, props=properties(*CONNACK_PROPS)))
    goodbye(c)


@scenario("MQTTv5 PUBLISH in with properties: msg.properties (binary CorrelationData, UserProperty in order, "
          "SubscriptionIdentifier as a list); PUBACK",
          """local c = %s
c.on_message = function(cl, _, m)
  out(m.topic, m.payload, m.qos, show(m.properties))
  cl:disconnect()
end
c:connect(HOST, PORT)
""" % (V5 % ("conf-recv5", "")),
          "in5/p\tdata\t1\tContentType=text/plain CorrelationData=0x00ff01 MessageExpiryInterval=30 "
          "PayloadFormatIndicator=1 ResponseTopic=in5/reply SubscriptionIdentifier=[300] "
          "UserProperty=[b=2,a=1,b=3]\n")
def _(s):
    c = handshake(s, connect("conf-recv5", level=5), 5)
    c.send(publish("in5/p", "data", 1, mid=12, level=5, props=properties(
        ("PayloadFormatIndicator", 1), ("MessageExpiryInterval", 30), ("ContentType", "text/plain"),
        ("ResponseTopic", "in5/reply"), ("CorrelationData", b"\x00\xff\x01"), ("UserProperty", ("b", "2")),
        ("UserProperty", ("a", "1")), ("UserProperty", ("b", "3")), ("SubscriptionIdentifier", 300))))
    c.expect("PUBACK", puback(12))
    goodbye(c)


# libmosquitto 2.0.11 reads a DISCONNECT's properties but hands them on to nobody (README)
@scenario("MQTTv5 DISCONNECT from the broker with reason 0x8B and properties: on_disconnect (VERSION2) gets "
          "the reason and the server flag, empty properties",
          """local c = %s
c.on_disconnect = function(cl, _, flags, rc, p)
  out("on_disconnect " .. tostring(flags.is_disconnect_packet_from_server) .. " " .. tostring(rc) .. " | " .. show(p))
  cl:disconnect()   -- no reconnect
end
c:connect(HOST, PORT)
""" % (V5 % ("conf-sdisc", VERSION2)),
          "on_disconnect true Server shutting down | \n")
def _(s):
    c = handshake(s, connect("conf-sdisc", level=5), 5)
    c.send(disconnect(0x8B, properties(("ReasonString", "maintenance"), ("ServerReference", "other:1883"),
                                       ("UserProperty", ("k", "v")))))
    c.close()



# ---------------------------------------------------------------------------
# the paho helpers (mqlua.publish / mqlua.subscribe)


@scenario("publish.single QoS 1: CONNECT, PUBLISH, PUBACK, DISCONNECT; returns after the PUBACK",
          """local publish = require "mqlua.publish"
publish.single("h/t", "x", 1, true, HOST, PORT, "conf-helper", 30)
out("returned")
""", "returned\n")
def _(s):
    c = handshake(s, connect("conf-helper", keepalive=30))
    c.expect("PUBLISH", publish("h/t", "x", 1, retain=True, mid=1))
    early = c.packets_for(0.5)   # nothing (no DISCONNECT) before the PUBACK
    want_packets("before the PUBACK", early, [])
    c.send(puback(1))
    goodbye(c)


@scenario("subscribe.simple: a SUBACK refusal (0x80) raises",
          """local subscribe = require "mqlua.subscribe"
local ok, err = pcall(subscribe.simple, "h/#", 1, 1, true, HOST, PORT, "conf-helper-sub")
out(ok, (tostring(err):gsub("^.-: simple", "simple")))
""", "false\tsimple: the broker refused the subscription to h/# (reason 128)\n")
def _(s):
    c = handshake(s, connect("conf-helper-sub"))
    c.expect("SUBSCRIBE", subscribe(1, [("h/#", 1)]))
    c.send(suback(1, [0x80]))
    goodbye(c)


@scenario("subscribe.simple over MQTTv5: a SUBACK reason 0x87 raises",
          """local subscribe = require "mqlua.subscribe"
local ok, err = pcall(subscribe.simple, { topics = "h5/#", hostname = HOST, port = PORT,
  client_id = "conf-helper-v5", protocol = mqtt.MQTTv5 })
out(ok, (tostring(err):gsub("^.-: simple", "simple")))
""", "false\tsimple: the broker refused the subscription to h5/# (reason 135)\n")
def _(s):
    c = handshake(s, connect("conf-helper-v5", level=5), 5)
    c.expect("SUBSCRIBE", subscribe(1, [("h5/#", 0)], level=5))
    c.send(suback(1, [0x87], level=5))
    goodbye(c)


@scenario("publish.single over MQTTv5: a CONNACK reason 0x87 raises with its name",
          """local publish = require "mqlua.publish"
local ok, err = pcall(publish.single, { topic = "h5", hostname = HOST, port = PORT,
  client_id = "conf-helper-v5", protocol = mqtt.MQTTv5 })
out(ok, (tostring(err):gsub("^.-: single", "single")))
""", lambda out: None if re.fullmatch(
    r"false\tsingle: 127\.0\.0\.1:\d+ refused the connection: Not authorized\n", out) else
    "stdout: %r" % out)
def _(s):
    c = s.accept()
    c.expect("CONNECT", connect("conf-helper-v5", level=5))
    c.send(connack(0x87, level=5))
    c.expect_closed()


if __name__ == "__main__":
    sys.exit(run_all(SCENARIOS))
