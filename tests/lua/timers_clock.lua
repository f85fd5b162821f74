-- timers_clock.lua - calendar timers follow the wall clock when it is
-- stepped (as NTP does): a step back does not make them fire early, a step
-- forward past their time makes them fire within about a second. The child
-- runs under libfaketime (Debian's faketime) with a time offset read from a
-- file on every call, so the test steps the child's wall clock while the
-- monotonic clock (DONT_FAKE_MONOTONIC) stays the real one, shared with
-- this process.
local mqtt = require "mqlua"
local test = T.test

local LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
local dir = T.tmpdir()
local offset_file = dir .. "/offset"

local function set_offset(seconds)
	local f = assert(io.open(offset_file .. ".new", "w"))
	f:write(string.format("%+d\n", seconds))
	f:close()
	assert(os.rename(offset_file .. ".new", offset_file))
end

-- Starts a child whose wall clock is the real one plus the offset file's
-- seconds; it arms "* * * * *" and prints when it was armed and fired.
local function start_child()
	local code = [[
io.stdout:setvbuf("line")
local m = require "mqlua"
local tm = m.at("* * * * *", function(tm)
	print("fired", m.time(), os.time())
	tm:cancel()
end)
print("armed", m.time(), tm.next)]]
	return io.popen(string.format("LD_PRELOAD=%s FAKETIME_TIMESTAMP_FILE=%s FAKETIME_NO_CACHE=1 " ..
		"DONT_FAKE_MONOTONIC=1 ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0\" " ..
		"timeout 30 %s -e '%s' 2>&1", LIB, offset_file, T.mqlua(), code))
end

local function finish(child)
	local out = child:read("a")
	child:close()
	local armed, due = out:match("armed%s+(%S+)%s+(%S+)")
	local fired, wall = out:match("fired%s+(%S+)%s+(%S+)")
	return out, tonumber(armed), tonumber(due), tonumber(fired), tonumber(wall)
end

-- The offset that puts the child's clock `before` seconds ahead of a minute
-- boundary (give or take the fraction of the current second), and that boundary.
local function offset_before_minute(before)
	local now = os.time()
	local boundary = (now // 60 + 1) * 60
	return boundary - before - now, boundary
end

test("libfaketime is installed (Debian package faketime)", function(t)
	t:ok(io.open(LIB), LIB .. " exists")
end)

test("a step back of the clock before the due time does not make the timer early", function(t)
	local off, boundary = offset_before_minute(3)
	set_offset(off)
	local child = start_child()
	mqtt.sleep(1)
	set_offset(off - 4)   -- the child's clock goes back 4 s: its minute is 4 s further away
	local out, armed, due, fired, wall = finish(child)
	t:eq(due, boundary, "armed for the coming minute of its clock: " .. out)
	t:ok(fired, "fired: " .. out)
	t:ok(wall >= boundary, "its clock showed the minute when it fired (" .. wall - boundary .. ")")
	local took = fired - armed
	t:ok(took > 5, "not at the 2-3 s the monotonic clock alone would give: " .. took)
	t:ok(took < 8.5, "when its clock reached the minute, at most a second late: " .. took)
end)

test("a step forward past the due time makes the timer fire within about a second", function(t)
	local off, boundary = offset_before_minute(50)
	set_offset(off)
	local child = start_child()
	mqtt.sleep(1)
	local stepped = mqtt.time()
	set_offset(off + 48)  -- now 1-2 s before its minute
	local out, armed, due, fired, wall = finish(child)
	t:eq(due, boundary, "armed for the coming minute of its clock: " .. out)
	t:ok(fired, "fired: " .. out)
	t:ok(wall >= boundary, "not early (" .. wall - boundary .. ")")
	t:ok(fired - stepped < 3.2, "soon after the step, not ~50 s after arming: " .. fired - armed)
end)
