-- client_errors.lua - what goes wrong, and how a script hears about it:
-- programmer errors raise with a message naming the argument, errors in a
-- script's callbacks are logged with a traceback and the runtime carries on,
-- connection failures return paho's rc with words, and connect_async keeps
-- retrying until a broker appears.
local mqtt = require "mqlua"
local test = T.test

local broker = T.broker()
local connected, subscribed = T.connected, T.subscribed



-- Lua pattern for a literal string.
-- A broker on a chosen port (not the default one).
local function broker_on(port)
	local b, err = mqtt.broker.start { port = port, default = false }
	assert(b, err)
	return b
end

local function lit(s)
	return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- Writes a child script into a temporary directory and runs it with the
-- mqlua under test; returns its stdout+stderr and exit code.
local tmp = T.tmpdir()
local function run_child(name, source, ...)
	local path = tmp .. "/" .. name .. ".lua"
	local f = assert(io.open(path, "w"))
	f:write(source)
	f:close()
	local args = {}
	for i, a in ipairs { ... } do args[i] = "'" .. tostring(a) .. "'" end
	return T.sh("env -u MQLUA_BROKER timeout 20 " .. T.mqlua() .. " " .. path .. " " .. table.concat(args, " ") .. " 2>&1")
end

---------------------------------------------------------------------------
-- publish arguments

test("publish: a wildcard in the topic raises", function(t)
	local c = mqtt.Client("err-pub")
	t:raises(function() c:publish("a/+/b", "x") end,
		"bad argument #1 to 'publish' %(topic must not contain the wildcards '%+' or '#'%)")
	t:raises(function() c:publish("a/#", "x") end, "topic must not contain the wildcards '%+' or '#'")
	t:raises(function() c:publish("+", "x") end, "topic must not contain the wildcards")
	t:raises(function() c:publish("a#b", "x") end, "topic must not contain the wildcards")
end)

test("publish: NUL, empty, too long, invalid UTF-8, not a string", function(t)
	local c = mqtt.Client("err-pub2")
	t:raises(function() c:publish("a\0b", "x") end, "bad argument #1 to 'publish' %(topic must not contain a NUL character%)")
	t:raises(function() c:publish("", "x") end, "bad argument #1 to 'publish' %(topic must not be empty%)")
	t:raises(function() c:publish(string.rep("a", 65536), "x") end,
		"bad argument #1 to 'publish' %(topic is longer than 65535 bytes%)")
	t:raises(function() c:publish("caf\xc3", "x") end, "topic is not valid UTF%-8")
	t:raises(function() c:publish("a\xff/b", "x") end, "topic is not valid UTF%-8")
	t:raises(function() c:publish("\xed\xa0\x80", "x") end, "topic is not valid UTF%-8")   -- a UTF-16 surrogate
	t:raises(function() c:publish(nil, "x") end, "topic must be a string, got nil")
	t:raises(function() c:publish(12, "x") end, "topic must be a string, got number")
	-- the boundaries are accepted: the longest topic, multi-byte UTF-8
	t:eq(c:publish(string.rep("a", 65535), "x").rc, mqtt.MQTT_ERR_NO_CONN, "65535 bytes is a valid topic")
	t:eq(c:publish("caf\xc3\xa9/\xe2\x82\xac", "x").rc, mqtt.MQTT_ERR_NO_CONN, "valid UTF-8 is accepted")
end)

test("publish: qos outside 0..2 raises", function(t)
	local c = mqtt.Client("err-qos")
	t:raises(function() c:publish("a", "x", 3) end, "bad argument #3 to 'publish' %(qos must be 0, 1 or 2, got 3%)")
	t:raises(function() c:publish("a", "x", -1) end, "qos must be 0, 1 or 2, got %-1")
	t:raises(function() c:publish("a", "x", 1.5) end, "qos must be 0, 1 or 2, got 1%.5")
	t:raises(function() c:publish("a", "x", {}) end, "qos must be 0, 1 or 2, got a table")
	t:raises(function() c:publish("a", "x", "1") end, "qos must be 0, 1 or 2, got a string")
	t:raises(function() c:subscribe("a", "1") end, "qos must be 0, 1 or 2, got")
	t:raises(function() c:publish{ topic = "a", qos = 7 } end, "qos must be 0, 1 or 2, got 7")
end)

