-- client_reconnect.lua - a connection's life over time: the broker going
-- away and coming back (backoff, on_disconnect/on_connect, subscriptions
-- restored without duplicates), persistent sessions, loop_forever /
-- loop_stop / loop_start / loop, refused credentials, and the process
-- staying alive while a client is connected.
local mqtt = require "mqlua"
local test = T.test

-- A private broker for one test (not the default one), so that stopping it
-- disturbs no other test.
local function new_broker(opts)
	opts = opts or {}
	opts.default = false
	local b, err = mqtt.broker.start(opts)
	assert(b, err)
	return b
end

-- Stops b and starts a fresh broker (no session kept) on the same port.
local function restart(b, down_for)
	local port = b.port
	b:stop()
	if down_for then mqtt.sleep(down_for) end
	return new_broker { port = port }
end



local function connected(t, b, id, clean) return T.connected(t, id, clean, b) end
local subscribed = T.subscribed

-- Counts the SUBSCRIBE packets c sends (libmosquitto logs each one).
local function count_subscribes(c)
	local n = { value = 0 }
	c.on_log = function(_, _, level, text)
		if text:find("sending SUBSCRIBE", 1, true) then n.value = n.value + 1 end
	end
	return n
end

local tmp = T.tmpdir()

-- Writes a child script and runs it in the background with the mqlua under
-- test; returns a table whose :finished() gives the exit code once it ended
-- and :output() what it printed.
local function spawn(name, source, ...)
	local path = tmp .. "/" .. name .. ".lua"
	local f = assert(io.open(path, "w"))
	f:write(source)
	f:close()
	local args = {}
	for i, a in ipairs { ... } do args[i] = "'" .. tostring(a) .. "'" end
	local out, rc = tmp .. "/" .. name .. ".out", tmp .. "/" .. name .. ".rc"
	os.remove(rc)
	os.execute("(env -u MQLUA_BROKER timeout 20 " .. T.mqlua() .. " " .. path .. " " .. table.concat(args, " ") ..
		" >" .. out .. " 2>&1; echo $? >" .. rc .. ".tmp; mv " .. rc .. ".tmp " .. rc .. ") &")
	return {
		finished = function()
			local h = io.open(rc)
			if not h then return nil end
			local code = tonumber(h:read("a"))
			h:close()
			return code
		end,
		output = function()
			local h = io.open(out)
			if not h then return "" end
			local s = h:read("a")
			h:close()
			return s
		end,
	}
end

---------------------------------------------------------------------------
-- the broker goes away and comes back

