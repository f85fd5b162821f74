-- client_subscribe.lua - subscribing as a script sees it: every form of
-- subscribe() and unsubscribe() against a real broker, the granted qos
-- lists, and message callbacks (message_callback_add/remove, on_message).
local mqtt = require "mqlua"
local test = T.test

T.broker()   -- the default broker of this file
local connected, subscribed = T.connected, T.subscribed
local collector, payloads = T.collector, T.payloads

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

test("among 10,000 filters, the matching callbacks run in the order their filters were added", function(t)
	local c = connected(t, "basic-mcb-many")
	local calls = {}
	local function rec(tag) return function(_, _, msg) calls[#calls + 1] = tag .. ":" .. msg.payload end end
	c.on_message = rec("on_message")
	c:message_callback_add("home/#", rec("first"))
	-- 10,000 filters of the form sensors/<room>/<device>/<metric>, some with '+'
	for room = 1, 100 do
		for dev = 1, 100 do
			local device = dev == 100 and "+" or ("dev" .. dev)
			c:message_callback_add(("home/room%d/%s/temp"):format(room, device), rec(room .. "." .. dev))
		end
	end
	c:message_callback_add("+/room7/dev3/#", rec("last"))
	c:message_callback_add("home/#", rec("first-replaced"))   -- keeps its place
	c:message_callback_add("#", rec("hash"))
	subscribed(t, c, "home/#")
	local function run(topic, payload, n)
		calls = {}
		c:publish(topic, payload, 1)
		t:ok(T.wait_until(function() return #calls >= n end), topic .. ": " .. n .. " callbacks")
		mqtt.sleep(0.1)
		return calls
	end
	t:eq(run("home/room7/dev3/temp", "m1", 5),
		{ "first-replaced:m1", "7.3:m1", "7.100:m1", "last:m1", "hash:m1" },
		"every match, in order of first add; the '+' device filter too")
	c:message_callback_remove("home/room7/+/temp")
	t:eq(run("home/room7/dev3/temp", "m2", 4), { "first-replaced:m2", "7.3:m2", "last:m2", "hash:m2" },
		"a removed filter no longer runs")
	c:message_callback_remove("home/#")
	c:message_callback_remove("#")
	t:eq(run("home/room100/dev99/humidity", "m3", 1), { "on_message:m3" }, "on_message when none matched")
	c:disconnect()
end)

---------------------------------------------------------------------------
-- userdata