test("publish: payload of a wrong type raises", function(t)
	local c = mqtt.Client("err-payload")
	for _, bad in ipairs { { {}, "table" }, { true, "boolean" }, { false, "boolean" }, { print, "function" },
		{ coroutine.create(print), "thread" }, { c, "userdata" } } do
		t:raises(function() c:publish("a", bad[1]) end,
			"bad argument #2 to 'publish' %(payload must be a string, a number or nil, got " .. bad[2] .. "%)")
	end
	t:raises(function() c:publish("a", "x", 0, "yes") end, "retain must be a boolean, got string")
	t:raises(function() c:publish{ topic = "a", payload = "x", retian = true } end, "unknown argument 'retian'")
end)

test("will_set checks its arguments like publish", function(t)
	local c = mqtt.Client("err-will")
	t:raises(function() c:will_set("a/#", "x") end, "bad argument #1 to 'will_set' %(topic must not contain the wildcards")
	t:raises(function() c:will_set("", "x") end, "topic must not be empty")
	t:raises(function() c:will_set("a", {}) end, "payload must be a string, a number or nil, got table")
	t:raises(function() c:will_set("a", "x", 3) end, "qos must be 0, 1 or 2, got 3")
end)

---------------------------------------------------------------------------
-- subscribe / unsubscribe / message_callback_add arguments

test("subscribe: malformed filters raise, naming the filter", function(t)
	local c = mqtt.Client("err-sub")
	t:raises(function() c:subscribe("a/#/b") end,
		"bad argument #1 to 'subscribe' %(topic filter 'a/#/b' has a '#' that is not the whole last level%)")
	t:raises(function() c:subscribe("a+") end, "topic filter 'a%+' has a '%+' that is not a whole level")
	t:raises(function() c:subscribe("+a/b") end, "topic filter '%+a/b' has a '%+' that is not a whole level")
	t:raises(function() c:subscribe("a/b#") end, "topic filter 'a/b#' has a '#' that is not the whole last level")
	t:raises(function() c:subscribe("#/") end, "has a '#' that is not the whole last level")
	t:raises(function() c:subscribe("") end, "topic filter '' must not be empty")
	t:raises(function() c:subscribe("a\0b") end, "must not contain a NUL character")
	t:raises(function() c:subscribe("a\xff") end, "is not valid UTF%-8")
	t:raises(function() c:subscribe(string.rep("x", 65536)) end, "is longer than 65535 bytes")
	t:raises(function() c:subscribe({ "a/#/b", 1 }) end, "topic filter 'a/#/b'")
	t:raises(function() c:subscribe({ { "ok", 0 }, { "a+", 1 } }) end, "topic filter 'a%+'")
	t:raises(function() c:subscribe(5) end, "topic must be a string or a table, got number")
	t:raises(function() c:subscribe({}) end, "the list of subscriptions is empty")
	t:raises(function() c:subscribe({ { "a", 1 }, "b" }) end, "element 2 must be a {topic, qos} table")
	t:raises(function() c:subscribe({ { "a", 1 }, { 5, 1 } }) end, "element 2: topic must be a string")
	t:raises(function() c:subscribe({ "a", 1 }, 2) end, "qos must not be given with a {topic, qos} table")
end)

