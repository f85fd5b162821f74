-- mqtt5_properties.lua - MQTT v5 properties against the embedded mosquitto:
-- every publish property and user properties seen by a subscriber, will
-- properties, disconnect reason codes, session expiry and clean_start,
-- properties of QoS 1 messages queued offline and across a restart of the
-- process (with MessageExpiryInterval reduced by the wait), and the errors
-- that name the bad property, its type, the packet type, or MQTT v5.
local mqtt = require "mqlua"
local test = T.test

local broker = T.broker()
local dir = T.tmpdir()

local function v5(id)
	return mqtt.Client { client_id = id, protocol = mqtt.MQTTv5 }
end

local function wait_connected(t, c, what)
	t:ok(T.wait_until(function() return c:is_connected() end), (what or c.client_id) .. " connected")
	return c
end

-- A v5 client connected to the file's broker with connect properties and clean_start.
local function connected5(t, id, props, clean_start)
	local c = v5(id)
	t:eq(c:connect(broker.host, broker.port, 60, nil, nil, clean_start, props), 0, id .. " connect rc")
	return wait_connected(t, c)
end

-- A v5 subscriber to filter whose on_message records the whole message object.
local function subscriber5(t, id, filter, sub_props)
	local c = connected5(t, id)
	local got = {}
	c.on_message = function(_, _, m) got[#got + 1] = m end
	T.subscribed(t, c, filter, 1, nil, sub_props)
	return c, got
end

local function run_child(name, source, ...)
	return T.run_script(dir .. "/" .. name .. ".lua", source, ...)
end

local binary = "\0\1\2\255bin\0"
local publish_props = {
	PayloadFormatIndicator = 1,
	MessageExpiryInterval = 600,
	ContentType = "application/json",
	ResponseTopic = "p5/reply/42",
	CorrelationData = binary,
	UserProperty = { { "k", "v1" }, { "a", "b" }, { "k", "v2" }, { "k", "v1" } },
}

local function check_publish_props(t, p, what)
	t:eq(p.PayloadFormatIndicator, 1, what .. ": PayloadFormatIndicator")
	t:ok(p.MessageExpiryInterval and p.MessageExpiryInterval <= 600 and p.MessageExpiryInterval >= 598,
	     what .. ": MessageExpiryInterval about 600, got " .. tostring(p.MessageExpiryInterval))
	t:eq(p.ContentType, "application/json", what .. ": ContentType")
	t:eq(p.ResponseTopic, "p5/reply/42", what .. ": ResponseTopic")
	t:eq(p.CorrelationData, binary, what .. ": CorrelationData, binary")
	t:eq(p.UserProperty, { { "k", "v1" }, { "a", "b" }, { "k", "v2" }, { "k", "v1" } },
	     what .. ": UserProperty, in order with duplicates")
end

test("every publish property arrives at a v5 subscriber, QoS 0 and QoS 1, with the SubscriptionIdentifier", function(t)
	local sub, got = subscriber5(t, "p5-rt-sub", "p5/rt/#", { SubscriptionIdentifier = 7 })
	local c = connected5(t, "p5-rt-pub")
	t:eq(c:publish("p5/rt/0", "{}", 0, false, publish_props).rc, 0, "QoS 0 rc")
	local info = c:publish { topic = "p5/rt/1", payload = "{}", qos = 1, properties = publish_props }
	t:eq(info.rc, 0, "QoS 1 rc")
	t:ok(info:wait_for_publish(5), "QoS 1 acknowledged")
	t:ok(T.wait_until(function() return #got == 2 end), "both arrived")
	table.sort(got, function(a, b) return a.topic < b.topic end)
	for i, m in ipairs(got) do
		check_publish_props(t, m.properties, "QoS " .. (i - 1))
		t:eq(m.properties.SubscriptionIdentifier, { 7 }, "SubscriptionIdentifier: a list, as paho gives")
	end
	c:disconnect()
	sub:disconnect()
end)

test("mqtt.Properties(PUBLISH) objects are accepted; no properties gives an empty table (v5) or nil (v3)", function(t)
	local sub5, got5 = subscriber5(t, "p5-obj-sub", "p5/obj")
	local sub3 = T.connected(t, "p5-obj-sub3")
	local got3 = {}
	sub3.on_message = function(_, _, m) got3[#got3 + 1] = m end
	T.subscribed(t, sub3, "p5/obj", 1)
	local c = connected5(t, "p5-obj-pub")
	local p = mqtt.Properties(mqtt.PacketTypes.PUBLISH)
	p.ContentType = "text/plain"
	p.UserProperty = { "only", "one" }
	t:eq(tostring(p), "Properties(PUBLISH)", "tostring")
	t:eq(c:publish("p5/obj", "with", 1, false, p).rc, 0, "rc")
	t:eq(c:publish("p5/obj", "without", 1).rc, 0, "rc")
	t:ok(T.wait_until(function() return #got5 == 2 and #got3 == 2 end), "all arrived")
	t:eq(got5[1].properties, { ContentType = "text/plain", UserProperty = { { "only", "one" } } }, "v5: with")
	t:eq(got5[2].properties, {}, "v5: without: empty")
	t:eq(got3[1].properties, nil, "v3: nil")
	c:disconnect()
	sub5:disconnect()
	sub3:disconnect()
end)

test("errors name the argument and the property: unknown, wrong type, wrong packet, bad value, v5 only", function(t)
	local c = v5("p5-errors")
	t:raises(function() c:publish("t", "x", 0, false, { Foo = 1 }) end,
	         "bad argument #5 to 'publish' %(properties: unknown property 'Foo'%)")
	t:raises(function() c:publish("t", "x", 0, false, { ContentType = 5 }) end,
	         "properties: ContentType must be a string, got number")
	t:raises(function() c:publish("t", "x", 0, false, { MessageExpiryInterval = "60" }) end,
	         "properties: MessageExpiryInterval must be an integer, got string")
	t:raises(function() c:publish("t", "x", 0, false, { MessageExpiryInterval = 2 ^ 32 }) end,
	         "properties: MessageExpiryInterval must be between 0 and 4294967295, got 4294967296")
	t:raises(function() c:publish("t", "x", 0, false, { SessionExpiryInterval = 5 }) end,
	         "properties: SessionExpiryInterval is not valid for PUBLISH")
	t:raises(function() c:publish("t", "x", 0, false, { TopicAlias = 0 }) end,
	         "properties: TopicAlias has a value MQTT v5 does not allow")
	t:raises(function() c:publish("t", "x", 0, false, { UserProperty = { { "k" } } }) end,
	         "properties: UserProperty must be a list of {name, value} pairs")
	t:raises(function() c:publish("t", "x", 0, false, "ContentType") end,
	         "properties must be a table of properties, got string")
	t:raises(function() c:will_set("t", "x", 0, false, { TopicAlias = 3 }) end,
	         "bad argument #5 to 'will_set' %(properties: TopicAlias is not valid for WILLMESSAGE%)")
	t:raises(function() c:connect(broker.host, broker.port, 60, nil, nil, nil, { WillDelayInterval = 3 }) end,
	         "bad argument #7 to 'connect' %(properties: WillDelayInterval is not valid for CONNECT%)")
	t:raises(function() c:connect(broker.host, broker.port, 60, nil, nil, "yes") end,
	         "clean_start must be true, false or mqtt.MQTT_CLEAN_START_FIRST_ONLY")
	t:raises(function() c:disconnect(4, { ContentType = "x" }) end,
	         "properties: ContentType is not valid for DISCONNECT")
	t:raises(function() c:disconnect("4") end, "reasoncode must be a ReasonCode or a number from 0 to 255")

	local p = mqtt.Properties(mqtt.PacketTypes.CONNECT)
	p.SessionExpiryInterval = 10
	t:raises(function() p.ContentType = "x" end, "Properties: ContentType is not valid for CONNECT")
	t:raises(function() p.Nope = 1 end, "Properties: unknown property 'Nope'")
	t:raises(function() p.SessionExpiryInterval = -1 end,
	         "Properties: SessionExpiryInterval must be between 0 and 4294967295, got %-1")
	t:eq(p.SessionExpiryInterval, 10, "a refused assignment leaves the value")
	t:raises(function() mqtt.Properties(16) end, "packetType must be one of mqtt.PacketTypes")
	t:eq(mqtt.PacketTypes.WILLMESSAGE, 99, "PacketTypes.WILLMESSAGE")
	t:eq(mqtt.PacketTypes.PUBLISH, 3, "PacketTypes.PUBLISH")

	local c3 = mqtt.Client("p5-errors-v3")
	t:raises(function() c3:publish("t", "x", 1, false, { ContentType = "x" }) end,
	         "properties only apply to MQTT v5")
	t:raises(function() c3:will_set("t", "x", 1, false, {}) end, "properties only apply to MQTT v5")
	t:raises(function() c3:connect(broker.host, broker.port, 60, nil, nil, false) end,
	         "clean_start only applies to MQTT v5")
	t:raises(function() c3:disconnect(4) end, "reasoncode only applies to MQTT v5")
	t:eq(c3:connect(broker.host, broker.port, 60, nil, nil, mqtt.MQTT_CLEAN_START_FIRST_ONLY), 0,
	     "v3: the default clean_start is accepted")
	wait_connected(t, c3)
	c3:disconnect()
end)

test("will properties reach a subscriber after a kill -9, after the WillDelayInterval", function(t)
	local sub, got = subscriber5(t, "p5-will-sub", "p5/will/#")
	local pidfile = dir .. "/will.pid"
	local script = dir .. "/will.lua"
	local f = assert(io.open(script, "w"))
	f:write([[
local mqtt = require "mqlua"
local c = mqtt.Client { client_id = "p5-will", protocol = mqtt.MQTTv5 }
c:will_set("p5/will/gone", "bye", 1, false,
           { ContentType = "text/plain", WillDelayInterval = 2, UserProperty = { { "why", "killed" } } })
c.on_connect = function(cl) cl:publish("p5/will/ready", "up", 1) end
c:connect(arg[1], tonumber(arg[2]), 60, nil, nil, true, { SessionExpiryInterval = 30 })
]])
	f:close()
	T.sh(string.format("%s %s %s %d >/dev/null 2>&1 & echo $! > %s", T.mqlua(), script, broker.host,
	                   broker.port, pidfile))
	local pid = io.open(pidfile):read("l")
	t:ok(T.wait_until(function() return #got == 1 end), "the will client is up")
	T.sh("kill -9 " .. pid)
	local killed = mqtt.time()
	t:ok(T.wait_until(function() return #got == 2 end, 8), "the will arrived")
	local waited = mqtt.time() - killed
	t:ok(waited >= 1.5, string.format("after the will delay (%.2f s)", waited))
	local m = got[2]
	t:eq({ m.topic, m.payload }, { "p5/will/gone", "bye" }, "the will")
	t:eq(m.properties.ContentType, "text/plain", "ContentType")
	t:eq(m.properties.UserProperty, { { "why", "killed" } }, "UserProperty")
	t:eq(m.properties.WillDelayInterval, nil, "WillDelayInterval is for the broker, not forwarded")
	sub:disconnect()
end)

test("disconnect(4) makes the broker publish the will; disconnect(0) does not", function(t)
	local sub, got = subscriber5(t, "p5-dis-sub", "p5/dis/#")
	local a = v5("p5-dis-a")
	a:will_set("p5/dis/a", "will of a", 0, false, { ContentType = "a" })
	t:eq(a:connect(broker.host, broker.port), 0, "a connect")
	wait_connected(t, a)
	local b = v5("p5-dis-b")
	b:will_set("p5/dis/b", "will of b", 0)
	t:eq(b:connect(broker.host, broker.port), 0, "b connect")
	wait_connected(t, b)
	t:eq(a:disconnect(4, { ReasonString = "leaving with my will" }), 0, "disconnect(4) rc")
	t:eq(b:disconnect(0), 0, "disconnect(0) rc")
	t:ok(T.wait_until(function() return #got >= 1 end), "a will arrived")
	mqtt.sleep(0.5)
	t:eq(#got, 1, "only one will")
	t:eq({ got[1].topic, got[1].payload, got[1].properties.ContentType }, { "p5/dis/a", "will of a", "a" },
	     "the will of the client that said 4")
	local c = v5("p5-dis-c")
	c:will_set("p5/dis/c", "will of c", 0)
	t:eq(c:connect(broker.host, broker.port), 0, "c connect")
	wait_connected(t, c)
	t:eq(c:disconnect(mqtt.ReasonCode(mqtt.PacketTypes.DISCONNECT, "Disconnect with will message")), 0,
	     "a ReasonCode works too")
	t:ok(T.wait_until(function() return #got == 2 end), "the will of c arrived")
	sub:disconnect()
end)

test("SessionExpiryInterval keeps the session: clean_start=false gets what was published while away", function(t)
	local props = { SessionExpiryInterval = 300 }
	local c = connected5(t, "p5-sess", props, true)
	local got = T.collector(c)
	T.subscribed(t, c, "p5/sess", 1)
	c:disconnect()
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")
	local p = connected5(t, "p5-sess-pub")
	t:ok(p:publish("p5/sess", "while away", 1):wait_for_publish(5), "published while away")
	t:eq(c:connect(broker.host, broker.port, 60, nil, nil, false, props), 0, "connect again, clean_start=false")
	wait_connected(t, c)
	t:ok(T.wait_until(function() return #got == 1 end), "the message kept by the session arrived")
	t:eq(T.payloads(got), { "while away" }, "payload")

	-- clean_start=true throws the session away
	c:disconnect()
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected again")
	t:ok(p:publish("p5/sess", "discarded", 1):wait_for_publish(5), "published while away again")
	t:eq(c:connect(broker.host, broker.port, 60, nil, nil, true, props), 0, "connect, clean_start=true")
	wait_connected(t, c)
	mqtt.sleep(0.5)
	t:eq(T.payloads(got), { "while away" }, "nothing from the discarded session")
	c:disconnect()
	p:disconnect()
end)

test("clean_start FIRST_ONLY: the first connection starts clean, a reconnect resumes the session", function(t)
	local props = { SessionExpiryInterval = 300 }
	local p = connected5(t, "p5-first-pub")
	-- a stale session with a subscription and a queued message
	local old = connected5(t, "p5-first", props, false)
	T.subscribed(t, old, "p5/first", 1)
	old:disconnect()
	t:ok(T.wait_until(function() return not old:is_connected() end), "stale session left")
	t:ok(p:publish("p5/first", "stale", 1):wait_for_publish(5), "stale message queued in it")

	local c = v5("p5-first")
	local got = T.collector(c)
	local drops = 0
	c.on_disconnect = function() drops = drops + 1 end
	c:reconnect_delay_set(2, 2)
	t:eq(c:connect(broker.host, broker.port, 60, nil, nil, nil, props), 0, "connect with the default clean_start")
	wait_connected(t, c)
	T.subscribed(t, c, "p5/first", 1)
	mqtt.sleep(0.3)
	t:eq(T.payloads(got), {}, "the first connection started clean: no stale message")

	-- another connection with the same id takes the session over and leaves it
	local taker = connected5(t, "p5-first", props, false)
	t:ok(T.wait_until(function() return drops == 1 end), "c lost its connection to the taker")
	taker:disconnect()
	t:ok(T.wait_until(function() return not taker:is_connected() end), "the taker left")
	t:ok(p:publish("p5/first", "while reconnecting", 1):wait_for_publish(5), "published while c was away")
	t:ok(T.wait_until(function() return c:is_connected() end, 8), "c reconnected by itself")
	t:ok(T.wait_until(function() return #got == 1 end), "the reconnect resumed the session")
	t:eq(T.payloads(got), { "while reconnecting" }, "payload")
	c:disconnect()
	p:disconnect()
end)

test("a QoS 1 publish queued while the broker is down is sent with its properties when it comes up", function(t)
	local port = mqtt.broker.free_port()
	local c = mqtt.Client { client_id = "p5-offline", protocol = mqtt.MQTTv5, store = dir .. "/offline.db" }
	c:reconnect_delay_set(2, 2)
	c:connect_async("127.0.0.1", port)   -- refused at once: retried with backoff
	local info = c:publish("p5/offline", "queued", 1, false, publish_props)
	t:eq(info.rc, 0, "queued")
	mqtt.sleep(0.3)
	t:ok(not c:is_connected(), "no broker yet")
	local b = T.broker { port = port, default = false }
	local sub = v5("p5-offline-sub")
	local got = {}
	sub.on_message = function(_, _, m) got[#got + 1] = m end
	t:eq(sub:connect(b.host, b.port), 0, "sub connect")
	wait_connected(t, sub)
	T.subscribed(t, sub, "p5/offline", 1)
	t:ok(T.wait_until(function() return #got == 1 end, 8), "arrived once the broker came up")
	check_publish_props(t, got[1].properties, "queued offline")
	t:ok(info:wait_for_publish(5), "acknowledged")
	c:disconnect()
	sub:disconnect()
	b:stop()
end)

test("after a restart of the process: properties kept, MessageExpiryInterval reduced, expired not sent", function(t)
	local store = dir .. "/restart.db"
	local sub, got = subscriber5(t, "p5-restart-sub", "p5/restart/#")
	local out, code = run_child("queue", [[
local mqtt = require "mqlua"
local c = mqtt.Client { client_id = "p5-restart", protocol = mqtt.MQTTv5, store = arg[1] }
assert(c:publish("p5/restart/a", "a", 1, false, { UserProperty = { { "n", "1" }, { "n", "2" } },
       CorrelationData = "\0x" }).rc == 0)
assert(c:publish("p5/restart/b", "b", 1, false, { MessageExpiryInterval = 30 }).rc == 0)
assert(c:publish("p5/restart/c", "c", 1, false, { MessageExpiryInterval = 1 }).rc == 0)
assert(c:publish("p5/restart/d", "d", 2).rc == 0)
print("queued", c:queue_depth())
]], store)
	t:eq({ out, code }, { "queued\t4\n", 0 }, "the first process queued four and ended")
	mqtt.sleep(2.2)
	out, code = run_child("send", [[
local mqtt = require "mqlua"
local c = mqtt.Client { client_id = "p5-restart", protocol = mqtt.MQTTv5, store = arg[1] }
c:connect(arg[2], tonumber(arg[3]))
assert(mqtt.wait_until(function() return c:is_connected() and c:queue_depth() == 0 end, 10))
c:disconnect()
]], store, broker.host, broker.port)
	t:eq(code, 0, "the second process sent the queue: " .. out)
	t:match(out, "message %d+ to \"p5/restart/c\" expired after waiting %d+ s in the queue; not sent",
	        "the expired one is logged")
	t:ok(T.wait_until(function() return #got == 3 end), "three arrived")
	mqtt.sleep(0.3)
	table.sort(got, function(x, y) return x.topic < y.topic end)
	local topics = {}
	for i, m in ipairs(got) do topics[i] = m.topic end
	t:eq(topics, { "p5/restart/a", "p5/restart/b", "p5/restart/d" }, "c expired, the others arrived")
	t:eq(got[1].properties, { UserProperty = { { "n", "1" }, { "n", "2" } }, CorrelationData = "\0x" },
	     "a: its properties")
	local left = got[2].properties.MessageExpiryInterval
	t:ok(left and left <= 28 and left >= 25, "b: MessageExpiryInterval reduced by the wait, got " .. tostring(left))
	t:eq(got[3].properties, {}, "d: none")
	sub:disconnect()
end)
