#!/usr/bin/python3
"""paho_bench.py - the paho-mqtt (Python) peer of the mqlua benchmarks.

    paho_bench.py recv     HOST PORT TOPIC COUNT QOS CLIENT_ID
    paho_bench.py pub      HOST PORT TOPIC COUNT QOS PAYLOAD_BYTES
    paho_bench.py pingpong HOST PORT N
    paho_bench.py filters  HOST PORT PREFIX COUNT NFILTERS CLIENT_ID
    paho_bench.py idle     HOST PORT TOPIC
    paho_bench.py retained HOST PORT FILTER COUNT

The same work, arguments and result lines as build/bench/ref_client and
tests/bench/*.lua (see tests/bench/run), written the way the paho-mqtt
documentation shows: callbacks and loop_forever() on the main thread.
Needs Debian's python3-paho-mqtt (1.6), run with /usr/bin/python3.
"""
import sys
import time

import paho.mqtt.client as mqtt

PING, PONG = "bench/ping", "bench/pong"


def fail(*words):
    print("paho_bench.py:", *words, file=sys.stderr)
    sys.exit(1)


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def connect(client, host, port):
    rc = client.connect(host, port, 60)
    if rc != mqtt.MQTT_ERR_SUCCESS:
        fail("connect %s:%d failed, rc %d" % (host, port, rc))


def on_connect_subscribe(topic, qos):
    def on_connect(client, userdata, flags, rc):
        if rc != 0:
            fail("connection refused, rc", rc)
        client.subscribe(topic, qos)
    return on_connect


def print_rate(mode, count, seconds):
    print("%s %d %.6f %.0f" % (mode, count, seconds, count / seconds if seconds > 0 else 0), flush=True)


def drain(count):
    """A callback counting messages; at the count-th it prints the rate and disconnects."""
    state = {"n": 0, "first": None}

    def counted(client, userdata, msg):
        state["n"] += 1
        if state["n"] == 1:
            state["first"] = time.monotonic()
        if state["n"] == count:
            print_rate("recv", count, time.monotonic() - state["first"])
            client.disconnect()
    return state, counted


def mode_recv(host, port, topic, count, qos, client_id):
    c = mqtt.Client(client_id, clean_session=False)
    c.on_connect = on_connect_subscribe(topic, int(qos))
    state, counted = drain(int(count))
    c.on_message = counted
    connect(c, host, int(port))
    c.loop_forever()
    if state["n"] != int(count):
        fail("loop ended after %d of %s messages" % (state["n"], count))


def sensor_filters(prefix):
    """The 10,000 filters of the filters workload: PREFIX/sensors/roomR/devD/METRIC, devices
    1..9 by name and the tenth as '+'; only PREFIX/sensors/room42/+/temp matches the stream."""
    metrics = ["temp", "humidity", "co2", "lux", "motion", "door", "window", "power", "voltage", "battery"]
    for room in range(1, 101):
        for dev in range(1, 11):
            device = "+" if dev == 10 else "dev%d" % dev
            for metric in metrics:
                yield "%s/sensors/room%d/%s/%s" % (prefix, room, device, metric)


def mode_filters(host, port, prefix, count, nfilters, client_id):
    count, nfilters = int(count), int(nfilters)
    c = mqtt.Client(client_id, clean_session=False)
    c.on_connect = on_connect_subscribe(prefix + "/#", 0)
    state, counted = drain(count)
    match = prefix + "/sensors/room42/+/temp"
    filters = list(sensor_filters(prefix)) if nfilters > 1 else [match]
    if len(filters) != nfilters or match not in filters:
        fail("NFILTERS must be 1 or 10000")
    for f in filters:
        c.message_callback_add(f, counted if f == match else lambda *a: fail("wrong filter matched"))
    c.on_message = lambda *a: fail("no filter matched")
    connect(c, host, int(port))
    c.loop_forever()
    if state["n"] != count:
        fail("loop ended after %d of %d messages" % (state["n"], count))


