-- store_retained.lua - the retained-message cache: retained messages a
-- client receives, and those it publishes, are kept in its store by topic;
-- client:retained(filter) lists them (topic, payload, qos, time) sorted by
-- topic, also while the broker is down and after a restart of mqlua; an
-- empty retained payload deletes the entry; "#" does not list "$" topics;
-- each client_id has its own cache; a malformed filter raises.
--
-- Every client here names its store (a file in a temporary directory) or
-- has none (store = false), so the process's default store is not touched.
local mqtt = require "mqlua"
local test = T.test

local tmp = T.tmpdir()
local n_children = 0

-- A private broker, not the default one: stopping it disturbs no other test.
local function new_broker()
	local b, err = mqtt.broker.start { default = false }
	assert(b, err)
	return b
end

local function connect(t, b, c)
	t:eq(c:connect(b.host, b.port), 0, c.client_id .. ": connect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), c.client_id .. ": connected within 5 s")
	return c
end

-- Publishes retained messages {topic, payload, qos} from a client without a
-- store and waits until the broker has them all.
local function publish_retained(t, b, list)
	local p = connect(t, b, mqtt.Client { client_id = "ret-publisher", store = false })
	for _, m in ipairs(list) do
		local info = p:publish(m[1], m[2], m[3], true)
		t:eq(info.rc, 0, "publish " .. m[1])
		if m[3] > 0 then t:ok(info:wait_for_publish(5), "broker acknowledged " .. m[1]) end
	end
	p:disconnect()
	T.wait_until(function() return not p:is_connected() end)
end

-- Subscribes c to filter and waits until it received n messages; returns them.
local function receive(t, c, filter, qos, n)
	local got = {}
	c.on_message = function(_, _, m)
		got[#got + 1] = { topic = m.topic, payload = m.payload, qos = m.qos, retain = m.retain }
	end
	t:eq((c:subscribe(filter, qos)), 0, "subscribe " .. filter)
	t:ok(T.wait_until(function() return #got >= n end), "received " .. n .. " messages on " .. filter)
	return got
end

-- client:retained() without the times (checked on their own).
local function cached(c, filter)
	local out = {}
	for i, m in ipairs(c:retained(filter)) do
		out[i] = { m.topic, m.payload, m.qos }
	end
	return out
end

-- Runs source in a child mqlua with args; returns its output and exit code.
local function child(source, ...)
	n_children = n_children + 1
	local path = tmp .. "/child" .. n_children .. ".lua"
	local f = assert(io.open(path, "w"))
	f:write("local mqtt = require 'mqlua'\n", source)
	f:close()
	local args = {}
	for i, a in ipairs { ... } do args[i] = "'" .. tostring(a) .. "'" end
	return T.sh("MQLUA_STORE='" .. tmp .. "/child-default.db' timeout 30 " .. T.mqlua() .. " " .. path ..
		" " .. table.concat(args, " ") .. " 2>&1")
end

---------------------------------------------------------------------------

test("retained messages received are cached, sorted by topic, and readable offline", function(t)
	local b = new_broker()
	publish_retained(t, b, {
		{ "house/porch/light", "ON", 1 },
		{ "house/attic/temp", "21.5", 0 },
		{ "house/kitchen/door", "closed", 2 },
		{ "garden/rain", "no", 1 },
	})
	local c = mqtt.Client { client_id = "ret-receiver", store = tmp .. "/receiver.db" }
	c:reconnect_delay_set(5, 5)
	connect(t, b, c)
	local before = os.time()
	local got = receive(t, c, "house/#", 2, 3)
	t:eq(#got, 3, "three retained messages under house/#")
	for _, m in ipairs(got) do t:eq(m.retain, true, m.topic .. " arrived retained") end
	t:eq(cached(c), {
		{ "house/attic/temp", "21.5", 0 },
		{ "house/kitchen/door", "closed", 2 },
		{ "house/porch/light", "ON", 1 },
	}, "client:retained() lists what was received, by topic, with the qos received")
	local first = c:retained()[1]
	t:eq(math.type(first.time), "float", "time is a number of seconds")
	t:ok(first.time >= before - 1 and first.time <= os.time() + 1,
		"time is wall-clock seconds when cached: " .. first.time .. " vs " .. before)

	b:stop()
	t:ok(T.wait_until(function() return not c:is_connected() end), "the broker is gone")
	t:eq(cached(c, "house/+/light"), { { "house/porch/light", "ON", 1 } }, "offline: house/+/light")
	t:eq(cached(c, "house/kitchen/door"), { { "house/kitchen/door", "closed", 2 } }, "offline: exact topic")
	t:eq(#c:retained "house/#", 3, "offline: house/#")
	t:eq(cached(c, "garden/#"), {}, "garden/rain was never received, so not cached")
	local named = c:retained { filter = "+/attic/+" }
	t:eq(#named, 1, "named form: one message")
	t:eq({ named[1].topic, named[1].payload }, { "house/attic/temp", "21.5" }, "named form")
	c:disconnect()
end)

test("the cache survives a restart of mqlua and is read with the broker down", function(t)
	local b = new_broker()
	publish_retained(t, b, { { "restart/a", "1", 1 }, { "restart/b", "2", 1 } })
	local store = tmp .. "/restart.db"
	local out, code = child([[
		local host, port, store = ...
		local c = mqtt.Client { client_id = "ret-restart", store = store }
		local n = 0
		c.on_connect = function(client) client:subscribe("restart/#", 1) end
		c.on_message = function(client) n = n + 1; if n == 2 then client:disconnect() end end
		c:connect(host, tonumber(port))
		c:loop_forever()
		print("received", n)
	]], b.host, b.port, store)
	t:eq(code, 0, "first process; output:\n" .. out)
	t:match(out, "received\t2", "first process received both")
	b:stop()
	out, code = child([[
		local c = mqtt.Client { client_id = "ret-restart", store = (...) }
		for _, m in ipairs(c:retained("restart/#")) do print(m.topic, m.payload, m.qos, type(m.time)) end
	]], store)
	t:eq(code, 0, "second process; output:\n" .. out)
	t:eq(out, "restart/a\t1\t1\tnumber\nrestart/b\t2\t1\tnumber\n", "what the second process reads")
end)

test("retained messages the client publishes are cached; an empty payload deletes", function(t)
	local b = new_broker()
	local c = connect(t, b, mqtt.Client { client_id = "ret-own", store = tmp .. "/own.db" })
	local infos = {}
	local function pub(what, ...)
		local info = c:publish(...)
		t:eq(info.rc, 0, what)
		infos[#infos + 1] = info
	end
	pub("publish retained qos 1", "own/lamp", "on", 1, true)
	pub("publish retained qos 0", "own/fan", "off", 0, true)
	pub("publish not retained", "own/plain", "not retained", 1)
	t:eq(cached(c, "own/#"), { { "own/fan", "off", 0 }, { "own/lamp", "on", 1 } }, "own retained messages")
	-- (same qos for one topic: the broker applies a QoS 2 message at PUBREL, so a
	-- QoS 2 value could land after a later QoS 1 delete)
	pub("publish a new value", "own/lamp", "dim", 1, true)
	t:eq(cached(c, "own/lamp"), { { "own/lamp", "dim", 1 } }, "the new value replaced the old")
	pub("publish an empty retained payload", "own/lamp", "", 1, true)
	t:eq(cached(c, "own/#"), { { "own/fan", "off", 0 } }, "own/lamp is gone")
	pub("publish a nil retained payload", "own/fan", nil, 0, true)
	t:eq(cached(c, "own/#"), {}, "own/fan is gone")
	for i, info in ipairs(infos) do t:ok(info:wait_for_publish(5), "publish " .. i .. " reached the broker") end

	-- the broker agrees: a new subscriber gets nothing retained under own/
	local r = connect(t, b, mqtt.Client { client_id = "ret-own-check", store = tmp .. "/check.db" })
	local got = {}
	r.on_message = function(_, _, m) got[#got + 1] = m.topic .. (m.retain and " (retained)" or "") end
	t:eq((r:subscribe("own/#", 1)), 0, "subscribe")
	mqtt.sleep(0.3)
	t:eq(got, {}, "no retained message left on the broker")
	t:eq(cached(r), {}, "and none in the subscriber's cache")

	-- while disconnected, a queued retained publish is cached at once
	b:stop()
	t:ok(T.wait_until(function() return not c:is_connected() end), "the broker is gone")
	t:eq(c:publish("own/offline", "queued", 1, true).rc, 0, "publish retained while offline")
	t:eq(cached(c, "own/#"), { { "own/offline", "queued", 1 } }, "cached while offline")
	c:disconnect()
	r:disconnect()
end)

test("\"#\" and \"+\" do not list \"$\" topics; \"$SYS/#\" does", function(t)
	local b = new_broker()
	publish_retained(t, b, { { "plain/x", "p", 0 } })
	local c = connect(t, b, mqtt.Client { client_id = "ret-sys", store = tmp .. "/sys.db" })
	local got = receive(t, c, "$SYS/broker/version", 0, 1)
	t:match(got[1].payload, "mosquitto", "the broker's retained version")
	receive(t, c, "plain/#", 0, 1)
	t:eq(cached(c, "#"), { { "plain/x", "p", 0 } }, "# lists plain topics only")
	t:eq(cached(c, "+/x"), { { "plain/x", "p", 0 } }, "+/x")
	t:eq(cached(c, "+/broker/version"), {}, "+/broker/version")
	t:eq(cached(c, "$SYS/#"), { { "$SYS/broker/version", got[1].payload, 0 } }, "$SYS/# lists it")
	c:disconnect()
end)

test("each client_id has its own cache, also in a shared store file", function(t)
	local b = new_broker()
	publish_retained(t, b, { { "shared/a", "A", 1 }, { "other/b", "B", 1 } })
	local store = tmp .. "/shared.db"
	local c1 = connect(t, b, mqtt.Client { client_id = "ret-one", store = store })
	local c2 = connect(t, b, mqtt.Client { client_id = "ret-two", store = store })
	receive(t, c1, "shared/#", 1, 1)
	receive(t, c2, "other/#", 1, 1)
	t:eq(cached(c1), { { "shared/a", "A", 1 } }, "ret-one's cache")
	t:eq(cached(c2), { { "other/b", "B", 1 } }, "ret-two's cache")
	local c3 = mqtt.Client { client_id = "ret-three", store = store }
	t:eq(cached(c3), {}, "a client that received nothing has nothing cached")
	c1:disconnect()
	c2:disconnect()
end)

test("a malformed filter raises an error naming it", function(t)
	local c = mqtt.Client { client_id = "ret-bad", store = tmp .. "/bad.db" }
	t:raises(function() c:retained("a/#/b") end, "filter has a '#' that is not the whole last level")
	t:raises(function() c:retained("a+") end, "filter has a '%+' that is not a whole level")
	t:raises(function() c:retained("") end, "filter must not be empty")
	t:eq(c:retained(), {}, "nothing cached yet (default filter #)")
end)
