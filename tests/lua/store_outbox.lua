-- store_outbox.lua - the outbox in front of QoS>0 publishing, seen from a
-- script: queued while offline with 64-bit ids, sent in order once connected,
-- kept across a restart of the process, queue limits and policies, dead
-- letters for messages a v5 broker refuses, options and their errors.
local mqtt = require "mqlua"
local test = T.test

local broker = T.broker()
local dir = T.tmpdir()

local function connected(t, c)
	t:eq(c:connect(), 0, "connect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	return c
end

-- A subscriber collecting payloads of filter, ready (SUBACK seen) on return.
local function subscriber(t, id, filter, qos)
	local c = mqtt.Client(id)
	local got, acked = {}, false
	c.on_connect = function(cl) cl:subscribe(filter, qos or 1) end
	c.on_subscribe = function() acked = true end
	c.on_message = function(_, _, m) got[#got + 1] = m.payload end
	connected(t, c)
	t:ok(T.wait_until(function() return acked end), "subscribed to " .. filter)
	return c, got
end

local function run_child(name, source, ...)
	return T.run_script(dir .. "/" .. name .. ".lua", source, ...)
end

test("QoS 1 published before connect is queued with increasing ids and sent in order", function(t)
	local sub, got = subscriber(t, "ob-order-sub", "ob/order/#")
	local c = mqtt.Client("ob-order")
	local infos = {}
	for i = 1, 50 do infos[i] = c:publish("ob/order/x", tostring(i), 1) end
	t:eq(infos[1].rc, mqtt.MQTT_ERR_SUCCESS, "rc: queued")
	t:ok(infos[1].mid > 0, "an id")
	for i = 2, 50 do
		if infos[i].mid ~= infos[i - 1].mid + 1 then t:ok(false, "ids increase by one at " .. i) end
	end
	t:eq(c:queue_depth(), 50, "50 queued")
	t:ok(c:queue_oldest_age() >= 0, "oldest age known")
	connected(t, c)
	t:ok(T.wait_until(function() return #got == 50 end), "all 50 delivered")
	local expect = {}
	for i = 1, 50 do expect[i] = tostring(i) end
	t:eq(got, expect, "in order")
	t:ok(T.wait_until(function() return c:queue_depth() == 0 end), "the acks emptied the queue")
	t:eq(infos[50]:wait_for_publish(2), true, "the last one is published")
	t:eq(c:queue_oldest_age(), 0, "nothing waits")
	c:disconnect()
	sub:disconnect()
end)

test("on_publish gets the same id as info.mid", function(t)
	local c = mqtt.Client("ob-mids")
	local acked = {}
	c.on_publish = function(_, _, mid) acked[#acked + 1] = mid end
	local a = c:publish("ob/mids", "a", 1)
	local b = c:publish("ob/mids", "b", 2)
	connected(t, c)
	t:ok(T.wait_until(function() return #acked == 2 end), "two acks")
	table.sort(acked)
	t:eq(acked, { a.mid, b.mid }, "on_publish mids are the info mids")
	c:disconnect()
end)

test("a restarted process with the same client_id sends what the first one queued, first, in order", function(t)
	local store = dir .. "/restart.db"
	local sub, got = subscriber(t, "ob-restart-sub", "ob/restart/#")
	-- first process: queue 20 messages with no broker to go to, then exit
	local out, code = run_child("queue", [[
local mqtt = require "mqlua"
local c = mqtt.Client{client_id = "ob-restart", store = arg[1]}
for i = 1, 20 do assert(c:publish("ob/restart/x", "old " .. i, 1).rc == 0) end
print("queued " .. c:queue_depth())
]], store)
	t:eq(code, 0, "first process exits 0: " .. out)
	t:match(out, "queued 20", "20 queued")
	-- second process: publishes 5 new ones, connects, waits for the queue to drain
	out, code = run_child("drain", [[
local mqtt = require "mqlua"
local c = mqtt.Client{client_id = "ob-restart", store = arg[1]}
print("found " .. c:queue_depth())
for i = 1, 5 do c:publish("ob/restart/x", "new " .. i, 1) end
c:connect("127.0.0.1", tonumber(arg[2]))
assert(mqtt.wait_until(function() return c:queue_depth() == 0 end, 10), "drained")
c:disconnect()
]], store, broker.port)
	t:eq(code, 0, "second process exits 0: " .. out)
	t:match(out, "found 20", "the second process found the 20")
	t:ok(T.wait_until(function() return #got == 25 end), "25 delivered (" .. #got .. ")")
	local expect = {}
	for i = 1, 20 do expect[i] = "old " .. i end
	for i = 1, 5 do expect[20 + i] = "new " .. i end
	t:eq(got, expect, "old ones first, all in order")
	sub:disconnect()
end)

test("max_queued_messages_set: MQTT_ERR_QUEUE_SIZE when full, or drop the oldest", function(t)
	local c = mqtt.Client("ob-limit")
	c:max_queued_messages_set(3)
	for i = 1, 3 do t:eq(c:publish("ob/limit", tostring(i), 1).rc, 0, "message " .. i .. " queued") end
	local info = c:publish("ob/limit", "4", 1)
	t:eq(info.rc, mqtt.MQTT_ERR_QUEUE_SIZE, "the fourth is refused")
	t:raises(function() info:wait_for_publish(0.1) end, "message queue full")
	t:eq(c:queue_depth(), 3, "still 3")

	local sub, got = subscriber(t, "ob-drop-sub", "ob/drop/#")
	local d = mqtt.Client { client_id = "ob-drop", queue_policy = "drop_oldest" }
	d:max_queued_messages_set(3)
	for i = 1, 5 do t:eq(d:publish("ob/drop/x", tostring(i), 1).rc, 0, "drop_oldest accepts " .. i) end
	t:eq(d:queue_depth(), 3, "3 kept")
	connected(t, d)
	t:ok(T.wait_until(function() return #got == 3 end), "3 delivered")
	t:eq(got, { "3", "4", "5" }, "the oldest two were dropped")
	d:disconnect()
	sub:disconnect()
end)

test("QoS 0 while disconnected: MQTT_ERR_NO_CONN, unless queue_qos0", function(t)
	local c = mqtt.Client("ob-q0")
	t:eq(c:publish("ob/q0", "x", 0).rc, mqtt.MQTT_ERR_NO_CONN, "not queued by default")
	local sub, got = subscriber(t, "ob-q0-sub", "ob/q0/#", 0)
	local q = mqtt.Client { client_id = "ob-q0-queued", queue_qos0 = true }
	local info = q:publish("ob/q0/y", "kept", 0)
	t:eq(info.rc, 0, "queued")
	t:eq(q:queue_depth(), 1, "in the queue")
	connected(t, q)
	t:ok(T.wait_until(function() return #got == 1 end), "delivered after connecting")
	t:eq(got[1], "kept", "payload")
	t:ok(T.wait_until(function() return q:queue_depth() == 0 end), "gone from the queue once written")
	t:eq(info:wait_for_publish(1), true, "published")
	q:disconnect()
	sub:disconnect()
end)

test("disconnect() right after publish sends the message first", function(t)
	local sub, got = subscriber(t, "ob-quick-sub", "ob/quick/#")
	local c = connected(t, mqtt.Client("ob-quick"))
	c:publish("ob/quick/x", "before disconnect", 1)
	c:disconnect()
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	sub:disconnect()
end)

test("a v5 broker's refusal moves the message to dead_letters()", function(t)
	local acl = dir .. "/acl"
	local f = assert(io.open(acl, "w"))
	f:write("topic readwrite ok/#\n")
	f:close()
	local b = T.broker { config = "acl_file " .. acl }
	local c = mqtt.Client { client_id = "ob-dead", protocol = mqtt.MQTTv5 }
	local ok = c:publish("ok/x", "fine", 1)
	local bad = c:publish("denied/x", "refused", 1)
	t:eq(c:connect(b.host, b.port), 0, "connect")
	t:ok(T.wait_until(function() return c:queue_depth() == 0 end), "both answered")
	t:eq(ok:wait_for_publish(1), true, "the allowed one is published")
	t:eq(bad:is_published(), false, "the refused one is not")
	t:raises(function() bad:wait_for_publish(1) end, "message publish failed")
	local dead = c:dead_letters()
	t:eq(#dead, 1, "one dead letter")
	t:eq(dead[1] and dead[1].topic, "denied/x", "its topic")
	t:eq(dead[1] and dead[1].payload, "refused", "its payload")
	t:eq(dead[1] and dead[1].mid, bad.mid, "its id")
	t:ok(dead[1] and dead[1].reason >= 128, "a refusal reason code")
	c:disconnect()
end)

test("a v5 broker's Receive Maximum narrows the window: everything still arrives, in order", function(t)
	local b = T.broker { config = "max_inflight_messages 2" }
	local sub = mqtt.Client { client_id = "ob-rmax-sub", protocol = mqtt.MQTTv5 }
	local got, acked = {}, false
	sub.on_connect = function(cl) cl:subscribe("ob/rmax/#", 1) end
	sub.on_subscribe = function() acked = true end
	sub.on_message = function(_, _, m) got[#got + 1] = m.payload end
	t:eq(sub:connect(b.host, b.port), 0, "subscriber connects")
	t:ok(T.wait_until(function() return acked end), "subscribed")
	local c = mqtt.Client { client_id = "ob-rmax", protocol = mqtt.MQTTv5 }
	c:max_inflight_messages_set(50)
	local expect = {}
	for i = 1, 40 do
		c:publish("ob/rmax/x", tostring(i), 1)
		expect[i] = tostring(i)
	end
	t:eq(c:connect(b.host, b.port), 0, "publisher connects")
	t:ok(T.wait_until(function() return #got == 40 end, 10), "40 delivered (" .. #got .. ")")
	t:eq(got, expect, "in order")
	t:ok(T.wait_until(function() return c:queue_depth() == 0 end), "all acknowledged")
	c:disconnect()
	sub:disconnect()
end)

test("options: store = false keeps the queue in memory; bad options raise", function(t)
	local m = mqtt.Client { client_id = "ob-mem", store = false }
	t:eq(m:publish("ob/mem", "x", 1).rc, 0, "queued in memory")
	t:eq(m:queue_depth(), 1, "depth")
	t:raises(function() mqtt.Client { client_id = "x", durability = "paranoid" } end,
		"durability must be one of memory, normal")
	t:raises(function() mqtt.Client { client_id = "x", queue_policy = "drop_newest" } end,
		"queue_policy must be one of error, drop_oldest")
	t:raises(function() mqtt.Client { client_id = "x", store = 42 } end, "store must be a file path or false")
	t:raises(function() m:max_queued_messages_set(-1) end, "must not be negative")
end)

test("a generated client_id queues in memory and says so", function(t)
	local out, code = run_child("random", [[
local mqtt = require "mqlua"
local c = mqtt.Client()
print("rc " .. c:publish("x", "y", 1).rc)
]])
	t:eq(code, 0, out)
	t:match(out, "rc 0", "queued")
	t:match(out, "generated client_id: its queued messages live in memory", "warned")
end)

test("a second process using the same client_id and store gets a clear error", function(t)
	local store = dir .. "/claimed.db"
	local holder = mqtt.Client { client_id = "ob-claimed", store = store }
	local out, code = run_child("claim", [[
local mqtt = require "mqlua"
mqtt.Client{client_id = "ob-claimed", store = arg[1]}
]], store)
	t:ok(code ~= 0, "the second process fails")
	t:match(out, "store " .. store:gsub("%p", "%%%0") .. ": the queue of client \"ob%-claimed\" is used by process %d+",
		"names the file, the client and the holder")
	-- another client_id in the same file is fine
	out, code = run_child("claim-other", [[
local mqtt = require "mqlua"
local c = mqtt.Client{client_id = "ob-other", store = arg[1]}
print("depth " .. c:queue_depth())
]], store)
	t:eq(code, 0, out)
	t:match(out, "depth 0", "works")
	holder = nil
end)

test("--store chooses the file; it is created with mode 0600", function(t)
	local store = dir .. "/cli/store.db"
	local out, code = run_child("cli", [[
local mqtt = require "mqlua"
local c = mqtt.Client("ob-cli")
c:publish("a", "b", 1)
mqtt.state.n = 1
]])
	t:eq(code, 0, out)
	out, code = T.sh(string.format("%s --store %s -e %q 2>&1", T.mqlua(), store,
		'local mqtt = require "mqlua"; local c = mqtt.Client("ob-cli"); c:publish("a", "b", 1)'))
	t:eq(code, 0, out)
	local mode = T.sh("stat -c %a " .. store)
	t:eq(mode:gsub("%s", ""), "600", "mode 0600")
	local rows = T.sh(string.format("sqlite3 %s 'select count(*) from outbox'", store))
	t:eq(rows:gsub("%s", ""), "1", "the row is in that file")
end)
