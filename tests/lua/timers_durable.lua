-- timers_durable.lua - named (durable) timers: their due time lives in the
-- store, so a script killed with SIGKILL and started again gets its timers
-- back at their original time, or at once - once - when they fell due while
-- it was down. Child processes print mqlua.time() (CLOCK_MONOTONIC, the same
-- clock in every process), so times are compared across processes.
local mqtt = require "mqlua"
local test = T.test

local dir = T.tmpdir()
local store = dir .. "/store.db"

-- Writes a child script: `m` is mqlua, stdout is line-buffered (a SIGKILL
-- must not eat what was printed).
local function script(name, code)
	local path = dir .. "/" .. name .. ".lua"
	local f = assert(io.open(path, "w"))
	f:write('io.stdout:setvbuf("line")\nlocal m = require "mqlua"\n', code, "\n")
	f:close()
	return path
end

local function mqlua(path)
	return T.mqlua() .. " --store " .. store .. " " .. path
end

-- Runs path, SIGKILLs it after `secs` seconds; returns what it printed.
local function run_killed(path, secs)
	local out = dir .. "/killed.out"
	T.sh(string.format("%s >%s 2>&1 & pid=$!; sleep %s; kill -9 $pid; wait $pid 2>/dev/null", mqlua(path), out, secs))
	local f = assert(io.open(out))
	local text = f:read("a")
	f:close()
	return text
end

-- Runs path to its end (at most 20 s); returns its output and exit code.
local function run(path)
	return T.sh("timeout 20 " .. mqlua(path) .. " 2>&1")
end

local function sql(query, db)
	local out = T.sh("sqlite3 " .. (db or store) .. " \"" .. query .. "\" 2>&1")
	return (out:gsub("\n$", ""))
end

