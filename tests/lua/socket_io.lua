-- socket_io.lua - mqlua reads a client's socket in chunks of up to 64 KiB
-- and sends what handlers publish in batches (runtime/netbuf.c) instead of
-- libmosquitto's system calls per packet: a backlog of small and large
-- messages, packets split across chunks, arrives complete and in order with
-- far fewer reads than packets; a connection dropped with bytes still in the
-- chunk starts clean; the same over TLS; thousands of messages published from
-- a handler leave in few writes, in order; messages published from a timer
-- just before os.exit() still leave.
local mqtt = require "mqlua"
local test = T.test

local certs = T.certs()
local tls_port = mqtt.broker.free_port()
local b = T.broker { config = table.concat({
	"queue_qos0_messages true", "max_queued_messages 0", "max_queued_bytes 0",
	"listener " .. tls_port .. " 127.0.0.1",
	"cafile " .. certs .. "/ca.crt", "certfile " .. certs .. "/server.crt", "keyfile " .. certs .. "/server.key",
}, "\n") }

local function reads() return mqtt.stats().process.socket_reads end

-- The payload of message i: its number, then a size that walks over the
-- chunk boundaries (0 .. 2999 bytes, and every 500th one 100 KB).
local function payload(i)
	local size = i % 500 == 0 and 100000 or (i * 37) % 3000
	local head = string.format("%06d:", i)
	return head .. string.rep(string.char(65 + i % 26), size)
end

-- Fills the offline session of `id` with n QoS 0 messages on topic; returns
-- the subscriber (given, or a new one on the plain listener), disconnected.
local function fill(t, id, topic, n, sub)
	sub = sub or T.connected(t, id, false)
	T.subscribed(t, sub, topic, 0)
	sub:disconnect()
	t:ok(T.wait_until(function() return not sub:is_connected() end), "subscriber away")
	local pub = T.connected(t, id .. "-pub")
	for i = 1, n do pub:publish(topic, payload(i), 0) end
	-- a QoS 1 marker: once it is acknowledged, the broker holds every message before it
	local info = pub:publish(topic, "end", 1)
	info:wait_for_publish(10)
	t:ok(info:is_published(), "backlog stored by the broker")
	pub:disconnect()
	return sub
end