test("subscribe: qos outside 0..2 raises, in every form", function(t)
	local c = mqtt.Client("err-subqos")
	t:raises(function() c:subscribe("a", 3) end, "bad argument #2 to 'subscribe' %(qos must be 0, 1 or 2, got 3%)")
	t:raises(function() c:subscribe("a", -1) end, "qos must be 0, 1 or 2, got %-1")
	t:raises(function() c:subscribe{ topic = "a", qos = 9 } end, "qos must be 0, 1 or 2, got 9")
	-- inside a table the blame goes to the table argument (#1), not to a stack slot
	t:raises(function() c:subscribe({ "a", 5 }) end, "bad argument #1 to 'subscribe' %(.*qos must be 0, 1 or 2, got 5%)")
	t:raises(function() c:subscribe({ { "a", 1 }, { "b", 5 } }) end,
		"bad argument #1 to 'subscribe' %(element 2: qos must be 0, 1 or 2, got 5%)")
end)

test("subscribe: at most 64 filters per qos; a refused list sends nothing at all", function(t)
	local c = connected(t, "err-sub64")
	local acks, got = {}, {}
	c.on_subscribe = function(_, _, mid, granted) acks[#acks + 1] = { mid, #granted } end
	c.on_message = function(_, _, m) got[#got + 1] = m.topic end
	local list = { { "s64/zero", 0 } }
	for i = 1, 65 do list[#list + 1] = { "s64/one/" .. i, 1 } end
	t:raises(function() c:subscribe(list) end,
		"bad argument #1 to 'subscribe' %(at most 64 filters with the same qos in one subscribe%(%)%)")
	table.remove(list)   -- 64 at qos 1 is fine
	local rc, mid = c:subscribe(list)
	t:eq(rc, 0, "64 filters of one qos")
	t:ok(T.wait_until(function() return #acks >= 1 end), "on_subscribe")
	mqtt.sleep(0.2)
	t:eq(acks, { { mid, 65 } }, "one on_subscribe with 65 granted qos, for the accepted call only")
	c:unsubscribe("s64/zero")
	mqtt.sleep(0.1)
	local d = connected(t, "err-sub64-b")
	acks = {}
	local bad = { { "s64/b/zero", 0 } }
	for i = 1, 65 do bad[#bad + 1] = { "s64/b/" .. i, 2 } end
	d.on_subscribe = function(_, _, m) acks[#acks + 1] = m end
	d.on_message = function(_, _, m) got[#got + 1] = m.topic end
	t:raises(function() d:subscribe(bad) end, "at most 64 filters with the same qos")
	c:publish("s64/b/zero", "x")
	mqtt.sleep(0.3)
	t:eq(acks, {}, "no SUBSCRIBE went out for the refused call")
	t:eq(got, {}, "not even for the qos 0 part")
	c:disconnect()
	d:disconnect()
end)

test("unsubscribe and message_callback_add check filters", function(t)
	local c = mqtt.Client("err-unsub")
	t:raises(function() c:unsubscribe("a+") end,
		"bad argument #1 to 'unsubscribe' %(topic filter 'a%+' has a '%+' that is not a whole level%)")
	t:raises(function() c:unsubscribe({ "a", "#/a" }) end, "topic filter '#/a' has a '#'")
	t:raises(function() c:unsubscribe({ "a", 5 }) end, "element 2 must be a string")
	t:raises(function() c:unsubscribe(true) end, "topic must be a string or a list of strings, got boolean")
	t:raises(function() c:message_callback_add("a/#/b", print) end,
		"bad argument #1 to 'message_callback_add' %(topic filter 'a/#/b' has a '#'")
	t:raises(function() c:message_callback_add("a/+", 5) end,
		"bad argument #2 to 'message_callback_add' %(callback must be a function, got number%)")
end)

---------------------------------------------------------------------------
-- other argument errors

test("connect, reconnect and settings reject bad arguments", function(t)
	local c = mqtt.Client("err-connect")
	t:raises(function() c:connect("127.0.0.1", 0) end, "bad argument #2 to 'connect' %(port must be between 1 and 65535%)")
	t:raises(function() c:connect("127.0.0.1", 65536) end, "port must be between 1 and 65535")
	t:raises(function() c:connect("127.0.0.1", 1883, -1) end, "keepalive must be 0 %(off%) or between 5 and 65535")
	t:raises(function() c:connect("127.0.0.1", 1883, 1) end,
		"bad argument #3 to 'connect' %(keepalive must be 0 %(off%) or between 5 and 65535%)")
	t:raises(function() c:connect("127.0.0.1", 1883, 4) end, "keepalive must be 0 %(off%) or between 5 and 65535")
	t:raises(function() c:connect("127.0.0.1", 1883, 65536) end, "keepalive must be 0 %(off%) or between 5 and 65535")
	t:raises(function() c:connect{ host = "127.0.0.1", prot = 1 } end, "unknown argument 'prot'")
	t:raises(function() c:reconnect() end, "reconnect%(%) called before connect%(%)")
	t:raises(function() c:reconnect_delay_set(0, 1) end, "min_delay must be positive")
	t:raises(function() c:reconnect_delay_set(2, 1) end, "max_delay must be at least min_delay")
	t:raises(function() c:max_inflight_messages_set(-1) end, "inflight must be between 0 and 65535")
	t:raises(function() c:username_pw_set(nil, "pw") end, "username is required when a password is given")
	t:raises(function() c:loop(-1) end, "timeout must not be negative")
	t:raises(function() c.on_connect = 5 end, "on_connect must be a function or nil, got number")
	t:raises(function() c.on_conect = print end, "unknown callback 'on_conect'")
	t:raises(function() c:publish() end, "bad argument #1 to 'publish' %(topic must be a string, got nil%)")
	t:raises(function() c.publish(42, "a") end, "Client expected, got number")
end)

test("connect() with no host and no default broker raises", function(t)
	local out, code = T.sh("env -u MQLUA_BROKER " .. T.mqlua() ..
		[[ -e 'local c = require("mqlua").Client("x"); c:connect()' 2>&1]])
	t:eq(code, 1, "exit status")
	t:match(out, "bad argument #1 to 'connect' %(host is required: no default broker", "error text")
end)

test("MQTTMessageInfo and MQTTMessage reject unknown fields", function(t)
	local c = connected(t, "err-fields")
	local info = c:publish("fields/x", "y")
	t:raises(function() return info.bogus end, "MQTTMessageInfo has no field 'bogus'")
	local err
	c.on_message = function(_, _, m)
		local ok, e = pcall(function() return m.bogus end)
		err = ok and "no error" or e
	end
	subscribed(t, c, "fields/#")
	c:publish("fields/x", "y")
	t:ok(T.wait_until(function() return err end), "message arrived")
	t:match(err, "MQTTMessage has no field 'bogus'", "message field error")
	c:disconnect()
end)

---------------------------------------------------------------------------
-- runtime failures returned as rc

test("publish while not connected: rc NO_CONN at QoS 0 (wait_for_publish raises); QoS 1 is queued (waits)", function(t)
	local c = mqtt.Client("err-noconn")
	local i0 = c:publish("a", "x", 0)
	t:eq(i0.rc, mqtt.MQTT_ERR_NO_CONN, "qos 0 rc")
	t:eq(i0:is_published(), false, "not published")
	t:raises(function() i0:wait_for_publish(0.1) end,
		"message publish failed: " .. lit(mqtt.error_string(mqtt.MQTT_ERR_NO_CONN)))
	local i1 = c:publish("a", "x", 1)
	t:eq(i1.rc, mqtt.MQTT_ERR_SUCCESS, "qos 1 rc: queued in the store")
	t:eq(c:queue_depth(), 1, "one message queued")
	local t0 = mqtt.time()
	t:eq(i1:wait_for_publish(0.3), false, "wait_for_publish times out")
	local waited = mqtt.time() - t0
	t:ok(waited >= 0.29 and waited < 2, "waited about the timeout (" .. waited .. " s)")
	t:eq(c:disconnect(), mqtt.MQTT_ERR_NO_CONN, "disconnect when not connected")
end)

test("connect to a closed port: rc ~= 0, 'Connection refused', no retry", function(t)
	local port = mqtt.broker.free_port()
	local c = mqtt.Client("err-refused")
	local fails, conns = 0, 0
	c.on_connect_fail = function() fails = fails + 1 end
	c.on_connect = function() conns = conns + 1 end
	local rc, words = c:connect("127.0.0.1", port)
	t:eq(rc, mqtt.MQTT_ERR_ERRNO, "rc")
	t:ok(rc ~= 0, "rc is not success")
	t:eq(words, "Connection refused", "words")
	t:eq(c:last_error(), "Connection refused", "last_error")
	t:eq(c:is_connected(), false, "not connected")
	mqtt.sleep(0.5)
	t:eq({ fails, conns }, { 0, 0 }, "a failed connect() is not retried")
	t:eq(c:last_error(), "Connection refused", "last_error stays")
end)

test("connect to an unknown host: rc and words", function(t)
	local c = mqtt.Client("err-unknown")
	local rc, words = c:connect("nonexistent.invalid", 1883)
	t:ok(rc ~= 0, "rc is not success (" .. tostring(rc) .. ")")
	t:eq(rc, mqtt.MQTT_ERR_ERRNO, "paho's code for a failed lookup")
	t:eq(words, "cannot resolve host 'nonexistent.invalid'", "words")
	t:eq(c:last_error(), words, "last_error")
	t:eq(c:is_connected(), false, "not connected")
end)

test("a failed connect then a good one clears last_error", function(t)
	local c = mqtt.Client("err-then-ok")
	local rc = c:connect("127.0.0.1", mqtt.broker.free_port())
	t:ok(rc ~= 0, "first connect fails")
	t:ok(c:last_error(), "last_error set")
	t:eq(c:connect(), 0, "connect to the broker")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	t:eq(c:last_error(), nil, "last_error cleared by a successful connection")
	c:disconnect()
end)

test("connect_async to a closed port: on_connect_fail with backoff, then connects when a broker appears", function(t)
	local port = mqtt.broker.free_port()
	local c = mqtt.Client("err-async")
	c:reconnect_delay_set(0.1, 0.2)
	local fail_times, connects = {}, {}
	c.on_connect_fail = function(client, userdata)
		t:ok(rawequal(client, c), "on_connect_fail got the client")
		fail_times[#fail_times + 1] = mqtt.time()
	end
	c.on_connect = function(_, _, flags, rc) connects[#connects + 1] = rc end
	c:connect_async("127.0.0.1", port)
	t:ok(T.wait_until(function() return #fail_times >= 5 end, 5), "five failed attempts (" .. #fail_times .. ")")
	for i = 2, #fail_times do
		local gap = fail_times[i] - fail_times[i - 1]
		t:ok(gap >= 0.09 and gap <= 0.4, "gap " .. i .. " within the 0.1..0.2 s backoff (" .. gap .. ")")
	end
	t:eq(c:is_connected(), false, "not connected")
	t:eq(c:last_error(), "Connection refused", "last_error")
	t:eq(#connects, 0, "no on_connect")

	local b = broker_on(port)
	t:ok(T.wait_until(function() return c:is_connected() end, 5), "connected once the broker listens")
	t:eq(connects, { 0 }, "on_connect rc 0")
	local n = #fail_times
	mqtt.sleep(0.5)
	t:eq(#fail_times, n, "no more on_connect_fail once connected")
	-- and it works
	local got
	c.on_message = function(_, _, m) got = m.payload end
	subscribed(t, c, "async/x")
	c:publish("async/x", "hello")
	t:ok(T.wait_until(function() return got end), "message round trip")
	t:eq(got, "hello", "payload")
	c:disconnect()
	b:stop()
end)

---------------------------------------------------------------------------
-- errors in script callbacks

test("an error in on_message is counted out: the next message is still delivered", function(t)
	local c = connected(t, "err-cb")
	local got = {}
	c.on_message = function(_, _, m)
		got[#got + 1] = m.payload
		if m.payload == "bad" then error("handler failed on purpose") end
	end
	c:message_callback_add("cb/filtered", function(_, _, m)
		got[#got + 1] = "filtered " .. m.payload
		error({ "not a string" })
	end)
	subscribed(t, c, "cb/#", 1)
	for _, p in ipairs { "bad", "good" } do c:publish("cb/x", p, 1) end
	c:publish("cb/filtered", "one", 1)
	c:publish("cb/filtered", "two", 1)
	c:publish("cb/x", "after", 1)
	t:ok(T.wait_until(function() return #got == 5 end), "every message was handled (" .. #got .. ")")
	t:eq(got, { "bad", "good", "filtered one", "filtered two", "after" }, "in order, none lost")
	t:eq(c:is_connected(), true, "still connected")
	c:disconnect()
end)

test("callback errors are logged on stderr with a traceback; the script goes on", function(t)
	local out, code = run_child("callback_errors", [=[
local mqtt = require "mqlua"
local port = tonumber(arg[1])
local c = mqtt.Client("err-child")
local function explode(what) error("boom in " .. what) end
c.on_connect = function(client)
	client:subscribe("child/#", 1)
	explode("on_connect")
end
c.on_subscribe = function(client)
	client:publish("child/x", "bad", 1)
	client:publish("child/x", "good", 1)
end
c.on_message = function(client, _, msg)
	if msg.payload == "bad" then explode("on_message") end
	print("GOT " .. msg.payload)
	client:disconnect()
end
c:connect("127.0.0.1", port)
]=], broker.port)
	t:eq(code, 0, "the child ran to its end and exited 0:\n" .. out)
	t:match(out, "ERROR %[callback_errors%.lua%] error in on_connect: [^\n]*callback_errors%.lua:4: boom in on_connect\nstack traceback:",
		"on_connect error with traceback")
	t:match(out, "ERROR %[callback_errors%.lua%] error in on_message %(child/x%): [^\n]*callback_errors%.lua:4: boom in on_message\nstack traceback:",
		"on_message error with traceback")
	t:match(out, "callback_errors%.lua:14: in function", "the traceback names the handler's line")
	t:match(out, "\nGOT good\n", "the next message was delivered")
	t:ok(not out:find("GOT bad", 1, true), "the failing handler did not go on")
	local _, errors = out:gsub("ERROR %[callback_errors%.lua%] error in ", "")
	t:eq(errors, 2, "two errors logged")
end)

test("Client{} is the keyword form with every argument left out", function(t)
	local c = mqtt.Client {}
	t:match(c.client_id, "^mqlua%x+$", "a generated client id")
	t:eq(c.clean_session, true, "clean_session defaults to true")
	t:raises(function() mqtt.Client { client_id = "x", clean_sesion = false } end, "unknown argument 'clean_sesion'")
end)

test("wait_until: an error in the predicate reaches the caller with its message", function(t)
	t:raises(function() mqtt.wait_until(function() error("pred exploded") end, 1) end, "pred exploded")
end)


---------------------------------------------------------------------------
-- reinitialise with a bad argument (found by tests/fuzz/fuzz_client_args:
-- the client used to lose its store, and queue_depth() then crashed)

test("reinitialise: a bad client_id raises and leaves the client as it was", function(t)
	local c = connected(t, "err-reinit")
	local watcher = connected(t, "err-reinit-watch")
	subscribed(t, watcher, "reinit/#", 1)
	t:raises(function() c:reinitialise("a\0b") end,
		"bad argument #1 to 'reinitialise' %(client_id must be valid UTF%-8 without NUL characters%)")
	t:raises(function() c:reinitialise("", false) end, "a client_id must be provided if clean_session is false")
	t:raises(function() c:reinitialise("x", "yes") end, "clean_session must be a boolean, got string")
	t:eq(c.client_id, "err-reinit", "client_id unchanged")
	t:eq(c:is_connected(), true, "still connected")
	t:eq(c:queue_depth(), 0, "queue_depth answers")
	t:eq(#c:dead_letters(), 0, "dead_letters answers")
	local info = c:publish("reinit/after", "still here", 1)
	t:eq(info.rc, 0, "publish rc")
	t:expect_message(watcher, "reinit/after", { payload = "still here" })
	c:disconnect()
	watcher:disconnect()
end)
