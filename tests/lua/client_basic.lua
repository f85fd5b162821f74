-- client_basic.lua - the Client's everyday behaviour against a real broker:
-- construction, connect/disconnect, publish at every QoS with exact payloads,
-- retained messages, every subscribe and unsubscribe form, on_publish and
-- MQTTMessageInfo, message_callback_add/remove, userdata, reinitialise,
-- the will, and several clients in one script.
package.path = "tests/lib/?.lua;" .. package.path
local T = require "testlib"
local mqtt = require "mqlua"
local test = T.test

local broker = T.broker()

-- A client connected to the test broker; fails the test if it does not connect.
local function connected(t, id, clean)
	local c = mqtt.Client(id, clean)
	t:eq(c:connect(), mqtt.MQTT_ERR_SUCCESS, id .. ": connect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), id .. ": connected within 5 s")
	return c
end

-- Subscribes c and waits for the SUBACK (the subscription is active then).
local function subscribed(t, c, ...)
	local acked = false
	local before = c.on_subscribe
	c.on_subscribe = function(...)
		acked = true
		if before then before(...) end
	end
	local rc, mid = c:subscribe(...)
	t:eq(rc, 0, "subscribe rc")
	t:ok(T.wait_until(function() return acked end), "SUBACK within 5 s")
	c.on_subscribe = before
	return mid
end

-- Makes c record every message it gets in the returned list.
local function collector(c)
	local got = {}
	c.on_message = function(_, _, msg)
		got[#got + 1] = { topic = msg.topic, payload = msg.payload, qos = msg.qos, retain = msg.retain }
	end
	return got
end

local function payloads(list)
	local out = {}
	for i, m in ipairs(list) do out[i] = m.payload end
	return out
end

---------------------------------------------------------------------------
-- construction

test("Client() positional form sets id, clean_session and protocol", function(t)
	local c = mqtt.Client("basic-pos", false, nil, mqtt.MQTTv31)
	t:eq(c.client_id, "basic-pos", "client_id")
	t:eq(c.clean_session, false, "clean_session")
	t:eq(c.protocol, mqtt.MQTTv31, "protocol")
	t:eq(c.transport, "tcp", "transport")
	t:eq(c:is_connected(), false, "not connected before connect()")
	t:eq(c.host, nil, "no host before connect()")
end)

test("Client{} table form takes the same names", function(t)
	local ud = {}
	local c = mqtt.Client{ client_id = "basic-tbl", clean_session = false, userdata = ud, protocol = mqtt.MQTTv311 }
	t:eq(c.client_id, "basic-tbl", "client_id")
	t:eq(c.clean_session, false, "clean_session")
	t:eq(c.protocol, mqtt.MQTTv311, "protocol")
	t:ok(rawequal(c:user_data_get(), ud), "userdata from the table form")
end)

test("Client() defaults: a generated id, clean session, MQTT 3.1.1", function(t)
	local a, b = mqtt.Client(), mqtt.Client()
	t:match(a.client_id, "^mqlua%-", "generated id")
	t:ok(a.client_id ~= b.client_id, "two generated ids differ: " .. a.client_id)
	t:eq(a.clean_session, true, "clean_session default")
	t:eq(a.protocol, mqtt.MQTTv311, "protocol default")
	t:eq(mqtt.Client{ client_id = "" }.clean_session, true, "empty id with the default clean session")
end)

test("empty client_id with clean_session=false raises", function(t)
	t:raises(function() mqtt.Client("", false) end, "a client_id must be provided if clean_session is false")
	t:raises(function() mqtt.Client(nil, false) end, "a client_id must be provided if clean_session is false")
	t:raises(function() mqtt.Client{ client_id = "", clean_session = false } end,
		"a client_id must be provided if clean_session is false")
end)

test("Client() rejects bad protocol, transport, clean_session and unknown keys", function(t)
	t:raises(function() mqtt.Client("x", true, nil, 7) end, "protocol must be mqtt%.MQTTv31, mqtt%.MQTTv311 or mqtt%.MQTTv5")
	t:raises(function() mqtt.Client("x", true, nil, mqtt.MQTTv311, "websockets") end,
		"transport 'websockets' is not supported")
	t:raises(function() mqtt.Client("x", "yes") end, "clean_session must be a boolean, got string")
	t:raises(function() mqtt.Client{ client_id = "x", clean_sesion = true } end, "unknown argument 'clean_sesion'")
	t:raises(function() mqtt.Client("a\0b") end, "client_id must be valid UTF%-8 without NUL characters")
end)

---------------------------------------------------------------------------
-- connecting

test("connect, on_connect, is_connected, disconnect, on_disconnect", function(t)
	local c = mqtt.Client("basic-conn")
	local events = {}
	c.on_connect = function(client, userdata, flags, rc)
		events[#events + 1] = { "connect", rawequal(client, c), flags.session_present, rc }
	end
	c.on_disconnect = function(client, userdata, rc)
		events[#events + 1] = { "disconnect", rawequal(client, c), rc }
	end
	local n = select("#", c:connect(broker.host, broker.port, 30))
	t:eq(n, 1, "connect returns only rc on success")
	t:ok(T.wait_until(function() return #events >= 1 end), "on_connect called")
	t:eq(events[1], { "connect", true, false, 0 }, "on_connect(client, userdata, flags, rc)")
	t:eq(c:is_connected(), true, "is_connected after CONNACK")
	t:eq(c.host, broker.host, "host")
	t:eq(c.port, broker.port, "port")
	t:eq(c.keepalive, 30, "keepalive")
	t:match(tostring(c), '^mqlua%.Client%("basic%-conn", 127%.0%.0%.1:%d+, connected%)$', "tostring")
	t:eq(c:disconnect(), 0, "disconnect rc")
	t:ok(T.wait_until(function() return #events >= 2 end), "on_disconnect called")
	t:eq(events[2], { "disconnect", true, 0 }, "on_disconnect(client, userdata, 0) after disconnect()")
	t:eq(c:is_connected(), false, "is_connected after disconnect")
	t:eq(c:last_error(), nil, "no last_error after a clean session")
	mqtt.sleep(0.2)
	t:eq(#events, 2, "no further callbacks after disconnect")
end)

test("connect() without a host uses the test broker; reconnect() after disconnect", function(t)
	local c = connected(t, "basic-default")
	t:eq(c.port, broker.port, "went to the default broker")
	t:eq(c:disconnect(), 0, "disconnect")
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")
	t:eq(c:reconnect(), 0, "reconnect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected again")
	c:disconnect()
end)

---------------------------------------------------------------------------
-- publishing

test("publish at QoS 0, 1 and 2 arrives with its qos and exact payload", function(t)
	local sub = connected(t, "basic-q-sub")
	local got = collector(sub)
	subscribed(t, sub, "q/#", 2)
	local pub = connected(t, "basic-q-pub")
	for q = 0, 2 do
		local info = pub:publish("q/" .. q, "payload at qos " .. q, q)
		t:eq(info.rc, 0, "rc at qos " .. q)
	end
	t:ok(T.wait_until(function() return #got == 3 end), "three messages (got " .. #got .. ")")
	table.sort(got, function(a, b) return a.topic < b.topic end)
	for q = 0, 2 do
		t:eq(got[q + 1], { topic = "q/" .. q, payload = "payload at qos " .. q, qos = q, retain = false },
			"message at qos " .. q)
	end
	sub:disconnect()
	pub:disconnect()
end)

test("delivered qos is the lower of publish and subscription qos", function(t)
	local sub = connected(t, "basic-min-sub")
	local got = collector(sub)
	subscribed(t, sub, "min/#", 1)
	local pub = connected(t, "basic-min-pub")
	pub:publish("min/a", "two", 2)
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	t:eq(got[1].qos, 1, "qos 2 downgraded to the subscription's qos 1")
	sub:disconnect()
	pub:disconnect()
end)

test("payloads: binary with NULs, 100 KB, numbers, nil", function(t)
	local sub = connected(t, "basic-pl-sub")
	local got = collector(sub)
	subscribed(t, sub, "pl/#", 1)
	local pub = connected(t, "basic-pl-pub")
	local bytes = {}
	for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
	local binary = "\0" .. table.concat(bytes) .. "\0\0end\0"
	local big = {}
	for i = 1, 100 * 1024 do big[i] = string.char(i * 7 % 256) end
	big = table.concat(big)
	local cases = {
		{ "pl/binary", binary, binary },
		{ "pl/big", big, big },
		{ "pl/int", 42, "42" },
		{ "pl/float", 3.5, "3.5" },
		{ "pl/negative", -7, "-7" },
		{ "pl/nil", nil, "" },
		{ "pl/empty", "", "" },
	}
	for i, cs in ipairs(cases) do
		t:eq(pub:publish(cs[1], cs[2], 1).rc, 0, "publish " .. cs[1])
		-- strict order: one at a time, so got[i] is cases[i]
		t:ok(T.wait_until(function() return #got == i end), cs[1] .. " delivered")
		t:eq(got[i].topic, cs[1], "topic")
		t:eq(#got[i].payload, #cs[3], cs[1] .. " payload length")
		t:ok(got[i].payload == cs[3], cs[1] .. " payload bytes are exact")
	end
	t:eq(#big, 102400, "the big payload is 100 KB")
	sub:disconnect()
	pub:disconnect()
end)

test("publish with the keyword table form", function(t)
	local sub = connected(t, "basic-kw-sub")
	local got = collector(sub)
	subscribed(t, sub, "kw/#", 2)
	local pub = connected(t, "basic-kw-pub")
	local info = pub:publish{ topic = "kw/x", payload = "named", qos = 2 }
	t:eq(info.rc, 0, "rc")
	t:ok(info:wait_for_publish(5), "acknowledged")
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	t:eq(got[1], { topic = "kw/x", payload = "named", qos = 2, retain = false }, "message")
	sub:disconnect()
	pub:disconnect()
end)

test("message fields: mid, dup, timestamp, read-only", function(t)
	local sub = connected(t, "basic-fields-sub")
	local msg
	sub.on_message = function(_, _, m)
		msg = { mid = m.mid, dup = m.dup, timestamp = m.timestamp, qos = m.qos, str = tostring(m) }
		local ok, err = pcall(function() m.payload = "x" end)
		msg.write_ok, msg.write_err = ok, err
	end
	subscribed(t, sub, "fields/#", 1)
	local pub = connected(t, "basic-fields-pub")
	local before = mqtt.time()
	pub:publish("fields/a", "abc", 1)
	t:ok(T.wait_until(function() return msg end), "delivered")
	t:eq(math.type(msg.mid), "integer", "mid is an integer")
	t:ok(msg.mid > 0, "mid of a qos 1 message is a packet id > 0 (got " .. tostring(msg.mid) .. ")")
	t:eq(msg.dup, false, "dup")
	t:ok(msg.timestamp >= before and msg.timestamp <= mqtt.time(), "timestamp is mqlua.time() at arrival")
	t:eq(msg.str, "MQTTMessage(topic=fields/a, qos=1, retain=false, 3 bytes)", "tostring(msg)")
	t:eq(msg.write_ok, false, "assigning a field raises")
	t:match(msg.write_err, "MQTTMessage fields are read%-only", "error text")
	sub:disconnect()
	pub:disconnect()
end)

test("a retained message reaches a late subscriber with retain=true", function(t)
	local pub = connected(t, "basic-ret-pub")
	local live = connected(t, "basic-ret-live")
	local live_got = collector(live)
	subscribed(t, live, "ret/#", 1)
	t:ok(pub:publish("ret/state", "on", 1, true):wait_for_publish(5), "retained publish acknowledged")
	pub:publish("ret/plain", "not kept", 1, false):wait_for_publish(5)
	t:ok(T.wait_until(function() return #live_got == 2 end), "live subscriber got both")
	table.sort(live_got, function(a, b) return a.topic < b.topic end)
	t:eq(live_got[2].retain, false, "a live subscriber sees retain=false")

	local late = connected(t, "basic-ret-late")
	local got = collector(late)
	subscribed(t, late, "ret/#", 1)
	t:ok(T.wait_until(function() return #got == 1 end), "late subscriber got the retained message")
	mqtt.sleep(0.2)
	t:eq(got, { { topic = "ret/state", payload = "on", qos = 1, retain = true } }, "only the retained one")

	-- an empty retained payload clears it
	pub:publish("ret/state", nil, 1, true):wait_for_publish(5)
	local later = connected(t, "basic-ret-later")
	local got2 = collector(later)
	subscribed(t, later, { { "ret/#", 0 }, { "ret-sentinel", 0 } })
	pub:publish("ret-sentinel", "s", 0)
	t:ok(T.wait_until(function() return #got2 >= 1 end), "sentinel delivered")
	t:eq(payloads(got2), { "s" }, "the cleared retained message is gone")
	for _, c in ipairs { pub, live, late, later } do c:disconnect() end
end)

---------------------------------------------------------------------------
-- on_publish and MQTTMessageInfo

test("on_publish mids match info.mid; wait_for_publish and is_published", function(t)
	local c = connected(t, "basic-onpub")
	local acked, seen_client = {}, true
	c.on_publish = function(client, userdata, mid)
		acked[#acked + 1] = mid
		seen_client = seen_client and rawequal(client, c)
	end
	local infos = {}
	for q = 0, 2 do
		for n = 1, 3 do
			local info = c:publish("onpub/" .. q, "m" .. n, q)
			t:eq(info.rc, 0, "rc")
			t:eq(math.type(info.mid), "integer", "mid is an integer")
			infos[#infos + 1] = info
		end
	end
	for i, info in ipairs(infos) do
		t:eq(info:wait_for_publish(5), true, "wait_for_publish #" .. i)
		t:eq(info:is_published(), true, "is_published #" .. i)
	end
	t:ok(T.wait_until(function() return #acked == #infos end), "one on_publish per message (got " .. #acked .. ")")
	local want, have = {}, {}
	for i, info in ipairs(infos) do want[i] = info.mid end
	for i, mid in ipairs(acked) do have[i] = mid end
	table.sort(want)
	table.sort(have)
	t:eq(have, want, "on_publish mids are the info.mids")
	local distinct = {}
	for _, m in ipairs(want) do distinct[m] = true end
	local n = 0
	for _ in pairs(distinct) do n = n + 1 end
	t:eq(n, #infos, "every publish has its own mid")
	t:ok(seen_client, "on_publish got the client")
	t:match(tostring(infos[2]), "^MQTTMessageInfo%(mid=%d+, rc=0, published%)$", "tostring(info)")
	c:disconnect()
end)

test("a QoS 2 publish is pending until its PUBCOMP", function(t)
	local c = connected(t, "basic-pending")
	local info = c:publish("pending/x", "y", 2)
	t:eq(info:is_published(), false, "not published before the broker answered")
	t:eq(info:wait_for_publish(5), true, "published after the handshake")
	c:disconnect()
end)

test("max_inflight_messages_set(1): 30 QoS 1 messages all arrive in order", function(t)
	local sub = connected(t, "basic-inflight-sub")
	local got = collector(sub)
	subscribed(t, sub, "inflight/#", 1)
	local pub = mqtt.Client("basic-inflight-pub")
	pub:max_inflight_messages_set(1)
	pub:connect()
	t:ok(T.wait_until(function() return pub:is_connected() end), "connected")
	local last
	for i = 1, 30 do last = pub:publish("inflight/x", i, 1) end
	t:ok(last:wait_for_publish(10), "the last one was acknowledged")
	t:ok(T.wait_until(function() return #got == 30 end), "30 delivered (got " .. #got .. ")")
	local want = {}
	for i = 1, 30 do want[i] = tostring(i) end
	t:eq(payloads(got), want, "in order")
	sub:disconnect()
	pub:disconnect()
end)

---------------------------------------------------------------------------
-- subscribing

test("subscribe(topic) and subscribe(topic, qos): rc, mid, on_subscribe", function(t)
	local c = connected(t, "basic-sub1")
	local acks = {}
	c.on_subscribe = function(client, userdata, mid, granted)
		acks[#acks + 1] = { mid = mid, granted = granted, client = rawequal(client, c) }
	end
	local rc1, mid1 = c:subscribe("s1/a")
	local rc2, mid2 = c:subscribe("s1/b", 2)
	local rc3, mid3 = c:subscribe{ topic = "s1/c", qos = 1 }
	t:eq({ rc1, rc2, rc3 }, { 0, 0, 0 }, "rcs")
	t:ok(mid1 ~= mid2 and mid2 ~= mid3 and mid1 ~= mid3, "three distinct mids")
	t:ok(T.wait_until(function() return #acks == 3 end), "three on_subscribe")
	table.sort(acks, function(a, b) return a.mid < b.mid end)
	local want = { { mid = mid1, granted = { 0 }, client = true }, { mid = mid2, granted = { 2 }, client = true },
		{ mid = mid3, granted = { 1 }, client = true } }
	table.sort(want, function(a, b) return a.mid < b.mid end)
	t:eq(acks, want, "on_subscribe(client, userdata, mid, granted_qos)")
	c:disconnect()
end)

test("subscribe({topic, qos}) form", function(t)
	local c = connected(t, "basic-sub2")
	local acks = {}
	c.on_subscribe = function(_, _, mid, granted) acks[#acks + 1] = { mid, granted } end
	local rc, mid = c:subscribe({ "s2/#", 1 })
	t:eq(rc, 0, "rc")
	t:ok(T.wait_until(function() return #acks == 1 end), "on_subscribe")
	t:eq(acks[1], { mid, { 1 } }, "mid and granted")
	local got = collector(c)
	c:publish("s2/x/y", "deep", 1)
	t:ok(T.wait_until(function() return #got == 1 end), "delivered through the {topic, qos} subscription")
	t:eq(got[1].qos, 1, "at the subscribed qos")
	c:disconnect()
end)

test("a mixed-qos list gives one on_subscribe with granted qos in list order", function(t)
	local c = connected(t, "basic-sub3")
	local acks = {}
	c.on_subscribe = function(_, _, mid, granted) acks[#acks + 1] = { mid, granted } end
	local list = { { "s3/a", 0 }, { "s3/b/#", 2 }, { "s3/c", 1 }, { "s3/d", 0 }, { "s3/+/e", 2 }, { "s3/f", 1 } }
	local rc, mid = c:subscribe(list)
	t:eq(rc, 0, "rc")
	t:eq(math.type(mid), "integer", "one mid")
	t:ok(T.wait_until(function() return #acks >= 1 end), "on_subscribe")
	mqtt.sleep(0.3)
	t:eq(#acks, 1, "exactly one on_subscribe for one subscribe() call")
	t:eq(acks[1], { mid, { 0, 2, 1, 0, 2, 1 } }, "the returned mid, granted qos in list order")
	-- and every filter is live, at its qos
	local got = collector(c)
	local topics = { "s3/a", "s3/b/x", "s3/c", "s3/d", "s3/x/e", "s3/f" }
	for _, tp in ipairs(topics) do c:publish(tp, tp, 2) end
	t:ok(T.wait_until(function() return #got == 6 end), "six messages (got " .. #got .. ")")
	local qos = {}
	for _, m in ipairs(got) do qos[m.topic] = m.qos end
	t:eq(qos, { ["s3/a"] = 0, ["s3/b/x"] = 2, ["s3/c"] = 1, ["s3/d"] = 0, ["s3/x/e"] = 2, ["s3/f"] = 1 },
		"each delivered at its own filter's qos")
	c:disconnect()
end)

test("a 192-filter subscribe and a 64-topic unsubscribe", function(t)
	local c = connected(t, "basic-bigsub")
	local acks, unacks = {}, 0
	c.on_subscribe = function(_, _, mid, granted) acks[#acks + 1] = { mid, granted } end
	c.on_unsubscribe = function() unacks = unacks + 1 end
	local list, want, topics = {}, {}, {}
	for i = 1, 192 do
		list[i] = { "big/" .. i, i % 3 }
		want[i] = i % 3
	end
	local rc, mid = c:subscribe(list)
	t:eq(rc, 0, "subscribe rc")
	t:ok(T.wait_until(function() return #acks >= 1 end), "on_subscribe")
	mqtt.sleep(0.2)
	t:eq(#acks, 1, "one on_subscribe")
	t:eq(acks[1][1], mid, "mid")
	t:eq(acks[1][2], want, "192 granted qos in list order")
	local got = collector(c)
	for i = 1, 192 do c:publish("big/" .. i, i, 2) end
	t:ok(T.wait_until(function() return #got == 192 end), "192 messages (" .. #got .. ")")
	for i = 1, 64 do topics[i] = "big/" .. i end
	t:eq(c:unsubscribe(topics), 0, "unsubscribe 64 topics")
	t:ok(T.wait_until(function() return unacks == 1 end), "on_unsubscribe")
	got = collector(c)
	c:publish("big/1", "gone", 1)
	c:publish("big/65", "kept", 1)
	t:ok(T.wait_until(function() return #got >= 1 end), "kept one delivered")
	mqtt.sleep(0.2)
	t:eq(payloads(got), { "kept" }, "the unsubscribed filter is silent")
	c:disconnect()
end)

test("subscribe while not connected returns MQTT_ERR_NO_CONN", function(t)
	local c = mqtt.Client("basic-sub-noconn")
	local rc, mid = c:subscribe("x")
	t:eq(rc, mqtt.MQTT_ERR_NO_CONN, "rc")
	t:eq(mid, nil, "no mid")
	local urc, umid = c:unsubscribe("x")
	t:eq(urc, mqtt.MQTT_ERR_NO_CONN, "unsubscribe rc")
	t:eq(umid, nil, "no unsubscribe mid")
end)

---------------------------------------------------------------------------
-- unsubscribing

test("unsubscribe(topic) and unsubscribe({...}) stop delivery; on_unsubscribe mids", function(t)
	local sub = connected(t, "basic-unsub")
	local got = collector(sub)
	local unacks = {}
	sub.on_unsubscribe = function(client, userdata, mid) unacks[#unacks + 1] = { rawequal(client, sub), mid } end
	subscribed(t, sub, { { "u/a", 1 }, { "u/b", 1 }, { "u/c", 1 }, { "u/keep", 1 } })
	local pub = connected(t, "basic-unsub-pub")

	local rc1, mid1 = sub:unsubscribe("u/a")
	t:eq(rc1, 0, "unsubscribe(string) rc")
	t:ok(T.wait_until(function() return #unacks == 1 end), "on_unsubscribe after the string form")
	t:eq(unacks[1], { true, mid1 }, "on_unsubscribe(client, userdata, mid)")

	local rc2, mid2 = sub:unsubscribe({ "u/b", "u/c" })
	t:eq(rc2, 0, "unsubscribe(list) rc")
	t:ok(mid2 ~= mid1, "a new mid")
	t:ok(T.wait_until(function() return #unacks == 2 end), "one on_unsubscribe for the list")
	mqtt.sleep(0.2)
	t:eq(#unacks, 2, "exactly one on_unsubscribe for the list")
	t:eq(unacks[2], { true, mid2 }, "mid of the list form")

	for _, tp in ipairs { "u/a", "u/b", "u/c" } do pub:publish(tp, "gone", 1) end
	pub:publish("u/keep", "kept", 1)
	t:ok(T.wait_until(function() return #got >= 1 end), "the kept subscription still delivers")
	mqtt.sleep(0.2)
	t:eq(got, { { topic = "u/keep", payload = "kept", qos = 1, retain = false } },
		"nothing from the unsubscribed filters")
	sub:disconnect()
	pub:disconnect()
end)

---------------------------------------------------------------------------
-- message_callback_add / remove

test("message callbacks: overlapping filters all run, on_message only when none matched", function(t)
	local c = connected(t, "basic-mcb")
	local calls = {}
	local function rec(tag)
		return function(client, userdata, msg)
			calls[#calls + 1] = tag .. ":" .. msg.topic
			t:ok(rawequal(client, c), "callback got the client")
		end
	end
	c.on_message = rec("on_message")
	c:message_callback_add("mcb/#", rec("hash"))
	c:message_callback_add("mcb/+/x", rec("plus"))
	subscribed(t, c, "mcb/#", 1)
	local function run(topic, n)
		calls = {}
		c:publish(topic, "p", 1)
		t:ok(T.wait_until(function() return #calls >= n end), topic .. ": " .. n .. " callbacks")
		mqtt.sleep(0.1)
		table.sort(calls)
		return calls
	end
	t:eq(run("mcb/a/x", 2), { "hash:mcb/a/x", "plus:mcb/a/x" }, "both overlapping filters ran, not on_message")
	t:eq(run("mcb/a/y", 1), { "hash:mcb/a/y" }, "only the matching filter")

	-- adding the same filter again replaces its callback
	c:message_callback_add("mcb/+/x", rec("plus2"))
	t:eq(run("mcb/b/x", 2), { "hash:mcb/b/x", "plus2:mcb/b/x" }, "replaced callback")

	c:message_callback_remove("mcb/#")
	t:eq(run("mcb/a/y", 1), { "on_message:mcb/a/y" }, "on_message after the only matching filter was removed")
	t:eq(run("mcb/c/x", 1), { "plus2:mcb/c/x" }, "the other filter still runs")
	c:message_callback_remove("mcb/+/x")
	c:message_callback_remove("never/added")   -- removing an unknown filter is harmless
	t:eq(run("mcb/c/x", 1), { "on_message:mcb/c/x" }, "on_message once every filter is removed")
	c:disconnect()
end)

test("a message callback that removes itself does not stop the other matching ones", function(t)
	local c = connected(t, "basic-mcb-self")
	local calls = {}
	c:message_callback_add("self/#", function(client)
		calls[#calls + 1] = "A"
		client:message_callback_remove("self/#")
	end)
	c:message_callback_add("self/+", function() calls[#calls + 1] = "B" end)
	c:message_callback_add("+/x", function() calls[#calls + 1] = "C" end)
	subscribed(t, c, "self/x")
	c:publish("self/x", "1")
	t:ok(T.wait_until(function() return #calls >= 2 end), "callbacks ran")
	mqtt.sleep(0.2)
	table.sort(calls)
	t:eq(calls, { "A", "B", "C" }, "all three filters matched the message, so all three run")
	calls = {}
	c:publish("self/x", "2")
	t:ok(T.wait_until(function() return #calls >= 2 end), "callbacks ran again")
	mqtt.sleep(0.2)
	table.sort(calls)
	t:eq(calls, { "B", "C" }, "the removed one is gone for the next message")
	c:disconnect()
end)

---------------------------------------------------------------------------
-- userdata

test("user_data_set/get and the userdata every callback receives", function(t)
	local ud1, ud2 = { name = "first" }, { name = "second" }
	local c = mqtt.Client("basic-ud", true, ud1)
	t:ok(rawequal(c:user_data_get(), ud1), "constructor userdata")
	local seen = {}
	local function note(name) return function(_, userdata) seen[name] = userdata end end
	c.on_connect = note("on_connect")
	c.on_subscribe = note("on_subscribe")
	c.on_message = note("on_message")
	c.on_publish = note("on_publish")
	c.on_unsubscribe = note("on_unsubscribe")
	c:message_callback_add("ud/filtered", note("filter"))
	c:connect()
	t:ok(T.wait_until(function() return seen.on_connect end), "on_connect")
	t:ok(rawequal(seen.on_connect, ud1), "on_connect got the constructor userdata")
	c:user_data_set(ud2)
	t:ok(rawequal(c:user_data_get(), ud2), "user_data_get after set")
	c:subscribe("ud/#", 1)
	t:ok(T.wait_until(function() return seen.on_subscribe end), "on_subscribe")
	c:publish("ud/plain", "x", 1)
	c:publish("ud/filtered", "x", 1)
	t:ok(T.wait_until(function() return seen.on_message and seen.filter and seen.on_publish end), "messages")
	c:unsubscribe("ud/#")
	t:ok(T.wait_until(function() return seen.on_unsubscribe end), "on_unsubscribe")
	c.on_disconnect = note("on_disconnect")
	c:disconnect()
	t:ok(T.wait_until(function() return seen.on_disconnect end), "on_disconnect")
	for _, name in ipairs { "on_subscribe", "on_message", "filter", "on_publish", "on_unsubscribe", "on_disconnect" } do
		t:ok(rawequal(seen[name], ud2), name .. " got the userdata set later")
	end
	c:user_data_set(nil)
	t:eq(c:user_data_get(), nil, "userdata cleared")
	c:user_data_set(42)
	t:eq(c:user_data_get(), 42, "any value")
end)

---------------------------------------------------------------------------
-- credentials, tostring, callbacks as fields

test("tostring(client) never shows the password", function(t)
	local c = mqtt.Client("basic-pw")
	c:username_pw_set("alice", "s3cret-pa55")
	t:eq(c.username, "alice", "username field")
	t:eq(c.password, nil, "no password field")
	t:ok(not tostring(c):find("s3cret", 1, true), "not before connect: " .. tostring(c))
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "anonymous broker accepts it")
	t:match(tostring(c), "basic%-pw", "tostring names the client")
	t:ok(not tostring(c):find("s3cret", 1, true), "not while connected: " .. tostring(c))
	c:disconnect()
end)

test("callbacks are fields: set, read back, replaced, cleared; unknown on_ names raise", function(t)
	local c = mqtt.Client("basic-fields")
	local f = function() end
	c.on_message = f
	t:ok(rawequal(c.on_message, f), "read back")
	c.on_message = nil
	t:eq(c.on_message, nil, "cleared")
	c.anything = 5
	t:eq(c.anything, 5, "scripts may keep their own fields on a client")
	t:raises(function() c.on_mesage = f end, "unknown callback 'on_mesage'")
	t:raises(function() c.on_connect = "no" end, "on_connect must be a function or nil, got string")
	t:ok(type(c.publish) == "function", "methods are readable")
end)

---------------------------------------------------------------------------
-- will and reinitialise

test("reinitialise drops the connection (the will is sent), callbacks and subscriptions", function(t)
	local watcher = connected(t, "basic-reinit-watch")
	local got = collector(watcher)
	subscribed(t, watcher, "will/#", 1)

	local c = mqtt.Client("basic-reinit", true, "old")
	c:will_set("will/basic-reinit", "gone", 1, false)
	local old_msgs = {}
	c.on_message = function(_, _, m) old_msgs[#old_msgs + 1] = m.payload end
	c:message_callback_add("re/#", function(_, _, m) old_msgs[#old_msgs + 1] = m.payload end)
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	subscribed(t, c, "re/a", 1)

	c:reinitialise("basic-reinit-2", true, "new")
	t:eq(c:is_connected(), false, "not connected after reinitialise")
	t:eq(c.client_id, "basic-reinit-2", "new client_id")
	t:eq(c:user_data_get(), "new", "new userdata")
	t:eq(c.on_message, nil, "callbacks are reset")
	t:ok(T.wait_until(function() return #got == 1 end), "the broker published the will (no DISCONNECT was sent)")
	t:eq(got[1], { topic = "will/basic-reinit", payload = "gone", qos = 1, retain = false }, "will message")

	-- connected again under the new id: old subscription and callbacks are gone
	local new_msgs = {}
	c.on_message = function(_, _, m) new_msgs[#new_msgs + 1] = m.topic end
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "connected after reinitialise")
	subscribed(t, c, "re/sentinel", 1)
	watcher:publish("re/a", "old subscription", 1)
	watcher:publish("re/sentinel", "s", 1)
	t:ok(T.wait_until(function() return #new_msgs >= 1 end), "sentinel")
	mqtt.sleep(0.2)
	t:eq(new_msgs, { "re/sentinel" }, "the old subscription was not restored")
	t:eq(old_msgs, {}, "old callbacks never ran")

	-- the will was dropped by reinitialise: a clean disconnect and another reinitialise send none
	c:reinitialise{ client_id = "basic-reinit-3" }
	t:eq(c.client_id, "basic-reinit-3", "keyword form")
	mqtt.sleep(0.3)
	t:eq(#got, 1, "no second will")
	watcher:disconnect()
end)

test("will_clear: no will when the connection drops", function(t)
	local watcher = connected(t, "basic-wc-watch")
	local got = collector(watcher)
	subscribed(t, watcher, "wc/#", 1)
	local c = mqtt.Client("basic-wc")
	c:will_set("wc/basic-wc", "gone", 1)
	c:will_clear()
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	c:reinitialise()   -- drops the socket without DISCONNECT
	watcher:publish("wc/sentinel", "s", 1)
	t:ok(T.wait_until(function() return #got >= 1 end), "sentinel")
	mqtt.sleep(0.2)
	t:eq(payloads(got), { "s" }, "no will was published")
	watcher:disconnect()
end)

test("a QoS 1 message published before connect() is sent once connected", function(t)
	local sub = connected(t, "basic-early-sub")
	local got = collector(sub)
	subscribed(t, sub, "early/#", 1)
	local c = mqtt.Client("basic-early")
	local info = c:publish("early/x", "queued", 1)
	t:eq(info.rc, mqtt.MQTT_ERR_SUCCESS, "rc: queued")
	t:eq(info:is_published(), false, "not published yet")
	c:connect()
	t:eq(info:wait_for_publish(5), true, "acknowledged after connecting")
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	t:eq(got[1].payload, "queued", "payload")
	sub:disconnect()
	c:disconnect()
end)

test("a <close> client sends DISCONNECT (no will) and is closed", function(t)
	local watcher = connected(t, "basic-close-watch")
	local got = collector(watcher)
	subscribed(t, watcher, "closewill/#", 1)
	local outside
	do
		local c <close> = mqtt.Client("basic-close")
		c:will_set("closewill/basic-close", "gone", 1)
		c:connect()
		t:ok(T.wait_until(function() return c:is_connected() end), "connected")
		outside = c
	end
	t:eq(tostring(outside), "mqlua.Client(closed)", "tostring after close")
	t:raises(function() outside:publish("a", "b") end, "attempt to use a closed Client")
	watcher:publish("closewill/sentinel", "s", 1)
	t:ok(T.wait_until(function() return #got >= 1 end), "sentinel")
	mqtt.sleep(0.2)
	t:eq(payloads(got), { "s" }, "no will: the connection ended with a DISCONNECT")
	watcher:disconnect()
end)

test("a connected client nobody references keeps working", function(t)
	local got = {}
	local function start()
		local c = mqtt.Client("basic-orphan")
		c.on_connect = function(client) client:subscribe("orphan/x", 1) end
		c.on_subscribe = function() got.subscribed = true end
		c.on_message = function(client, _, m)
			got[#got + 1] = m.payload
			if m.payload == "bye" then client:disconnect() end
		end
		c:connect()
	end
	start()
	t:ok(T.wait_until(function() collectgarbage() return got.subscribed end), "subscribed")
	collectgarbage()
	collectgarbage()
	local pub = connected(t, "basic-orphan-pub")
	pub:publish("orphan/x", "still here", 1)
	pub:publish("orphan/x", "bye", 1)
	t:ok(T.wait_until(function() collectgarbage() return #got == 2 end), "delivered after full GC cycles")
	t:eq({ got[1], got[2] }, { "still here", "bye" }, "messages")
	pub:disconnect()
end)

test("connect() on a connected client reconnects", function(t)
	local c = connected(t, "basic-twice")
	local connects = 0
	c.on_connect = function() connects = connects + 1 end
	t:eq(c:connect(), 0, "second connect rc")
	t:ok(T.wait_until(function() return connects == 1 end), "on_connect for the new connection")
	t:eq(c:is_connected(), true, "connected")
	local got = collector(c)
	subscribed(t, c, "twice/x", 1)
	c:publish("twice/x", "works", 1)
	t:ok(T.wait_until(function() return #got == 1 end), "the new connection works")
	c:disconnect()
end)

test("3000 QoS 1 messages arrive complete and in order", function(t)
	local sub = connected(t, "basic-many-sub")
	local n, in_order = 0, true
	sub.on_message = function(_, _, m)
		n = n + 1
		if m.payload ~= tostring(n) then in_order = false end
	end
	subscribed(t, sub, "many/x", 1)
	local pub = connected(t, "basic-many-pub")
	-- in batches of 500: mosquitto drops QoS 1 messages beyond 1000 queued for one subscriber
	for batch = 0, 5 do
		local last
		for i = batch * 500 + 1, batch * 500 + 500 do last = pub:publish("many/x", i, 1) end
		t:ok(last:wait_for_publish(20), "the last of batch " .. batch .. " was acknowledged")
		t:ok(T.wait_until(function() return n == batch * 500 + 500 end, 20), "batch " .. batch .. " delivered (" .. n .. ")")
	end
	mqtt.sleep(0.1)
	t:eq(n, 3000, "no more than sent")
	t:ok(in_order, "in order")
	sub:disconnect()
	pub:disconnect()
end)

test("on_log gets libmosquitto's packet trace with its level", function(t)
	local c = mqtt.Client("basic-log")
	local lines = {}
	c.on_log = function(client, userdata, level, text)
		t:ok(rawequal(client, c), "client")
		lines[#lines + 1] = { level, text }
	end
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	c:disconnect()
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")
	local texts = {}
	for _, l in ipairs(lines) do
		t:eq(l[1], mqtt.MQTT_LOG_DEBUG, "level of " .. l[2])
		texts[#texts + 1] = l[2]
	end
	t:eq(texts, { "Client basic-log sending CONNECT", "Client basic-log received CONNACK (0)",
		"Client basic-log sending DISCONNECT" }, "packet trace")
end)

---------------------------------------------------------------------------
-- several clients

test("three clients in one script exchange messages", function(t)
	local names = { "alpha", "beta", "gamma" }
	local clients, inbox = {}, {}
	for _, name in ipairs(names) do
		local c = connected(t, "basic-3-" .. name)
		inbox[name] = {}
		c.on_message = function(_, _, m) table.insert(inbox[name], m.payload) end
		subscribed(t, c, "three/" .. name, 1)
		clients[name] = c
	end
	for _, from in ipairs(names) do
		for _, to in ipairs(names) do
			if from ~= to then clients[from]:publish("three/" .. to, from .. ">" .. to, 1) end
		end
	end
	t:ok(T.wait_until(function()
		return #inbox.alpha == 2 and #inbox.beta == 2 and #inbox.gamma == 2
	end), "two messages each")
	mqtt.sleep(0.2)
	for _, name in ipairs(names) do table.sort(inbox[name]) end
	t:eq(inbox, {
		alpha = { "beta>alpha", "gamma>alpha" },
		beta = { "alpha>beta", "gamma>beta" },
		gamma = { "alpha>gamma", "beta>gamma" },
	}, "each got exactly the messages addressed to it")
	for _, c in pairs(clients) do c:disconnect() end
end)

T.done()
