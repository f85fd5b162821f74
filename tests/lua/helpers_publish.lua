-- helpers_publish.lua - mqlua.publish.single / multiple against real
-- brokers: every argument form, QoS 0/1/2 (returning only after the acks),
-- retain, auth with a password file, TLS, a will, and the errors (in words).
local mqtt = require "mqlua"
local publish = require "mqlua.publish"
local test = T.test

local broker = T.broker()   -- the default broker: helpers use it without a hostname

-- A client subscribed to filter on broker b (default: the file's), collecting.
local function listener(t, id, filter, b)
	local c = T.connected(t, id, true, b or broker)
	local got = T.collector(c)
	T.subscribed(t, c, filter, 2)
	return c, got
end

test("single(topic, payload, qos) at QoS 0, 1 and 2: delivered at that qos", function(t)
	local c, got = listener(t, "hp-l1", "hp/1/#")
	publish.single("hp/1/q0", "zero")
	publish.single("hp/1/q1", "one", 1)
	publish.single("hp/1/q2", "two", 2, false, broker.host, broker.port)
	t:ok(T.wait_until(function() return #got == 3 end), "three messages, got " .. #got)
	table.sort(got, function(a, b) return a.topic < b.topic end)
	t:eq(got, { { topic = "hp/1/q0", payload = "zero", qos = 0, retain = false },
		{ topic = "hp/1/q1", payload = "one", qos = 1, retain = false },
		{ topic = "hp/1/q2", payload = "two", qos = 2, retain = false } }, "messages")
	c:disconnect()
end)

test("QoS 1 and 2 return after the ack: the broker already holds a retained message", function(t)
	for qos = 1, 2 do
		local topic = "hp/2/q" .. qos
		publish.single(topic, "kept " .. qos, qos, true, nil, nil, "hp-acked-" .. qos)
		-- no sleep: a subscription made now sees the retained message
		local c = T.connected(t, "hp-l2-" .. qos)
		local got = T.collector(c)
		T.subscribed(t, c, topic, 1)
		t:ok(T.wait_until(function() return #got == 1 end), "retained message")
		t:eq(got[1], { topic = topic, payload = "kept " .. qos, qos = 1, retain = true }, "retained at qos " .. qos)
		c:disconnect()
		-- the helper queued in memory: the store has nothing of the helper's client_id
		local same = mqtt.Client("hp-acked-" .. qos)
		t:eq(same:queue_depth(), 0, "queue rows of the helper's client_id in the store")
		t:eq(same:retained("#"), {}, "retained cache of the helper's client_id in the store")
		publish.single(topic, "", 1, true)   -- clean up the retained message
	end
end)

test("single with one table of named arguments", function(t)
	local c, got = listener(t, "hp-l3", "hp/3/#")
	publish.single{ topic = "hp/3/a", payload = "named", qos = 2, retain = false, hostname = broker.host,
		port = broker.port, client_id = "hp-named", keepalive = 30, protocol = mqtt.MQTTv5 }
	publish.single{ topic = "hp/3/b" }   -- payload nil: an empty message
	t:ok(T.wait_until(function() return #got == 2 end), "two messages")
	table.sort(got, function(a, b) return a.topic < b.topic end)
	t:eq(got[1], { topic = "hp/3/a", payload = "named", qos = 2, retain = false }, "first")
	t:eq(got[2], { topic = "hp/3/b", payload = "", qos = 0, retain = false }, "empty payload")
	c:disconnect()
end)

test("multiple: named and positional messages, mixed QoS, all acked before it returns", function(t)
	local c, got = listener(t, "hp-l4", "hp/4/#")
	local msgs = {
		{ topic = "hp/4/a", payload = "1" },
		{ topic = "hp/4/b", payload = "2", qos = 1 },
		{ "hp/4/c", "3", 2 },
		{ "hp/4/d", 4, 1, true },
		{ topic = "hp/4/e", payload = "5", qos = 2, retain = true },
	}
	publish.multiple(msgs)
	publish.multiple{ msgs = { { "hp/4/f", "6", 1 } }, hostname = broker.host, port = broker.port }
	t:ok(T.wait_until(function() return #got == 6 end), "six messages, got " .. #got)
	table.sort(got, function(a, b) return a.topic < b.topic end)
	t:eq(T.payloads(got), { "1", "2", "3", "4", "5", "6" }, "payloads")
	local qos = {}
	for i, m in ipairs(got) do qos[i] = m.qos end
	t:eq(qos, { 0, 1, 2, 1, 2, 1 }, "qos of each")
	-- d and e were retained: a new subscriber sees exactly those
	local c2 = T.connected(t, "hp-l4b")
	local kept = T.collector(c2)
	T.subscribed(t, c2, "hp/4/#", 0)
	t:ok(T.wait_until(function() return #kept == 2 end), "two retained")
	table.sort(kept, function(a, b) return a.topic < b.topic end)
	t:eq(T.payloads(kept), { "4", "5" }, "retained payloads")
	publish.multiple({ { "hp/4/d", nil, 1, true }, { "hp/4/e", nil, 1, true } })
	c:disconnect()
	c2:disconnect()
end)

test("multiple with 200 QoS 1 messages (more than the inflight window): every one arrives", function(t)
	local c, got = listener(t, "hp-l5", "hp/5")
	local msgs = {}
	for i = 1, 200 do msgs[i] = { "hp/5", tostring(i), 1 } end
	publish.multiple(msgs)
	t:ok(T.wait_until(function() return #got == 200 end), "200 messages, got " .. #got)
	local want = {}
	for i = 1, 200 do want[i] = tostring(i) end
	t:eq(T.payloads(got), want, "in order")
	c:disconnect()
end)

test("auth against a password file: right password publishes, wrong one raises the refusal", function(t)
	local dir = T.tmpdir()
	local pwfile = dir .. "/passwd"
	local _, code = T.sh("mosquitto_passwd -b -c '" .. pwfile .. "' alice 's3cret' 2>&1")
	t:eq(code, 0, "mosquitto_passwd")
	os.execute("chmod 644 '" .. pwfile .. "'")
	local b = T.broker{ allow_anonymous = false, config = "password_file " .. pwfile, default = false }
	local c = mqtt.Client("hp-auth-l")
	c:username_pw_set("alice", "s3cret")
	local got = T.collector(c)
	c:connect(b.host, b.port)
	t:ok(T.wait_until(function() return c:is_connected() end), "listener connected")
	T.subscribed(t, c, "hp/auth", 1)
	publish.single("hp/auth", "let in", 1, false, b.host, b.port, nil, nil, nil,
		{ username = "alice", password = "s3cret" })
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	t:eq(got[1].payload, "let in", "payload")
	local msg = t:raises(function()
		publish.single("hp/auth", "no", 1, false, b.host, b.port, nil, nil, nil, { username = "alice", password = "wrong" })
	end)
	t:match(msg, "^[^:]*helpers_publish%.lua:%d+: single: " .. b.host:gsub("%p", "%%%0") .. ":" .. b.port ..
		" refused the connection: Connection Refused: not authorised%.$", "error")
	t:raises(function() publish.single("hp/auth", "no", 1, false, b.host, b.port) end, "not authorised")
	t:raises(function() publish.single{ topic = "x", auth = { password = "p" } } end,
		"bad argument 'auth' to 'single' %(auth needs a username%)")
	c:disconnect()
end)

test("tls: ca_certs verifies the broker; another CA raises the verification failure", function(t)
	local certs = T.certs()
	local port = mqtt.broker.free_port()
	local b = T.broker{ default = false, config = table.concat({ "listener " .. port .. " 127.0.0.1",
		"cafile " .. certs .. "/ca.crt", "certfile " .. certs .. "/server.crt", "keyfile " .. certs .. "/server.key",
		"require_certificate true", "use_identity_as_username true" }, "\n") }
	local c, got = listener(t, "hp-tls-l", "hp/tls", b)
	publish.single{ topic = "hp/tls", payload = "over TLS", qos = 1, hostname = "localhost", port = port,
		tls = { ca_certs = certs .. "/ca.crt", certfile = certs .. "/client.crt", keyfile = certs .. "/client.key" } }
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	t:eq(got[1].payload, "over TLS", "payload")
	local msg = t:raises(function()
		publish.single{ topic = "hp/tls", hostname = "localhost", port = port,
			tls = { ca_certs = certs .. "/other-ca.crt", certfile = certs .. "/client.crt", keyfile = certs .. "/client.key" } }
	end)
	t:match(msg, "^[^:]*helpers_publish%.lua:%d+: single: localhost:" .. port .. ": cannot connect: TLS error", "error")
	t:match(msg, "certificate verify failed", "error")
	t:raises(function() publish.single{ topic = "x", tls = { ca_cert = "typo" } } end,
		"bad argument 'tls' to 'single' %(unknown key 'ca_cert'%)")
	c:disconnect()
end)

test("will: set on the helper's connection, not published after its clean disconnect", function(t)
	local c, got = listener(t, "hp-l7", "hp/7/#")
	publish.single("hp/7/msg", "hello", 1, false, nil, nil, nil, nil,
		{ topic = "hp/7/will", payload = "gone", qos = 1, retain = false })
	t:ok(T.wait_until(function() return #got >= 1 end), "message")
	mqtt.sleep(0.3)
	t:eq(T.payloads(got), { "hello" }, "only the message, no will")
	t:raises(function() publish.single{ topic = "x", will = { payload = "no topic" } } end, "will needs a topic")
	t:raises(function() publish.single{ topic = "x", will = { topic = "a/#" } } end, "will_set")
	c:disconnect()
end)

test("a closed port raises 'cannot connect' with the reason", function(t)
	local port = mqtt.broker.free_port()
	local msg = t:raises(function() publish.single("hp/x", "y", 0, false, "127.0.0.1", port) end)
	t:eq(msg:gsub("^[^:]*:%d+: ", ""), "single: 127.0.0.1:" .. port .. ": cannot connect: Connection refused", "error")
	t:match(msg, "^[^:]*helpers_publish%.lua:%d+: ", "error located at the caller")
	msg = t:raises(function() publish.multiple({ { "hp/x", "y" } }, "127.0.0.1", port) end)
	t:match(msg, "multiple: 127%.0%.0%.1:" .. port .. ": cannot connect: Connection refused$", "multiple")
end)

test("argument errors name the argument and happen before connecting", function(t)
	local cases = {
		{ function() publish.single(nil, "x") end, "bad argument 'topic' to 'single' %(string expected, got nil%)" },
		{ function() publish.single("a/+", "x") end, "bad argument 'topic' to 'single' %(topic must not contain the wildcards" },
		{ function() publish.single("a", "x", 3) end, "bad argument 'qos' to 'single' %(qos must be 0, 1 or 2%)" },
		{ function() publish.single{ topic = "a", qso = 1 } end, "bad argument #1 to 'single' %(unknown argument 'qso'%)" },
		{ function() publish.multiple("a") end, "bad argument 'msgs' to 'multiple' %(a list of messages expected, got string%)" },
		{ function() publish.multiple({}) end, "bad argument 'msgs' to 'multiple' %(no message to publish%)" },
		{ function() publish.multiple({ { "a" }, { 5 } }) end, "bad argument 'msgs%[2%]' to 'multiple' %(topic must be a string, got number%)" },
		{ function() publish.multiple({ { topic = "a", qos = -1 } }) end, "bad argument 'msgs%[1%]' to 'multiple' %(qos must be 0, 1 or 2%)" },
		{ function() publish.single("a", "x", 0, false, nil, nil, nil, nil, "will") end, "bad argument 'will' to 'single' %(table expected, got string%)" },
		{ function() publish.single{ topic = "a", protocol = 7 } end, "protocol must be mqtt.MQTTv31, mqtt.MQTTv311 or mqtt.MQTTv5" },
		{ function() publish.single{ topic = "a", keepalive = 2 } end, "keepalive must be 0 %(off%) or between 5 and 65535" },
	}
	for i, case in ipairs(cases) do
		local msg = t:raises(case[1], case[2])
		t:match(msg, "^[^:]*helpers_publish%.lua:%d+: ", "case " .. i .. " located at the caller")
	end
end)

test("transport and proxy_args are passed on to the Client", function(t)
	-- what this mqlua's Client says about them is what the helper says
	local c_ok, c_err = pcall(mqtt.Client, { client_id = "hp-ws", transport = "websockets" })
	local h_ok, h_err = pcall(publish.single, { topic = "a", transport = "websockets" })
	if c_ok then
		t:ok(h_ok or not h_err:find("transport", 1, true), "helper refused a transport the Client takes: " .. tostring(h_err))
	else
		t:eq(h_ok, false, "helper with an unsupported transport")
		t:ok(h_err:find(c_err:match("%((.*)%)"), 1, true), "same reason as Client: " .. tostring(h_err))
	end
	if mqtt.Client("hp-proxy").proxy_set == nil then
		t:raises(function() publish.single{ topic = "a", proxy_args = { proxy_type = "socks5", proxy_addr = "h" } } end,
			"bad argument 'proxy_args' to 'single' %(this mqlua has no proxy support")
	end
end)

test("in a script run by mqlua: single and multiple from the main chunk and from a callback", function(t)
	local dir = T.tmpdir()
	local f = assert(io.open(dir .. "/child.lua", "w"))
	f:write([[
		local mqtt = require "mqlua"
		local publish = require "mqlua.publish"
		local host, port = arg[1], tonumber(arg[2])
		publish.single("hp/child", "from main", 1, false, host, port)
		mqtt.after(0.1, function()
			publish.multiple({ { "hp/child", "from a timer", 2 } }, host, port)
			print("done")
		end)
	]])
	f:close()
	local c, got = listener(t, "hp-child-l", "hp/child")
	local out, status = T.sh(T.mqlua() .. " " .. dir .. "/child.lua " .. broker.host .. " " .. broker.port .. " 2>&1")
	t:eq(status, 0, "exit status; output:\n" .. out)
	t:eq(out, "done\n", "output (no warning)")
	t:ok(T.wait_until(function() return #got == 2 end), "two messages")
	t:eq(T.payloads(got), { "from main", "from a timer" }, "payloads")
	c:disconnect()
end)

test("mqlua.publish and mqlua.subscribe: the same modules, loaded on first use", function(t)
	local out, status = T.sh(T.mqlua() .. [[ -e 'local m = require "mqlua"
		print(rawget(m, "publish"), package.loaded["mqlua.subscribe"])
		print(m.publish == require "mqlua.publish", m.subscribe == require "mqlua.subscribe", m.nothing)
		print(rawget(m, "publish") == m.publish)' 2>&1]])
	t:eq(status, 0, "exit status; output:\n" .. out)
	t:eq(out, "nil\tnil\ntrue\ttrue\tnil\ntrue\n", "output")
	local c, got = listener(t, "hp-lazy-l", "hp/lazy")
	mqtt.publish.single("hp/lazy", "via mqlua.publish", 1)
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	c:disconnect()
end)
