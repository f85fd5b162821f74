-- timers.lua - mqlua.after and mqlua.every: they fire on the loop at their
-- time, repeat until cancel(), keep a script alive while armed, survive an
-- error in their callback, close with their scope, and check their arguments.
local mqtt = require "mqlua"
local test = T.test

test("mqlua.after fires once, after its delay, with the timer as argument", function(t)
	local fired, arg, at = 0, nil, nil
	local t0 = mqtt.time()
	local tm = mqtt.after(0.1, function(x) fired = fired + 1; arg = x; at = mqtt.time() end)
	t:eq(tm.active, true, "armed")
	t:ok(T.wait_until(function() return fired == 1 end, 2), "fired")
	t:ok(at - t0 >= 0.099, "not before its delay (" .. (at - t0) .. " s)")
	t:eq(arg, tm, "the callback got its timer")
	mqtt.sleep(0.2)
	t:eq(fired, 1, "only once")
	t:eq(tm.active, false, "done")
	t:eq(tm.runs, 1, "runs")
end)

test("mqlua.every repeats until cancel(), also from its own callback", function(t)
	local n = 0
	local tm = mqtt.every(0.02, function(self) n = n + 1; if n == 5 then self:cancel() end end)
	t:eq(tm.interval, 0.02, "interval")
	t:ok(T.wait_until(function() return n == 5 end, 3), "five ticks")
	mqtt.sleep(0.1)
	t:eq(n, 5, "no tick after cancel()")
	t:eq(tm.active, false, "not armed")
	local m = 0
	local other = mqtt.every(0.01, function() m = m + 1 end)
	mqtt.sleep(0.05)
	other:cancel()
	local seen = m
	mqtt.sleep(0.05)
	t:ok(seen > 0, "ticked")
	t:eq(m, seen, "cancel() from outside stops it")
end)

test("timers fire in due order", function(t)
	local order = {}
	mqtt.after(0.06, function() order[#order + 1] = "c" end)
	mqtt.after(0.02, function() order[#order + 1] = "a" end)
	mqtt.after(0.04, function() order[#order + 1] = "b" end)
	t:ok(T.wait_until(function() return #order == 3 end, 2), "all fired")
	t:eq(order, { "a", "b", "c" }, "order")
end)

test("an error in a repeating timer is logged and the timer goes on", function(t)
	local out, code = T.sh(T.mqlua() .. [[ -e '
local m = require "mqlua"
local n = 0
m.every(0.01, function(self)
	n = n + 1
	if n == 2 then error("tick broke") end
	if n == 4 then print("ticks " .. n) self:cancel() end
end)' 2>&1]])
	t:eq(code, 0, "exits 0 once the timer is cancelled: " .. out)
	t:match(out, "ERROR %[%(command line%)%] error in mqlua.every callback: [^\n]*tick broke\nstack traceback:", "logged with a traceback")
	t:match(out, "ticks 4", "went on after the error")
end)

test("an armed timer keeps a script running; the script ends when it is done", function(t)
	local t0 = mqtt.time()
	local out, code = T.sh(T.mqlua() .. [[ -e 'require("mqlua").after(0.3, function() print("late") end)' 2>&1]])
	local took = mqtt.time() - t0
	t:eq(code, 0, out)
	t:match(out, "late", "the timer ran after the main chunk")
	t:ok(took >= 0.3 and took < 5, "ended after the timer (" .. took .. " s)")
end)

test("a one-shot that raised is done; a durable one's row is gone too", function(t)
	local dir = T.tmpdir()
	local out, code = T.sh(T.mqlua() .. " --store " .. dir .. [[/s.db -e '
local m = require "mqlua"
local a = m.after(0.01, "broken", function() error("after broke") end)
m.after(0.2, function() print("after", a.active, a.runs, a.next) end)' 2>&1]])
	t:eq(code, 0, out)
	t:match(out, "ERROR %[%(command line%)%] error in mqlua.after callback: [^\n]*after broke\nstack traceback:", "logged with a traceback")
	t:match(out, "after\tfalse\t1\tnil", "done after one run")
	t:eq(T.sh("sqlite3 " .. dir .. "/s.db 'SELECT count(*) FROM timers'"), "0\n", "no row left")
end)

test("a timer in a <close> variable is cancelled when the scope ends", function(t)
	local fired = false
	local tm
	do
		local scoped <close> = mqtt.after(0.05, function() fired = true end)
		tm = scoped
		t:eq(tm.active, true, "armed inside")
	end
	t:eq(tm.active, false, "cancelled at the end of the scope")
	mqtt.sleep(0.1)
	t:eq(fired, false, "never fired")
end)

test("bad arguments raise, naming them", function(t)
	t:raises(function() mqtt.after(-1, function() end) end, "seconds must be between 0 and 1e9")
	t:raises(function() mqtt.every(0, function() end) end, "interval of mqlua.every must be positive")
	t:raises(function() mqtt.after(1, "not a function") end, "function expected")
	t:raises(function() mqtt.after(0.01, function() end).nope = 1 end, "")
	t:raises(function() return mqtt.after(0.01, function() end).nope end, "Timer has no field 'nope'")
	mqtt.sleep(0.05)
end)