def mode_pub(host, port, topic, count, qos, payload_bytes):
    """As pub.lua: WINDOW publishes from on_connect, topped up from on_publish whenever at
    most WINDOW/2 are unconfirmed (paho cannot hold more than 65535 unacknowledged: the
    packet ids would repeat)."""
    window = 1000
    count, qos = int(count), int(qos)
    payload = b"x" * int(payload_bytes)
    state = {"sent": 0, "confirmed": 0, "start": None}

    def top_up(client):
        target = min(count, state["confirmed"] + window)
        while state["sent"] < target:
            info = client.publish(topic, payload, qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                fail("publish %d failed, rc %d" % (state["sent"], info.rc))
            state["sent"] += 1

    def on_connect(client, userdata, flags, rc):
        if rc != 0:
            fail("connection refused, rc", rc)
        state["start"] = time.monotonic()
        top_up(client)

    def on_publish(client, userdata, mid):
        state["confirmed"] += 1
        if state["confirmed"] == count:
            print_rate("pub", count, time.monotonic() - state["start"])
            client.disconnect()
        elif state["sent"] < count and state["sent"] - state["confirmed"] <= window // 2:
            top_up(client)

    c = mqtt.Client()
    c.on_connect = on_connect
    c.on_publish = on_publish
    connect(c, host, int(port))
    c.loop_forever()
    if state["confirmed"] != count:
        fail("loop ended after %d of %d confirmations" % (state["confirmed"], count))


def percentile(sorted_values, p):
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[int(rank) - 1]


def mode_pingpong(host, port, n):
    n = int(n)
    payload = b"p" * 64
    rtts = []
    state = {"sent": 0.0}

    def ping(client):
        state["sent"] = time.monotonic()
        client.publish(PING, payload, 0)

    def on_subscribe(client, userdata, mid, granted):
        ping(client)

    def on_message(client, userdata, msg):
        rtts.append(time.monotonic() - state["sent"])
        if len(rtts) == n:
            client.disconnect()
        else:
            ping(client)

    c = mqtt.Client()
    c.on_connect = on_connect_subscribe(PONG, 0)
    c.on_subscribe = on_subscribe
    c.on_message = on_message
    connect(c, host, int(port))
    c.loop_forever()
    rtts.sort()
    print("pingpong %d %.1f %.1f" % (len(rtts), percentile(rtts, 50) * 1e6, percentile(rtts, 99) * 1e6), flush=True)


def mode_idle(host, port, topic):
    until = []

    def on_subscribe(client, userdata, mid, granted):
        until.append(time.monotonic() + 0.5)

    c = mqtt.Client()
    c.on_connect = on_connect_subscribe(topic, 1)
    c.on_subscribe = on_subscribe
    connect(c, host, int(port))
    while not until or time.monotonic() < until[0]:
        c.loop(0.1)
    print("rss %d" % rss_kb(), flush=True)
    c.disconnect()


def mode_retained(host, port, topic_filter, count):
    count = int(count)
    held = {}

    def on_message(client, userdata, msg):
        held[msg.topic] = msg.payload
        if len(held) == count:
            client.disconnect()

    c = mqtt.Client()
    c.on_connect = on_connect_subscribe(topic_filter, 0)
    c.on_message = on_message
    connect(c, host, int(port))
    c.loop_forever()
    if len(held) != count:
        fail("held %d of %d retained messages" % (len(held), count))
    print("rss %d" % rss_kb(), flush=True)


MODES = {"recv": (mode_recv, 6), "pub": (mode_pub, 6), "pingpong": (mode_pingpong, 3),
         "filters": (mode_filters, 6), "idle": (mode_idle, 3), "retained": (mode_retained, 4)}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES or len(sys.argv) - 2 != MODES[sys.argv[1]][1]:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(1)
    MODES[sys.argv[1]][0](*sys.argv[2:])
