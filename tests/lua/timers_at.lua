-- timers_at.lua - mqlua.at: calendar timers in local time. A "* * * * *"
-- timer fires at the next minute boundary (never before it, at most a
-- second after), HH:MM and @shorthands land where the local clock (TZ)
-- says, cancel() stops them, bad specs raise naming the field.
local mqtt = require "mqlua"
local test = T.test

-- Runs code under mqlua with TZ set; returns its output (stdout and stderr) and exit code.
local function run(tz, code)
	return T.sh("TZ=" .. tz .. " " .. T.mqlua() .. " -e '" .. code .. "' 2>&1")
end

-- Started first and read last: it waits for the next minute too.
local erring = io.popen("TZ=UTC " .. T.mqlua() .. [[ -e '
local m = require "mqlua"
m.at("* * * * *", function(tm) print("next in", tm.next - os.time()) tm:cancel() error("at broke") end)' 2>&1]])

test("HH:MM is daily at that time in the process's time zone (TZ)", function(t)
	local code = [[
local m = require "mqlua"
local tm = m.at("12:00", function() end)
print(os.date("%H:%M:%S %Z", tm.next), tm.next - os.time())
local h = m.at("@hourly", function() end)
print(os.date("%M:%S", h.next), h.next - os.time())
local y = m.at("@yearly", function() end)
print(os.date("%m-%d %H:%M", y.next))
tm:cancel() h:cancel() y:cancel()]]
	for _, tz in ipairs { "Asia/Kolkata", "America/New_York", "Europe/Berlin" } do
		local out, code_ = run(tz, code)
		t:eq(code_, 0, tz .. ": " .. out)
		local zone_ok = { ["Asia/Kolkata"] = "IST", ["America/New_York"] = "E[SD]T", ["Europe/Berlin"] = "CES?T" }
		local when, zone, left = out:match("^(%d%d:%d%d:%d%d) (%u+)%s+(%S+)\n")
		t:eq(when, "12:00:00", tz .. ": local noon: " .. out)
		t:match(zone, "^" .. zone_ok[tz] .. "$", tz .. ": zone")
		left = tonumber(left)
		t:ok(left > 0 and left <= 86400 + 3600, tz .. ": within a day: " .. tostring(left))
		t:match(out, "\n00:00%s+%d+%.?%d*\n", tz .. ": @hourly at minute 0")
		t:match(out, "\n01%-01 00:00\n", tz .. ": @yearly on January 1st, 00:00")
	end
	-- Kolkata is UTC+05:30: its local noon is 06:30 UTC
	local out = run("Asia/Kolkata", [[print(os.date("!%H:%M", require("mqlua").at("12:00", function() end).next)) os.exit(0)]])
	t:eq(out, "06:30\n", "the instant is local noon, not UTC noon")
end)

test("cancel() stops an at timer and lets the script end", function(t)
	local t0 = mqtt.time()
	local out, code = run("UTC", [[
local m = require "mqlua"
local tm = m.at("* * * * *", function() print("fired") end)
m.after(0.2, function() tm:cancel() print("cancelled", tm.active, tm.next) end)]])
	t:eq(code, 0, out)
	t:eq(out, "cancelled\tfalse\tnil\n", "never fired")
	t:ok(mqtt.time() - t0 < 10, "the script ended once nothing was armed")
	local tm = mqtt.at("@daily", function() end)
	t:eq(tm.active, true, "armed")
	tm:cancel()
	t:eq(tm.active, false, "cancelled")
	t:eq(tm.next, nil, "no next run")
end)

test("bad specs and arguments raise, naming them", function(t)
	t:raises(function() mqtt.at("61 * * * *", function() end) end,
		"bad argument #1 to '[%w.]*at' %(bad cron spec '61 %* %* %* %*': minute 61 out of range 0%-59%)")
	t:raises(function() mqtt.at("0 0 * * funday", function() end) end,
		"bad cron spec '0 0 %* %* funday': day%-of%-week: cannot read 'funday'")
	t:raises(function() mqtt.at("0 0 30 feb *", function() end) end,
		"bad cron spec '0 0 30 feb %*': no chosen month has the chosen day%-of%-month, it would never run")
	t:raises(function() mqtt.at("24:00", function() end) end, "hour 24 out of range 0%-23")
	t:raises(function() mqtt.at("*/5 * * *", function() end) end, "expected 5 fields")
	t:raises(function() mqtt.at(nil, function() end) end, "bad argument #1 to '[%w.]*at' %(string expected")
	t:raises(function() mqtt.at("@daily") end, "bad argument #2 to '[%w.]*at' %(function expected")
	t:raises(function() mqtt.at("@daily", 5, function() end) end,
		"bad argument #2 to '[%w.]*at' %(the name of a durable timer must be a non%-empty string%)")
end)

-- Armed after the tests that block the loop on a child process (a blocked
-- loop would make it late); checked last.
local minute = { fired = {} }
minute.timer = mqtt.at("* * * * *", function(tm)
	minute.fired[#minute.fired + 1] = { wall = os.time(), next = tm.next, runs = tm.runs }
end)
minute.armed_at = os.time()
minute.first = minute.timer.next

test("an at timer's next run is the next local minute boundary", function(t)
	local nxt = minute.first
	t:eq(math.type(nxt), "float", "next is a number")
	t:eq(nxt % 60, 0.0, "on a minute boundary")
	t:ok(nxt > minute.armed_at and nxt <= minute.armed_at + 60, "within the coming minute: " .. nxt - minute.armed_at)
	t:eq(minute.timer.active, true, "armed")
	t:eq(minute.timer.interval, 0, "no interval")
	t:match(tostring(minute.timer), "^mqlua%.Timer%(at, armed, 0 runs%)$", "tostring")
end)

test("\"* * * * *\" fires at the minute boundary, not before, at most 1 s after, and goes on", function(t)
	t:ok(T.wait_until(function() return #minute.fired >= 1 end, 65), "fired within 65 s")
	local f = minute.fired[1]
	t:ok(f.wall >= minute.first, "not before the minute (" .. f.wall - minute.first .. " s)")
	t:ok(f.wall <= minute.first + 1, "at most a second late (" .. f.wall - minute.first .. " s)")
	t:eq(f.runs, 1, "runs")
	t:eq(f.next, minute.first + 60, "re-armed for the next minute")
	t:eq(minute.timer.active, true, "still armed")
	minute.timer:cancel()
	t:eq(minute.timer.active, false, "cancelled")
	t:eq(#minute.fired, 1, "fired once")
end, { timeout = 90 })

test("an error in an at callback is logged and the timer stays armed", function(t)
	local out = erring:read("a")
	local _, _, code = erring:close()
	t:eq(code, 0, "exits once cancelled: " .. out)
	t:match(out, "ERROR %[.-%] error in mqlua.at callback: [^\n]*at broke\nstack traceback:", "logged with a traceback")
	local left = tonumber(out:match("next in%s+(%S+)"))
	t:ok(left and left >= 59 and left <= 60, "already re-armed for the following minute when it ran: " .. tostring(left))
end)