-- Reconnects sub, drains its backlog of n messages and checks every payload;
-- returns the socket reads it took.
local function drain(t, sub, n)
	local got, bad, done = 0, nil, false
	sub.on_message = function(_, _, m)
		if m.payload == "end" then done = true return end
		got = got + 1
		if not bad and m.payload ~= payload(got) then
			bad = string.format("message %d: %d bytes starting %q", got, #m.payload, m.payload:sub(1, 7))
		end
	end
	local before = reads()
	sub:reconnect()
	t:ok(T.wait_until(function() return done end, 60), "the whole backlog drained")
	t:eq(got, n, "every message")
	t:eq(bad, nil, "every payload intact, in order")
	local used = reads() - before
	sub:disconnect()
	return used
end

test("a backlog arrives complete and in order with far fewer reads than packets", function(t)
	local n = 6000
	local used = drain(t, fill(t, "sr-backlog", "sr/backlog", n), n)
	t:ok(used > 0, "reads are counted (" .. used .. ")")
	-- libmosquitto alone reads each packet with 3 calls: 18,000 here
	t:ok(used < n / 4, string.format("%d reads for %d messages", used, n))
end)

test("over TLS: the backlog arrives complete and in order", function(t)
	local n = 3000
	local sub = mqtt.Client("sr-tls", false)
	sub:tls_set(certs .. "/ca.crt")
	t:eq(sub:connect("localhost", tls_port), mqtt.MQTT_ERR_SUCCESS, "connect over TLS")
	t:ok(T.wait_until(function() return sub:is_connected() end), "connected over TLS")
	fill(t, "sr-tls", "sr/tls", n, sub)
	local used = drain(t, sub, n)
	t:ok(used < n / 4, string.format("%d reads for %d messages", used, n))
end)

test("a connection dropped with bytes still in the chunk: the next one starts clean", function(t)
	local sub = fill(t, "sr-drop", "sr/drop", 3000)
	local got, disconnected, after, first_after = 0, false, 0, nil
	sub.on_message = function(c, _, m)
		if disconnected then
			after = after + 1
			first_after = first_after or m.payload
			return
		end
		got = got + 1
		-- drop the connection in the middle of a chunk, from inside a handler
		if got == 100 then
			disconnected = true
			c:disconnect()
		end
	end
	sub:reconnect()
	t:ok(T.wait_until(function() return disconnected and not sub:is_connected() end, 20), "dropped mid-backlog")
	-- a fresh connection: what it reads must be the broker's packets, not the old chunk's rest
	local live = {}
	sub.on_message = function(_, _, m) live[#live + 1] = m.payload end
	sub:reconnect()
	t:ok(T.wait_until(function() return sub:is_connected() end), "connected again")
	T.subscribed(t, sub, "sr/live", 0)
	local pub = T.connected(t, "sr-drop-pub2")
	pub:publish("sr/live", "hello", 0)
	t:ok(T.wait_until(function() return live[#live] == "hello" end, 20), "a live message after the rest of the backlog")
	for i, p in ipairs(live) do
		if p ~= "hello" and p ~= "end" and not p:match("^%d%d%d%d%d%d:") then
			t:ok(false, "message " .. i .. " of the new connection is not a whole payload: " .. p:sub(1, 20))
			break
		end
	end
	pub:disconnect()
	sub:disconnect()
end)

local function writes() return mqtt.stats().process.socket_writes end

test("messages published from a handler leave in few writes, complete and in order", function(t)
	local n = 5000
	local sub = T.connected(t, "sw-sub")
	T.subscribed(t, sub, "sw/batch", 0)
	local got, bad = 0, nil
	sub.on_message = function(_, _, m)
		got = got + 1
		if not bad and m.payload ~= "m" .. got then bad = "message " .. got .. " is " .. m.payload end
	end
	local pub = mqtt.Client("sw-pub")
	local before
	pub.on_connect = function()
		mqtt.after(0, function()
			before = writes()
			for i = 1, n do pub:publish("sw/batch", "m" .. i, 0) end
		end)
	end
	pub:connect(b.host, b.port)
	t:ok(T.wait_until(function() return got == n end, 60), "all " .. n .. " arrived (got " .. got .. ")")
	t:eq(bad, nil, "every payload intact, in order")
	local used = writes() - before
	-- 5,000 packets of about 20 bytes: libmosquitto alone writes each one
	t:ok(used > 0 and used < n / 50, string.format("%d writes for %d messages", used, n))
	pub:disconnect()
	sub:disconnect()
end)

test("messages published from a timer just before os.exit() still leave", function(t)
	local sub = T.connected(t, "sw-exit-sub")
	T.subscribed(t, sub, "sw/exit", 1)
	local got = {}
	sub.on_message = function(_, _, m) got[#got + 1] = m.payload end
	local dir = T.tmpdir()
	local out, code = T.run_script(dir .. "/exit.lua", [[
		local mqtt = require "mqlua"
		local c = mqtt.Client("sw-exit-pub")
		c.on_connect = function(client)
			-- from a timer: inside on_connect libmosquitto itself would keep them queued
			mqtt.after(0.05, function()
				for i = 1, 3 do client:publish("sw/exit", "last words " .. i, 0) end
				os.exit(0)
			end)
		end
		c:connect(arg[1], tonumber(arg[2]))
	]], b.host, b.port)
	t:eq(code, 0, "the script exited 0: " .. out)
	t:ok(T.wait_until(function() return #got == 3 end), "three messages arrived")
	t:eq(got, { "last words 1", "last words 2", "last words 3" }, "in order")
	sub:disconnect()
end)