test("broker restart: on_disconnect rc ~= 0, backoff, on_connect again, subscriptions restored", function(t)
	local b = new_broker()
	local c = mqtt.Client("rc-restore")
	c:reconnect_delay_set(0.1, 0.5)
	local events, fails, got = {}, {}, {}
	c.on_connect = function(_, _, flags, rc) events[#events + 1] = { "connect", rc, flags.session_present } end
	c.on_disconnect = function(client, _, rc)
		events[#events + 1] = { "disconnect", rc, client:last_error() }
		fails.down_at = mqtt.time()
	end
	c.on_connect_fail = function() fails[#fails + 1] = mqtt.time() end
	c.on_message = function(_, _, m) got[#got + 1] = { m.topic, m.payload, m.qos } end
	local subs = count_subscribes(c)
	t:eq(c:connect(b.host, b.port), 0, "connect")
	t:ok(T.wait_until(function() return #events == 1 end), "first on_connect")
	subscribed(t, c, { { "restore/one", 1 }, { "restore/two/#", 2 }, { "restore/gone", 0 } })
	t:eq(c:unsubscribe("restore/gone"), 0, "unsubscribe one filter before the outage")
	mqtt.sleep(0.1)
	t:eq(subs.value, 3, "one SUBSCRIBE per distinct qos so far")

	b = restart(b, 1.5)
	t:ok(T.wait_until(function() return #events >= 3 end, 5), "on_disconnect then on_connect again")
	t:eq(events[1], { "connect", 0, false }, "first connection")
	t:eq(events[2][1], "disconnect", "then on_disconnect")
	t:ok(events[2][2] ~= 0, "with rc ~= 0 (" .. tostring(events[2][2]) .. ")")
	t:eq(events[2][2], mqtt.MQTT_ERR_CONN_LOST, "rc is MQTT_ERR_CONN_LOST")
	t:eq(events[2][3], "connection lost", "last_error in on_disconnect")
	t:eq(events[3], { "connect", 0, false }, "on_connect again, the new broker kept no session")

	-- backoff between the failed attempts while the broker was down
	t:ok(#fails >= 3, "several failed attempts while down (" .. #fails .. ")")
	local gaps = { fails[1] - fails.down_at }
	for i = 2, #fails do gaps[#gaps + 1] = fails[i] - fails[i - 1] end
	t:ok(gaps[1] >= 0.09 and gaps[1] <= 0.2, "first retry after about min_delay (" .. gaps[1] .. " s)")
	local longest = 0
	for i, g in ipairs(gaps) do
		t:ok(g >= 0.09 and g <= 0.65, "gap " .. i .. " within [min, max] (" .. g .. " s)")
		if g > longest then longest = g end
	end
	t:ok(longest >= 0.3, "the delay grew towards max_delay (longest " .. longest .. " s)")

	-- resubscribed on its own: the filters it had, at their qos, not the unsubscribed one
	t:ok(T.wait_until(function() return subs.value >= 5 end), "SUBSCRIBE sent again")
	local pub = connected(t, b, "rc-restore-pub")
	mqtt.sleep(0.2)   -- let the resubscription's SUBACK arrive
	pub:publish("restore/gone", "no", 2)
	pub:publish("restore/one", "one", 2)
	pub:publish("restore/two/x", "two", 2)
	t:ok(T.wait_until(function() return #got >= 2 end), "messages after the restart arrive")
	mqtt.sleep(0.2)
	table.sort(got, function(x, y) return x[1] < y[1] end)
	t:eq(got, { { "restore/one", "one", 1 }, { "restore/two/x", "two", 2 } },
		"both remembered filters at their qos, nothing from the unsubscribed one")
	t:eq(subs.value, 5, "exactly one resubscription: one SUBSCRIBE per remembered filter")
	c:disconnect()
	pub:disconnect()
	b:stop()
end)

test("subscribing in on_connect: no automatic resubscription, no duplicate deliveries", function(t)
	local b = new_broker()
	local c = mqtt.Client("rc-onconnect")
	c:reconnect_delay_set(0.1, 0.5)
	local connects, subacks, got, fails = 0, 0, {}, {}
	c.on_connect = function(client)
		connects = connects + 1
		client:subscribe("dup/#", 1)
	end
	c.on_subscribe = function() subacks = subacks + 1 end
	c.on_message = function(_, _, m) got[#got + 1] = m.payload end
	c.on_disconnect = function() fails.down_at = mqtt.time() end
	c.on_connect_fail = function() fails[#fails + 1] = mqtt.time() end
	local subs = count_subscribes(c)
	c:connect(b.host, b.port)
	t:ok(T.wait_until(function() return subacks == 1 end), "subscribed from on_connect")

	for round = 1, 2 do
		b = restart(b, 0.3)
		t:ok(T.wait_until(function() return subacks == round + 1 end), "subscribed again, round " .. round)
		t:eq(connects, round + 1, "on_connect count")
		t:ok(#fails >= 1, "at least one failed attempt")
		t:ok(fails[1] - fails.down_at <= 0.2, "the backoff starts again at min_delay after a good connection (" ..
			(fails[1] - fails.down_at) .. " s)")
		fails = {}
		local pub = connected(t, b, "rc-onconnect-pub")
		got = {}
		pub:publish("dup/x", "once-" .. round, 1)
		t:ok(T.wait_until(function() return #got >= 1 end), "delivered")
		mqtt.sleep(0.3)
		t:eq(got, { "once-" .. round }, "delivered exactly once")
		t:eq(subs.value, round + 1, "one SUBSCRIBE per connection: the script's own")
		t:eq(subacks, round + 1, "one on_subscribe per connection")
		pub:disconnect()
	end
	c:disconnect()
	b:stop()
end)

test("a QoS 1 message published during the outage is delivered after the reconnect", function(t)
	local b = new_broker()
	local c = mqtt.Client("rc-outage")
	c:reconnect_delay_set(0.6, 1)
	local connects = 0
	c.on_connect = function() connects = connects + 1 end
	c:connect(b.host, b.port)
	t:ok(T.wait_until(function() return connects == 1 end), "connected")
	local port = b.port
	b:stop()
	t:ok(T.wait_until(function() return not c:is_connected() end), "noticed the outage")
	local info = c:publish("outage/x", "kept for later", 1)
	t:eq(info.rc, mqtt.MQTT_ERR_SUCCESS, "rc while disconnected: queued")
	b = new_broker { port = port }
	-- a subscriber is ready before the client's first retry (>= 0.6 s)
	local sub = connected(t, b, "rc-outage-sub")
	local got = {}
	sub.on_message = function(_, _, m) got[#got + 1] = m.payload end
	subscribed(t, sub, "outage/#", 1)
	t:eq(connects, 1, "the client has not reconnected yet")
	t:eq(info:wait_for_publish(5), true, "acknowledged after the reconnect")
	t:ok(T.wait_until(function() return #got >= 1 end), "delivered")
	mqtt.sleep(0.2)
	t:eq(got, { "kept for later" }, "exactly once")
	c:disconnect()
	sub:disconnect()
	b:stop()
end)

test("disconnect() during the backoff stops the retries", function(t)
	local b = new_broker()
	local c = mqtt.Client("rc-giveup")
	c:reconnect_delay_set(0.1, 0.2)
	local connects, fails, discs = 0, 0, {}
	c.on_connect = function() connects = connects + 1 end
	c.on_connect_fail = function() fails = fails + 1 end
	c.on_disconnect = function(_, _, rc) discs[#discs + 1] = rc end
	c:connect(b.host, b.port)
	t:ok(T.wait_until(function() return connects == 1 end), "connected")
	local port = b.port
	b:stop()
	t:ok(T.wait_until(function() return fails >= 2 end), "retrying")
	t:eq(c:disconnect(), mqtt.MQTT_ERR_NO_CONN, "disconnect while down: not connected")
	local n = fails
	b = new_broker { port = port }
	mqtt.sleep(0.8)
	t:eq(fails, n, "no attempt after disconnect()")
	t:eq(connects, 1, "did not reconnect")
	t:eq(c:is_connected(), false, "still disconnected")
	t:eq(discs, { mqtt.MQTT_ERR_CONN_LOST }, "one on_disconnect, for the lost connection")
	b:stop()
end)

test("keepalive: PINGREQ when idle, a broker that stops answering is dropped and reconnected", function(t)
	local b = new_broker()
	local c = mqtt.Client("rc-keepalive")
	c:reconnect_delay_set(0.1, 0.5)
	local log, events, t0 = {}, {}, nil
	c.on_log = function(_, _, level, text)
		if text:find("PINGREQ", 1, true) then log[#log + 1] = { level, mqtt.time() - t0 } end
	end
	c.on_connect = function(_, _, _, rc) events[#events + 1] = { "connect", rc } end
	c.on_disconnect = function(client, _, rc) events[#events + 1] = { "disconnect", rc, client:last_error() } end
	t0 = mqtt.time()
	t:eq(c:connect(b.host, b.port, 5), 0, "connect with keepalive 5")
	t:ok(T.wait_until(function() return #events == 1 end), "connected")
	t:eq(os.execute("kill -STOP " .. b.pid), true, "broker frozen")
	local ok = T.wait_until(function() return #events >= 2 end, 14)
	os.execute("kill -CONT " .. b.pid)
	t:ok(ok, "the silent broker was noticed")
	local gone_after = mqtt.time() - t0
	t:ok(#log >= 1, "a PINGREQ was sent")
	t:eq(log[1][1], mqtt.MQTT_LOG_DEBUG, "on_log level of a packet trace")
	t:ok(log[1][2] >= 4.5 and log[1][2] <= 6.5, "PINGREQ after about keepalive seconds (" .. log[1][2] .. ")")
	t:ok(gone_after <= 12, "dropped within two keepalive intervals (" .. gone_after .. " s)")
	t:eq(events[2], { "disconnect", mqtt.MQTT_ERR_KEEPALIVE,
		"no answer from the broker within the keepalive interval (5 s)" }, "on_disconnect")
	t:ok(T.wait_until(function() return #events >= 3 end, 5), "reconnected once the broker answers again")
	t:eq(events[3], { "connect", 0 }, "on_connect")
	c:disconnect()
	b:stop()
end)

---------------------------------------------------------------------------
-- persistent sessions

test("clean_session=false: session_present on reconnect, offline messages, no resubscription", function(t)
	local b = new_broker()
	local c = mqtt.Client("rc-persistent", false)
	local flags_seen, got = {}, {}
	c.on_connect = function(_, _, flags, rc) flags_seen[#flags_seen + 1] = { flags.session_present, rc } end
	c.on_message = function(_, _, m) got[#got + 1] = { m.payload, m.qos } end
	local subs = count_subscribes(c)
	c:connect(b.host, b.port)
	t:ok(T.wait_until(function() return #flags_seen == 1 end), "connected")
	subscribed(t, c, "persist/#", 1)
	c:disconnect()
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")

	local pub = connected(t, b, "rc-persistent-pub")
	t:ok(pub:publish("persist/x", "while away", 1):wait_for_publish(5), "published while the client was away")
	t:eq(c:connect(b.host, b.port), 0, "connect again")
	t:ok(T.wait_until(function() return #flags_seen == 2 end), "on_connect again")
	t:eq(flags_seen, { { false, 0 }, { true, 0 } }, "session_present false, then true")
	t:ok(T.wait_until(function() return #got == 1 end), "the queued message arrived")
	t:eq(got, { { "while away", 1 } }, "queued message")
	mqtt.sleep(0.2)
	t:eq(subs.value, 1, "the broker kept the session: no SUBSCRIBE sent again")
	c:disconnect()
	pub:disconnect()
	b:stop()
end)

---------------------------------------------------------------------------
-- running the loop

test("loop_forever returns after disconnect() from a callback", function(t)
	local b = new_broker()
	local child = spawn("forever", [=[
local mqtt = require "mqlua"
local c = mqtt.Client("rc-forever")
local disc_rc
c.on_connect = function(client) client:subscribe("forever/x") end
c.on_subscribe = function(client) client:publish("forever/x", "stop") end
c.on_message = function(client, _, msg)
	print("message " .. msg.payload)
	print("disconnect rc " .. client:disconnect())
end
c.on_disconnect = function(_, _, rc) disc_rc = rc end
print("connect rc " .. c:connect("127.0.0.1", tonumber(arg[1])))
local rc = c:loop_forever()
print("loop_forever returned " .. tostring(rc) .. " on_disconnect rc " .. tostring(disc_rc))
print("is_connected " .. tostring(c:is_connected()))
]=], b.port)
	t:ok(T.wait_until(function() return child.finished() end, 25), "the child ended")
	local out = child.output()
	t:eq(child.finished(), 0, "exit status 0\n" .. out)
	t:match(out, "connect rc 0\nmessage stop\ndisconnect rc 0\nloop_forever returned 0 on_disconnect rc 0\nis_connected false\n",
		"loop_forever returned after the disconnect")
	b:stop()
end)

test("loop_forever without a connection returns MQTT_ERR_NO_CONN at once", function(t)
	local c = mqtt.Client("rc-forever-noconn")
	local t0 = mqtt.time()
	t:eq(c:loop_forever(), mqtt.MQTT_ERR_NO_CONN, "rc")
	t:ok(mqtt.time() - t0 < 0.5, "returned at once")
end)

test("loop_stop detaches: nothing is processed until loop() or loop_start()", function(t)
	local b = new_broker()
	local c = connected(t, b, "rc-loopstop")
	local got = {}
	c.on_message = function(_, _, m) got[#got + 1] = m.payload end
	subscribed(t, c, "ls/#", 1)
	local pub = connected(t, b, "rc-loopstop-pub")

	t:eq(c:loop_stop(), 0, "loop_stop")
	t:eq(c:loop_stop(), mqtt.MQTT_ERR_INVAL, "loop_stop again: nothing to stop")
	t:eq(c:is_connected(), true, "still connected")
	pub:publish("ls/x", "one", 1)
	mqtt.sleep(0.5)
	t:eq(got, {}, "the shared loop no longer drives the client")

	local deadline = mqtt.time() + 5
	while #got == 0 and mqtt.time() < deadline do
		t:eq(c:loop(0.1), 0, "loop() rc")
	end
	t:eq(got, { "one" }, "client:loop() processed the message")

	t:eq(c:loop_start(), 0, "loop_start")
	pub:publish("ls/x", "two", 1)
	t:ok(T.wait_until(function() return #got == 2 end), "the shared loop drives it again")
	t:eq(got, { "one", "two" }, "messages")
	c:disconnect()
	pub:disconnect()
	b:stop()
end)

test("the process stays alive while connected and exits 0 once the script disconnects", function(t)
	local b = new_broker()
	local watcher = connected(t, b, "rc-life-watch")
	local ready = false
	watcher.on_message = function(_, _, m) if m.payload == "ready" then ready = true end end
	subscribed(t, watcher, "life/ready", 1)
	local child = spawn("lifetime", [=[
local mqtt = require "mqlua"
local c = mqtt.Client("rc-life")
c.on_connect = function(client) client:subscribe("life/quit", 1) end
c.on_subscribe = function(client) client:publish("life/ready", "ready", 1) end
c.on_message = function(client) client:disconnect() end
c:connect("127.0.0.1", tonumber(arg[1]))
print("main chunk done")
]=], b.port)
	t:ok(T.wait_until(function() return ready end, 10), "the child connected and subscribed")
	mqtt.sleep(0.5)
	t:eq(child.finished(), nil, "still running after its main chunk: " .. child.output())
	t:match(child.output(), "main chunk done", "the main chunk has returned")
	watcher:publish("life/quit", "quit", 1)
	t:ok(T.wait_until(function() return child.finished() end, 5), "exited after disconnecting")
	t:eq(child.finished(), 0, "exit status 0\n" .. child.output())
	watcher:disconnect()
	b:stop()
end)

---------------------------------------------------------------------------
-- refused connections

test("anonymous client on a broker with allow_anonymous=false: on_connect rc 5", function(t)
	local b = new_broker { allow_anonymous = false }
	local c = mqtt.Client("rc-anon")
	c:reconnect_delay_set(0.2, 0.4)
	local rcs = {}
	c.on_connect = function(client, _, flags, rc)
		rcs[#rcs + 1] = rc
		t:eq(client:is_connected(), false, "not connected inside a refused on_connect")
	end
	t:eq(c:connect(b.host, b.port), 0, "connect() itself succeeds (TCP is up)")
	t:ok(T.wait_until(function() return #rcs >= 1 end), "on_connect called")
	t:eq(rcs[1], mqtt.CONNACK_REFUSED_NOT_AUTHORIZED, "rc")
	t:eq(rcs[1], 5, "paho's value")
	t:eq(c:is_connected(), false, "not connected")
	t:eq(c:last_error(), "Connection Refused: not authorised.", "last_error words")
	t:eq(c:last_error(), mqtt.connack_string(5), "the words are connack_string's")
	c:disconnect()
	local n = #rcs
	mqtt.sleep(0.6)
	t:eq(#rcs, n, "no more attempts after disconnect()")
	b:stop()
end)

test("username_pw_set: right password accepted, wrong one refused", function(t)
	local dir = T.tmpdir()
	local _, code = T.sh("mosquitto_passwd -b -c " .. dir .. "/pw alice 'right-pw' >/dev/null 2>&1 && chmod 644 " ..
		dir .. "/pw")
	t:eq(code, 0, "mosquitto_passwd")
	local b = new_broker { allow_anonymous = false, config = "password_file " .. dir .. "/pw" }
	local results = {}
	for _, pw in ipairs { "right-pw", "wrong-pw" } do
		local c = mqtt.Client("rc-pw-" .. pw)
		c:username_pw_set("alice", pw)
		c.on_connect = function(client, _, _, rc) results[pw] = { rc, client:last_error() } end
		t:eq(c:connect(b.host, b.port), 0, "connect " .. pw)
		t:ok(T.wait_until(function() return results[pw] end), "on_connect " .. pw)
		c:disconnect()
	end
	t:eq(results, { ["right-pw"] = { 0, nil }, ["wrong-pw"] = { 5, "Connection Refused: not authorised." } },
		"results")
	b:stop()
end)