-- All numbers printed after `word` at line starts, in order.
local function times(out, word)
	local list = {}
	for v in out:gmatch("%f[^\n%z]" .. word .. "%s+([%d.]+)") do list[#list + 1] = tonumber(v) end
	return list
end

test("killed after 1 s, started again: fires at the original time", function(t)
	local p = script("door", [[
print("armed", m.time())
m.after(5, "door", function() print("fired", m.time()) end)]])
	local first = run_killed(p, 1)
	local armed = times(first, "armed")[1]
	t:ok(armed, "the first process armed it: " .. first)
	t:eq(times(first, "fired"), {}, "and was killed before it fired")
	t:eq(sql("SELECT count(*) FROM timers WHERE name = 'door'"), "1", "its row was committed")
	local out, code = run(p)
	t:eq(code, 0, out)
	local fired = times(out, "fired")
	t:eq(#fired, 1, "fired once: " .. out)
	local late = fired[1] - (armed + 5)
	t:ok(math.abs(late) <= 0.5, string.format("at the original time (%+.3f s)", late))
	t:ok(fired[1] - times(out, "armed")[1] < 4.6, "not 5 s after the restart")
	t:eq(sql("SELECT count(*) FROM timers WHERE name = 'door'"), "0", "the row is gone once it ran")
end)

test("killed, started again after its due time: fires at once, exactly once", function(t)
	local p = script("late", [[
print("armed", m.time())
m.after(1, "late", function() print("fired", m.time()) end)]])
	local first = run_killed(p, 0.3)
	t:ok(times(first, "armed")[1], "armed: " .. first)
	T.sh("sleep 1.5")
	local out, code = run(p)
	t:eq(code, 0, out)
	local fired = times(out, "fired")
	t:eq(#fired, 1, "fired exactly once: " .. out)
	t:ok(fired[1] - times(out, "armed")[1] < 0.5, "at once: " .. fired[1] - times(out, "armed")[1] .. " s")
	t:eq(sql("SELECT count(*) FROM timers"), "0", "no row left")
end)

test("an every that missed 3 ticks while down fires once, then keeps its phase", function(t)
	local p = script("tick", [[
print("armed", m.time())
local n = 0
m.every(1, "tick", function(tm)
	n = n + 1
	print("tick", m.time())
	if n == 2 then tm:cancel() end
end)]])
	local first = run_killed(p, 0.5)
	local armed = times(first, "armed")[1]
	t:ok(armed, "armed: " .. first)
	T.sh("sleep 3.1")   -- due at +1, +2, +3 while nobody ran
	local out, code = run(p)
	t:eq(code, 0, out)
	local ticks = times(out, "tick")
	t:eq(#ticks, 2, "two ticks until cancel(), no catch-up burst: " .. out)
	t:ok(ticks[1] - times(out, "armed")[1] < 0.5, "the missed tick at once")
	t:ok(ticks[2] - ticks[1] > 0.2, "then the next one on its own time: " .. ticks[2] - ticks[1])
	local phase = (ticks[2] - armed) % 1
	t:ok(phase < 0.25 or phase > 0.75, string.format("on the first process's phase (%.3f)", phase))
	t:eq(sql("SELECT count(*) FROM timers"), "0", "cancel() deleted the row")
end)

test("a durable at that fell due while down fires at once, then at its next minute", function(t)
	local p = script("minutely", [[
local tm = m.at("* * * * *", "minutely", function(tm)
	print("fired", m.time(), tm.next % 60, tm.next - os.time())
	tm:cancel()
end)
print("armed", m.time(), tm.next)]])
	local first = run_killed(p, 0.5)
	local due = tonumber(first:match("armed%s+%S+%s+(%S+)"))
	t:ok(due and due % 60 == 0, "the next minute: " .. first)
	t:eq(sql("SELECT due FROM timers WHERE name = 'minutely'"), string.format("%.1f", due), "stored")
	-- as if the process had been down over its minute
	sql("UPDATE timers SET due = due - 120 WHERE name = 'minutely'")
	local out, code = run(p)
	t:eq(code, 0, out)
	local line = out:match("fired[^\n]*")
	t:ok(line, "fired: " .. out)
	local fired, mod, left = line:match("fired%s+(%S+)%s+(%S+)%s+(%S+)")
	t:ok(tonumber(fired) - times(out, "armed")[1] < 0.5, "at once")
	t:eq(tonumber(mod), 0, "re-armed on a minute boundary")
	t:ok(tonumber(left) > 0 and tonumber(left) <= 60, "the coming one: " .. left)
end)

test("registering an armed name replaces that timer and keeps its due time", function(t)
	local calls = {}
	local a = mqtt.after(0.3, "same", function() calls[#calls + 1] = "first" end)
	local due = a.next
	local b = mqtt.after(30, "same", function() calls[#calls + 1] = "second" end)
	t:eq(a.active, false, "the first is no longer armed")
	t:eq(b.next, due, "the second has the first one's due time")
	t:eq(b.name, "same", "name")
	t:match(tostring(b), '^mqlua%.Timer%(after "same", armed, 0 runs%)$', "tostring")
	t:ok(T.wait_until(function() return #calls > 0 end, 3), "fired")
	mqtt.sleep(0.1)
	t:eq(calls, { "second" }, "only the replacement ran")
end)

test("a one-shot that registers its own name again gets a fresh due time", function(t)
	local at = {}
	local function again()
		at[#at + 1] = mqtt.time()
		if #at < 3 then mqtt.after(0.2, "again", again) end
	end
	mqtt.after(0.2, "again", again)
	t:ok(T.wait_until(function() return #at == 3 end, 5), "three runs")
	t:ok(at[2] - at[1] >= 0.19 and at[3] - at[2] >= 0.19, "0.2 s apart, not at once: " ..
		(at[2] - at[1]) .. ", " .. (at[3] - at[2]))
	mqtt.sleep(0.1)
	t:eq(sql("SELECT count(*) FROM timers WHERE name = 'again'", os.getenv("MQLUA_STORE")), "0", "row deleted")
end)

test("cancel() deletes the row; a fired one-shot's row goes after its function ran", function(t)
	local db = os.getenv("MQLUA_STORE")
	local tm = mqtt.after(60, "cancelled", function() end)
	mqtt.sleep(0)   -- one loop turn: the group commit
	t:eq(sql("SELECT count(*) FROM timers WHERE name = 'cancelled'", db), "1", "stored while armed")
	tm:cancel()
	mqtt.sleep(0)
	t:eq(sql("SELECT count(*) FROM timers WHERE name = 'cancelled'", db), "0", "deleted by cancel()")
	local seen
	mqtt.after(0.05, "oneshot", function()
		seen = sql("SELECT count(*) FROM timers WHERE name = 'oneshot'", db)
	end)
	t:ok(T.wait_until(function() return seen end, 3), "fired")
	t:eq(seen, "1", "the row was still there while its function ran")
	mqtt.sleep(0)
	t:eq(sql("SELECT count(*) FROM timers WHERE name = 'oneshot'", db), "0", "and gone after")
end)
