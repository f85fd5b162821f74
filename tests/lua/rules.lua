-- rules.lua - mqlua.rules: debounce, throttle, changed and held, wrapped
-- around message callbacks and driven by real messages through a broker;
-- changed()'s memory across restarts, with three processes in a row.
local mqtt = require "mqlua"
local rules = require "mqlua.rules"
local test = T.test

T.broker()

-- A connected client whose filter runs handler; a second one to publish.
local function setup(t, name, filter, handler)
	local c = mqtt.Client("rules-" .. name)
	local ready = false
	c:message_callback_add(filter, handler)
	c.on_connect = function(cl) cl:subscribe(filter, 1) end
	c.on_subscribe = function() ready = true end
	t:eq(c:connect(), 0, "connect")
	t:ok(T.wait_until(function() return ready end), "subscribed")
	local p = mqtt.Client("rules-" .. name .. "-pub")
	t:eq(p:connect(), 0, "publisher connects")
	t:ok(T.wait_until(function() return p:is_connected() end), "publisher connected")
	return c, p
end

test("debounce: one call with the last message of a burst, per topic", function(t)
	local calls = {}
	local c, p = setup(t, "debounce", "db/#", rules.debounce(0.2, function(_, _, m)
		calls[#calls + 1] = m.topic .. "=" .. m.payload
	end))
	for i = 1, 5 do p:publish("db/a", tostring(i), 1) end
	p:publish("db/b", "x", 1)
	mqtt.sleep(0.1)
	t:eq(#calls, 0, "nothing during the burst")
	t:ok(T.wait_until(function() return #calls == 2 end, 3), "two calls after the quiet time")
	table.sort(calls)
	t:eq(calls, { "db/a=5", "db/b=x" }, "the last message of each topic")
	c:disconnect() p:disconnect()
end)

test("throttle: at most once per period per topic", function(t)
	local n = 0
	local c, p = setup(t, "throttle", "th/#", rules.throttle(0.5, function() n = n + 1 end))
	for i = 1, 10 do p:publish("th/a", tostring(i), 1) end
	t:ok(T.wait_until(function() return n >= 1 end), "the first one runs")
	mqtt.sleep(0.2)
	t:eq(n, 1, "the rest of the burst is dropped")
	mqtt.sleep(0.4)
	p:publish("th/a", "later", 1)
	t:ok(T.wait_until(function() return n == 2 end), "runs again after the period")
	c:disconnect() p:disconnect()
end)

test("changed: only when the payload differs from the previous one on that topic", function(t)
	local seen = {}
	local c, p = setup(t, "changed", "ch/#", rules.changed(function(_, _, m) seen[#seen + 1] = m.payload end))
	for _, v in ipairs { "ON", "ON", "OFF", "OFF", "ON" } do p:publish("ch/lamp", v, 1) end
	p:publish("ch/other", "ON", 1)
	t:ok(T.wait_until(function() return #seen == 4 end), "four changes")
	mqtt.sleep(0.1)
	t:eq(seen, { "ON", "OFF", "ON", "ON" }, "repeats were dropped; topics are separate")
	c:disconnect() p:disconnect()
end)

test("held: runs once the condition held for the time, not when it broke off", function(t)
	local fired = {}
	local c, p = setup(t, "held", "held/#", rules.held(0.3,
		function(m) return m.payload == "off" end,
		function(_, _, m) fired[#fired + 1] = m.topic end))
	p:publish("held/hall", "off", 1)
	mqtt.sleep(0.1)
	p:publish("held/hall", "on", 1)          -- breaks the run
	mqtt.sleep(0.4)
	t:eq(#fired, 0, "a broken run does not fire")
	p:publish("held/hall", "off", 1)
	p:publish("held/hall", "off", 1)          -- still off: the same run
	t:ok(T.wait_until(function() return #fired == 1 end, 3), "fires after 0.3 s off")
	mqtt.sleep(0.4)
	t:eq(fired, { "held/hall" }, "once per run")
	c:disconnect() p:disconnect()
end)

test("changed: after a restart, an unchanged retained payload does not fire again", function(t)
	local b = T.broker()
	local dir = T.tmpdir()
	local path = dir .. "/watch.lua"
	local f = assert(io.open(path, "w"))
	f:write([[
io.stdout:setvbuf("line")
local m = require "mqlua"
local rules = require "mqlua.rules"
local c = m.Client("changed-watch")
c:message_callback_add("chg/#", rules.changed(function(_, _, msg) print("changed " .. msg.topic .. "=" .. msg.payload) end))
c:message_callback_add("chg/+", rules.changed(function(_, _, msg) print("named " .. msg.topic .. "=" .. msg.payload) end, "lamps"))
c.on_connect = function(cl) cl:subscribe("chg/#", 1) end
c.on_subscribe = function() m.after(0.5, function() c:disconnect() end) end
c:connect()
local n = 0
for _ in pairs(m.state) do n = n + 1 end
print("script keys " .. n)
]])
	f:close()
	local function watch()
		local out, code = T.sh(string.format("timeout 20 %s --store %s/store.db --broker %s %s 2>&1",
			T.mqlua(), dir, b.url, path))
		t:eq(code, 0, out)
		local seen = {}
		for line in out:gmatch("[^\n]+") do
			if line:match("^changed ") or line:match("^named ") then seen[#seen + 1] = line end
		end
		table.sort(seen)
		return seen, out
	end
	local p = T.connected(t, "changed-pub")
	p:publish("chg/lamp", "ON", 1, true)
	p:publish("chg/fan", "OFF", 1, true)
	mqtt.sleep(0.2)
	local seen, out = watch()
	t:eq(seen, { "changed chg/fan=OFF", "changed chg/lamp=ON", "named chg/fan=OFF", "named chg/lamp=ON" },
		"the first process sees both retained payloads as changes")
	t:match(out, "script keys 0", "the memory is not among the script's mqlua.state keys")
	t:eq(watch(), {}, "a second process: the same retained payloads are no change")
	p:publish("chg/lamp", "OFF", 1, true)
	mqtt.sleep(0.2)
	t:eq(watch(), { "changed chg/lamp=OFF", "named chg/lamp=OFF" }, "a third one: only what changed meanwhile")
	p:disconnect()
end)

test("bad arguments raise, naming the rule", function(t)
	t:raises(function() rules.debounce(-1, print) end, "debounce: seconds must be a number >= 0")
	t:raises(function() rules.throttle(1, "x") end, "throttle: handler must be a function")
	t:raises(function() rules.held(1, nil, print) end, "held: condition must be a function")
	t:raises(function() rules.changed(print, "") end, "changed: name must be a non%-empty string, got ")
end)
