-- helpers_subscribe.lua - mqlua.subscribe.simple / callback against real
-- brokers: one message or msg_count of them, retained ones kept or skipped,
-- lists of filters, callback with userdata, the named-table form, auth, TLS,
-- a will (seen when the helper's process is killed), the default host, errors.
local mqtt = require "mqlua"
local subscribe = require "mqlua.subscribe"
local publish = require "mqlua.publish"
local test = T.test

-- Publishes msgs ({topic, payload, qos, retain}...) from a plain client, `delay`
-- seconds from now (while a helper waits), to broker b.
local function later(delay, b, msgs)
	mqtt.after(delay, function()
		publish.multiple(msgs, b.host, b.port)
	end)
end

local function fields(m)
	return m and { topic = m.topic, payload = m.payload, qos = m.qos, retain = m.retain }
end

test("no hostname and no default broker: localhost, as paho", function(t)
	local b = T.broker{ default = false }
	later(0.3, b, { { "hs/0", "to localhost", 0 } })
	local m = subscribe.simple("hs/0", 0, 1, true, nil, b.port)
	t:eq(fields(m), { topic = "hs/0", payload = "to localhost", qos = 0, retain = false }, "message")
end)

local broker = T.broker()   -- from here on, the default broker

test("simple(topic): the first message, at the subscribed qos", function(t)
	later(0.3, broker, { { "hs/1", "first", 2 }, { "hs/1", "second", 2 } })
	local m = subscribe.simple("hs/1", 1)
	t:eq(getmetatable(m) ~= nil and type(m.json), "function", "an MQTTMessage (msg:json())")
	t:eq(fields(m), { topic = "hs/1", payload = "first", qos = 1, retain = false }, "message")
end)

test("simple with msg_count = 3 and a list of filters: a list of three messages in order", function(t)
	later(0.3, broker, { { "hs/2/a", "1", 1 }, { "hs/2/b", "2", 1 }, { "hs/2/c", "ignored", 1 }, { "hs/2/a", "3", 1 } })
	local ms = subscribe.simple({ "hs/2/a", "hs/2/b" }, 1, 3, true, broker.host, broker.port)
	t:eq(#ms, 3, "three messages")
	t:eq({ fields(ms[1]), fields(ms[2]), fields(ms[3]) }, {
		{ topic = "hs/2/a", payload = "1", qos = 1, retain = false },
		{ topic = "hs/2/b", payload = "2", qos = 1, retain = false },
		{ topic = "hs/2/a", payload = "3", qos = 1, retain = false } }, "messages")
	later(0.3, broker, { { "hs/2/z", "named", 2 } })
	local one = subscribe.simple{ topics = "hs/2/#", msg_count = 1, qos = 2, client_id = "hs-named",
		hostname = broker.host, port = broker.port, keepalive = 20, retained = true,
		protocol = mqtt.MQTTv5 }
	t:eq(fields(one), { topic = "hs/2/z", payload = "named", qos = 2, retain = false }, "msg_count 1: one message, not a list")
end)

test("retained = true (the default) returns retained messages; retained = false skips them", function(t)
	publish.multiple({ { "hs/3/old", "retained", 1, true } })
	local m = subscribe.simple("hs/3/#", 0)
	t:eq(fields(m), { topic = "hs/3/old", payload = "retained", qos = 0, retain = true }, "retained message")
	later(0.3, broker, { { "hs/3/new", "fresh", 0 } })
	m = subscribe.simple{ topics = { "hs/3/#" }, retained = false }
	t:eq(fields(m), { topic = "hs/3/new", payload = "fresh", qos = 0, retain = false }, "fresh message")
	publish.single("hs/3/old", nil, 1, true)
end)

test("callback(fn, topics, qos, userdata): every message until it disconnects", function(t)
	local seen = {}
	later(0.3, broker, { { "hs/4/a", "1", 2 }, { "hs/4/b", "2", 2 }, { "hs/4/a", "stop", 2 }, { "hs/4/a", "after", 2 } })
	local ud = { name = "my userdata" }
	local r = table.pack(subscribe.callback(function(client, userdata, msg)
		seen[#seen + 1] = { userdata == ud, msg.topic, msg.payload, msg.qos }
		if msg.payload == "stop" then client:disconnect() end
	end, { "hs/4/a", "hs/4/b" }, 2, ud))
	t:eq(r.n, 0, "callback() returns nothing")
	t:eq(seen, { { true, "hs/4/a", "1", 2 }, { true, "hs/4/b", "2", 2 }, { true, "hs/4/a", "stop", 2 } }, "messages")
end)

test("callback with named arguments; an error in the callback is logged and the next message comes", function(t)
	local seen = {}
	later(0.3, broker, { { "hs/5", "boom", 1 }, { "hs/5", "end", 1 } })
	subscribe.callback{ callback = function(client, userdata, msg)
		seen[#seen + 1] = userdata .. ":" .. msg.payload
		if msg.payload == "boom" then error("a bug in the handler") end
		client:disconnect()
	end, topics = "hs/5", qos = 1, userdata = "ud", hostname = broker.host, port = broker.port }
	t:eq(seen, { "ud:boom", "ud:end" }, "both messages")
end)

test("auth against a password file: subscribes; a wrong password raises the refusal", function(t)
	local dir = T.tmpdir()
	local pwfile = dir .. "/passwd"
	local _, code = T.sh("mosquitto_passwd -b -c '" .. pwfile .. "' bob 'pa ss' 2>&1")
	t:eq(code, 0, "mosquitto_passwd")
	os.execute("chmod 644 '" .. pwfile .. "'")
	local b = T.broker{ allow_anonymous = false, config = "password_file " .. pwfile, default = false }
	local auth = { username = "bob", password = "pa ss" }
	mqtt.after(0.3, function() publish.single{ topic = "hs/auth", payload = "secret", hostname = b.host, port = b.port, auth = auth } end)
	local m = subscribe.simple{ topics = "hs/auth", hostname = b.host, port = b.port, auth = auth }
	t:eq(fields(m), { topic = "hs/auth", payload = "secret", qos = 0, retain = false }, "message")
	local msg = t:raises(function()
		subscribe.simple{ topics = "hs/auth", hostname = b.host, port = b.port, auth = { username = "bob", password = "no" } }
	end)
	t:match(msg, "helpers_subscribe%.lua:%d+: simple: [%d.]+:%d+ refused the connection: Connection Refused: not authorised%.$", "error")
end)

test("tls with a client certificate and an ACL by certificate name", function(t)
	local certs = T.certs()
	local port = mqtt.broker.free_port()
	local dir = T.tmpdir()
	local acl = assert(io.open(dir .. "/acl", "w"))
	acl:write("user mqlua-test-client\ntopic readwrite hs/tls/#\n")
	acl:close()
	os.execute("chmod 644 '" .. dir .. "/acl'")
	T.broker{ default = false, config = table.concat({ "listener " .. port .. " 127.0.0.1",
		"cafile " .. certs .. "/ca.crt", "certfile " .. certs .. "/server.crt", "keyfile " .. certs .. "/server.key",
		"require_certificate true", "use_identity_as_username true", "acl_file " .. dir .. "/acl" }, "\n") }
	local tls = { ca_certs = certs .. "/ca.crt", certfile = certs .. "/client.crt", keyfile = certs .. "/client.key" }
	mqtt.after(0.3, function() publish.single{ topic = "hs/tls/x", payload = "tls", qos = 1, hostname = "localhost", port = port, tls = tls } end)
	local m = subscribe.simple{ topics = "hs/tls/#", qos = 1, hostname = "localhost", port = port, tls = tls }
	t:eq(fields(m), { topic = "hs/tls/x", payload = "tls", qos = 1, retain = false }, "message over TLS")
end)

test("will: published by the broker when the helper's process dies without a word", function(t)
	local dir = T.tmpdir()
	local f = assert(io.open(dir .. "/child.lua", "w"))
	f:write([[
		local subscribe = require "mqlua.subscribe"
		io.stdout:setvbuf("no")
		print("waiting")
		subscribe.callback(function() end, "hs/never", 0, nil, arg[1], tonumber(arg[2]), "hs-will-child", 60,
			{ topic = "hs/will", payload = "helper gone", qos = 1, retain = false })
	]])
	f:close()
	local c = T.connected(t, "hs-will-l")
	local got = T.collector(c)
	T.subscribed(t, c, "hs/will", 1)
	local pidfile = dir .. "/pid"
	os.execute(T.mqlua() .. " " .. dir .. "/child.lua " .. broker.host .. " " .. broker.port ..
		" >" .. dir .. "/out 2>&1 & echo $! >" .. pidfile)
	local pid = assert(io.open(pidfile)):read("l")
	-- the child prints before it connects: give it time to be connected
	t:ok(T.wait_until(function()
		local out = io.open(dir .. "/out"); local s = out and out:read("a") or ""; if out then out:close() end
		return s:find("waiting", 1, true) ~= nil
	end), "child started")
	mqtt.sleep(0.5)
	os.execute("kill -9 " .. pid)
	t:ok(T.wait_until(function() return #got == 1 end), "the will arrived")
	t:eq(got[1], { topic = "hs/will", payload = "helper gone", qos = 1, retain = false }, "will")
	c:disconnect()
end)

test("argument and connection errors", function(t)
	local cases = {
		{ function() subscribe.simple("a", 3) end, "bad argument 'qos' to 'simple' %(qos must be in the range 0%-2%)" },
		{ function() subscribe.simple("a", 0, 0) end, "bad argument 'msg_count' to 'simple' %(msg_count must be > 0%)" },
		{ function() subscribe.simple({}) end, "bad argument 'topics' to 'simple' %(a topic filter or a list of them expected%)" },
		{ function() subscribe.simple({ "a", 1 }) end, "bad argument 'topics' to 'simple' %(topics%[2%] must be a string, got number%)" },
		{ function() subscribe.simple("a/#/b") end, "bad argument 'topics' to 'simple' %(topics%[1%] has a '#'" },
		{ function() subscribe.callback("f", "a") end, "bad argument 'callback' to 'callback' %(function expected, got string%)" },
		{ function() subscribe.callback{ callback = print, topic = "a" } end, "bad argument #1 to 'callback' %(unknown argument 'topic'%)" },
		{ function() subscribe.simple{ topics = "a", clean_session = false } end, "a client_id must be provided if clean_session is false" },
		{ function() subscribe.simple{ topics = "a", clean_session = true, protocol = mqtt.MQTTv5 } end,
			"bad argument 'clean_session' to 'simple' %(clean_session is not used for MQTT 5%.0 %(leave it out%)%)" },
	}
	for i, case in ipairs(cases) do
		local msg = t:raises(case[1], case[2])
		t:match(msg, "^[^:]*helpers_subscribe%.lua:%d+: ", "case " .. i .. " located at the caller")
	end
	local port = mqtt.broker.free_port()
	local msg = t:raises(function() subscribe.simple("a", 0, 1, true, "127.0.0.1", port) end)
	t:match(msg, "simple: 127%.0%.0%.1:" .. port .. ": cannot connect: Connection refused$", "closed port")
	msg = t:raises(function() subscribe.callback(print, "a", 0, nil, "127.0.0.1", port) end)
	t:match(msg, "callback: 127%.0%.0%.1:" .. port .. ": cannot connect: Connection refused$", "closed port")
end)

test("under plain lua5.4 with mqlua.so and scripts/ on package.path", function(t)
	if (os.getenv("MQLUA_BUILD") or "build"):find("asan", 1, true) then
		return   -- build-asan has no mqlua.so (tests/cli/lua_module.sh says why)
	end
	local dir = T.tmpdir()
	local f = assert(io.open(dir .. "/host.lua", "w"))
	f:write([[
		package.cpath = "build/?.so;" .. package.cpath
		package.path = "scripts/?.lua;" .. package.path
		local publish, subscribe = require "mqlua.publish", require "mqlua.subscribe"
		local host, port = arg[1], tonumber(arg[2])
		publish.single("hs/so", "retained in lua5.4", 1, true, host, port)
		local m = subscribe.simple("hs/so", 1, 1, true, host, port)
		print(m.topic, m.payload, m.retain)
		publish.single("hs/so", nil, 1, true, host, port)
	]])
	f:close()
	local out, status = T.sh("timeout 20 lua5.4 " .. dir .. "/host.lua " .. broker.host .. " " .. broker.port .. " 2>&1")
	t:eq(status, 0, "exit status; output:\n" .. out)
	t:eq(out, "hs/so\tretained in lua5.4\ttrue\n", "output")
end)
