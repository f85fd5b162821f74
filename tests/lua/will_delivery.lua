-- will_delivery.lua - the last will of a child `mqlua` process: published by
-- the broker when the child dies without a word (kill -9), not published
-- when it disconnects cleanly: by calling disconnect(), or on SIGINT/SIGTERM
-- (mqlua then disconnects every client and exits 0).
local mqtt = require "mqlua"
local test = T.test

local broker = T.broker()

-- The child: connects with a will on will/<name>, announces itself on
-- online/<name> and then does what `mode` says.
local CHILD = [[
local mqtt = require "mqlua"
local name, host, port, mode = arg[1], arg[2], tonumber(arg[3]), arg[4]
local c = mqtt.Client("will-child-" .. name)
c:will_set("will/" .. name, "gone: " .. name, 1, mode == "kill-retained")
c.on_connect = function(cl, _, _, rc)
	if rc ~= 0 then print("refused " .. rc) os.exit(3) end
	cl:publish("online/" .. name, tostring(mqtt.VERSION), 1)
end
local published = false
c.on_publish = function(cl)
	published = true
	if mode == "disconnect" then
		mqtt.sleep(0.2)
		cl:disconnect()
	elseif mode == "busy-callback" then
		while true do end          -- a handler stuck in Lua code
	elseif mode == "sleep-callback" then
		mqtt.sleep(60)             -- a handler that waits
	end
end
c.on_disconnect = function() print("on_disconnect") io.stdout:flush() end
assert(c:connect(host, port, 60) == 0)
if mode == "busy-main" then
	assert(mqtt.wait_until(function() return published end, 5))
	while true do end              -- the main chunk stuck in Lua code
end
-- the main chunk ends here: the connected client keeps mqlua running
]]

local dir = T.tmpdir()
do
	local f = assert(io.open(dir .. "/child.lua", "w"))
	f:write(CHILD)
	f:close()
end

local function read_file(path)
	local f = io.open(path)
	if not f then return nil end
	local s = f:read("a")
	f:close()
	return s
end

-- Starts a child in the background; returns its pid and a function giving
-- its exit status once it has ended (nil before).
local function spawn(name, mode)
	local base = dir .. "/" .. name
	os.execute(string.format("(%s %s/child.lua %s %s %d %s >%s.out 2>%s.err & echo $! >%s.pid; wait $!; " ..
		"echo $? >%s.status) </dev/null >/dev/null 2>&1 &",
		T.mqlua(), dir, name, broker.host, broker.port, mode, base, base, base, base))
	local pid
	T.wait_until(function()
		pid = tonumber(read_file(base .. ".pid") or "")
		return pid
	end, 5)
	assert(pid, "the child did not start")
	return pid, function() return tonumber(read_file(base .. ".status") or "") end,
		function() return (read_file(base .. ".out") or "") .. (read_file(base .. ".err") or "") end
end

-- One subscriber for the whole file, recording online/# and will/#.
local seen = {}
local sub = mqtt.Client("will-watcher")
sub.on_message = function(_, _, m)
	seen[#seen + 1] = { topic = m.topic, payload = m.payload, qos = m.qos, retain = m.retain }
end
local subscribed = false
sub.on_subscribe = function() subscribed = true end
sub.on_connect = function(c) c:subscribe({ { "online/#", 1 }, { "will/#", 1 } }) end
assert(sub:connect(broker.host, broker.port) == 0)
assert(T.wait_until(function() return subscribed end), "the watcher could not subscribe")

local function received(topic)
	for _, m in ipairs(seen) do
		if m.topic == topic then return m end
	end
end

-- Starts child `name` and waits until it is connected (its online message).
local function start_online(t, name, mode)
	local pid, status, output = spawn(name, mode)
	t:ok(T.wait_until(function() return received("online/" .. name) end, 10),
		"the child connected and published online/" .. name)
	t:eq(received("will/" .. name), nil, "no will while the child is alive")
	return pid, status, output
end

test("kill -9: the broker publishes the will (qos 1, retained as asked)", function(t)
	local pid = start_online(t, "killed", "kill-retained")
	os.execute("kill -KILL " .. pid)
	t:ok(T.wait_until(function() return received("will/killed") end, 5), "will received within 5 s")
	local m = received("will/killed")
	t:eq({ m.payload, m.qos }, { "gone: killed", 1 }, "will payload and qos")
	-- retained: a new subscriber gets it from the broker
	local late, got = mqtt.Client("will-late"), nil
	late.on_connect = function(c) c:subscribe("will/killed", 1) end
	late.on_message = function(_, _, msg) got = msg end
	late:connect(broker.host, broker.port)
	t:ok(T.wait_until(function() return got end), "the retained will reaches a new subscriber")
	t:eq({ got.payload, got.retain }, { "gone: killed", true }, "retained will")
	late:publish("will/killed", nil, 1, true)   -- clear the retained message
	late:disconnect()
end)

-- Waits at least 2 s and fails if the will of `name` arrived meanwhile.
local function expect_no_will(t, name)
	mqtt.sleep(2)
	local m = received("will/" .. name)
	t:ok(not m, "no will after a clean disconnect, got " .. T.show(m))
end

test("disconnect(): no will, and mqlua exits 0 once the client is gone", function(t)
	local _, status, output = start_online(t, "polite", "disconnect")
	t:ok(T.wait_until(status, 5), "the child exited by itself after disconnect()")
	t:eq(status(), 0, "exit status; output:\n" .. output())
	t:match(output(), "on_disconnect", "on_disconnect ran in the child")
	expect_no_will(t, "polite")
end)

for _, sig in ipairs({ "INT", "TERM" }) do
	test("SIG" .. sig .. ": clean disconnect, exit 0, no will", function(t)
		local name = "sig" .. sig:lower()
		local pid, status, output = start_online(t, name, "stay")
		mqtt.sleep(0.1)
		t:eq(status(), nil, "the child keeps running while its client is connected")
		os.execute("kill -" .. sig .. " " .. pid)
		t:ok(T.wait_until(status, 5), "the child exited within 5 s of SIG" .. sig)
		t:eq(status(), 0, "exit status; output:\n" .. output())
		t:match(output(), "SIG" .. sig .. ": disconnecting every client and exiting", "the child said why it ends")
		expect_no_will(t, name)
	end)
end

-- SIGTERM must end Lua code that never returns to the loop, and a handler
-- that waits, with the same clean disconnect.
for _, case in ipairs({
	{ "busy-main", "the main chunk is stuck in Lua code" },
	{ "busy-callback", "a handler is stuck in Lua code" },
	{ "sleep-callback", "a handler waits in mqlua.sleep" },
}) do
	test("SIGTERM while " .. case[2] .. ": clean disconnect, exit 0, no will", function(t)
		local name = case[1]
		local pid, status, output = start_online(t, name, name)
		mqtt.sleep(0.2)
		t:eq(status(), nil, "the child is still running")
		os.execute("kill -TERM " .. pid)
		local ended = T.wait_until(status, 5)
		if not ended then os.execute("kill -KILL " .. pid) end
		t:ok(ended, "the child exited within 5 s of SIGTERM")
		t:eq(status(), 0, "exit status; output:\n" .. output())
		expect_no_will(t, name)
	end)
end

sub:disconnect()
