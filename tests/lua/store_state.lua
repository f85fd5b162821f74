-- store_state.lua - mqlua.state, the persistent key/value table: every type
-- of value round-trips (integers stay integers, floats bit for bit, tables
-- through JSON), nil deletes, pairs() lists the keys in order, wrong types
-- raise naming the key, values survive a restart, and a kill -9 right after
-- a loop iteration keeps what that iteration committed (and loses what the
-- next, unfinished one wrote). mqlua.state(scope) is a separate table.
--
-- mqlua.state lives in the process's store, so every case runs in child
-- mqlua processes with MQLUA_STORE pointing into a temporary directory
-- (this file's own store is never touched).
local test = T.test

local tmp = T.tmpdir()
local n_children = 0

-- Serialises v exactly: %q keeps integers apart from floats and writes
-- floats in hex (bit for bit); tables with sorted keys.
local DUMP = [[
local function dump(v)
	local tv = type(v)
	if tv == "number" then
		return (math.type(v) == "integer" and "i:" or "f:") .. string.format("%q", v)
	elseif tv == "string" then
		return "s:" .. string.format("%q", v):gsub("\n", "n")
	elseif tv ~= "table" then
		return tostring(v)
	end
	local keys = {}
	for k in pairs(v) do keys[#keys + 1] = k end
	table.sort(keys, function(a, b)
		if type(a) ~= type(b) then return type(a) < type(b) end
		return a < b
	end)
	local out = {}
	for _, k in ipairs(keys) do out[#out + 1] = dump(k) .. "=" .. dump(v[k]) end
	return "{" .. table.concat(out, ",") .. "}"
end
]]
local dump = load(DUMP .. " return dump")()

-- The values stored and read back, by key.
local VALUES = [[
return {
	str = "hello, world",
	bytes = "a\0b\255\n\r",
	empty = "",
	long = string.rep("0123456789", 10000),
	zero = 0,
	neg = -17,
	maxint = math.maxinteger,
	minint = math.mininteger,
	tenth = 0.1,
	third = 1 / 3,
	two = 2.0,
	negzero = -0.0,
	tiny = 4.9406564584124654e-324,
	big = 1.7976931348623157e308,
	inf = math.huge,
	ninf = -math.huge,
	yes = true,
	no = false,
	list = { 1, 2, 3, "four", true },
	nested = { a = { b = { c = "d" } }, n = 1.5, flag = false, list = { 10, 20 } },
	emptytable = {},
	["key with spaces/and.dots"] = "odd key",
}
]]
local values = load(VALUES)()

-- Runs source in a child mqlua with its store at `store` (and args);
-- returns its stdout+stderr and exit code.
local function child(store, source, ...)
	n_children = n_children + 1
	local path = tmp .. "/child" .. n_children .. ".lua"
	local f = assert(io.open(path, "w"))
	f:write("local mqtt = require 'mqlua'\n", DUMP, source)
	f:close()
	local args = {}
	for i, a in ipairs { ... } do args[i] = "'" .. tostring(a) .. "'" end
	return T.sh("MQLUA_STORE='" .. store .. "' timeout 30 " .. T.mqlua() .. " " .. path .. " " ..
		table.concat(args, " ") .. " 2>&1")
end

-- Lines "key=dump" for every key of `values`, in key order.
local function expected_dump(vals, keys)
	local out = {}
	for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. dump(vals[k]) end
	return table.concat(out, "\n") .. "\n"
end

local function sorted_keys(t)
	local keys = {}
	for k in pairs(t) do keys[#keys + 1] = k end
	table.sort(keys)
	return keys
end

local WRITE_VALUES = "local values = (function() " .. VALUES .. " end)()\n" ..
	"for k, v in pairs(values) do mqtt.state[k] = v end\n"
local READ_VALUES = "local keys = {}\n" ..
	"for k in pairs((function() " .. VALUES .. " end)()) do keys[#keys + 1] = k end\n" ..
	"table.sort(keys)\n" ..
	"for _, k in ipairs(keys) do print(k .. '=' .. dump(mqtt.state[k])) end\n"

---------------------------------------------------------------------------

test("every type of value round-trips within one process", function(t)
	local out, code = child(tmp .. "/same.db", WRITE_VALUES .. READ_VALUES)
	t:eq(code, 0, "child exit code; output:\n" .. out)
	t:eq(out, expected_dump(values, sorted_keys(values)), "values read back")
end)

test("values survive a restart of mqlua", function(t)
	local store = tmp .. "/restart.db"
	local out, code = child(store, WRITE_VALUES)
	t:eq(code, 0, "writer exit code; output:\n" .. out)
	out, code = child(store, READ_VALUES)
	t:eq(code, 0, "reader exit code; output:\n" .. out)
	t:eq(out, expected_dump(values, sorted_keys(values)), "values read by a new process")
end)

test("whole numbers inside tables come back as integers", function(t)
	local out, code = child(tmp .. "/ints.db", [[
		mqtt.state.t = { count = 3, ratio = 0.25, list = { 1.0, 2 } }
		print(dump(mqtt.state.t))
	]])
	t:eq(code, 0, "exit code; output:\n" .. out)
	t:eq(out, dump({ count = 3, ratio = 0.25, list = { 1, 2 } }) .. "\n", "decoded table")
	t:ok(out:find("i:1", 1, true), "1.0 in a list is the integer 1: " .. out)
end)

test("a table read is a copy: changing it does not change the state", function(t)
	local out, code = child(tmp .. "/copy.db", [[
		mqtt.state.t = { n = 1 }
		local t = mqtt.state.t
		t.n = 2
		print(mqtt.state.t.n)
		mqtt.state.t = t
		print(mqtt.state.t.n)
	]])
	t:eq(code, 0, "exit code; output:\n" .. out)
	t:eq(out, "1\n2\n", "n before and after writing the table back")
end)

test("nil deletes a key; pairs() lists keys in order, from a snapshot", function(t)
	local store = tmp .. "/pairs.db"
	local out, code = child(store, [[
		mqtt.state.b = 2
		mqtt.state.a = "one"
		mqtt.state.c = { 3 }
		mqtt.state.gone = true
		mqtt.state.gone = nil
		mqtt.state.never = nil
	]])
	t:eq(code, 0, "writer exit code; output:\n" .. out)
	out, code = child(store, [[
		print(mqtt.state.gone, mqtt.state.never)
		for k, v in pairs(mqtt.state) do
			mqtt.state[k] = nil          -- changing the state while iterating is allowed
			print(k, dump(v))
		end
		local n = 0
		for _ in pairs(mqtt.state) do n = n + 1 end
		print("left", n)
	]])
	t:eq(code, 0, "reader exit code; output:\n" .. out)
	t:eq(out, "nil\tnil\na\ts:\"one\"\nb\ti:2\nc\t{i:1=i:3}\nleft\t0\n", "listing")
	out, code = child(store, "print(next(mqtt.state), tostring(mqtt.state))")
	t:eq(out, "nil\tmqlua.state\n", "the deletes during pairs() were committed")
end)

test("mqlua.state(scope) is a table of its own, kept across a restart", function(t)
	local store = tmp .. "/scoped.db"
	local out, code = child(store, [[
local lib = mqtt.state("some.lib")
lib.x = "lib's"
mqtt.state.x = "script's"
print(tostring(lib), lib.x, mqtt.state.x)]])
	t:eq(code, 0, out)
	t:eq(out, "mqlua.state (scope \"some.lib\")\tlib's\tscript's\n", "separate keys")
	out, code = child(store, [[
local keys = {}
for k in pairs(mqtt.state) do keys[#keys + 1] = k end
print(mqtt.state("some.lib").x, mqtt.state("other").x, table.concat(keys, ","))
print(pcall(mqtt.state, ""))
print(pcall(mqtt.state, 5))]])
	t:eq(code, 0, out)
	t:eq(out, "lib's\tnil\tx\nfalse\tmqlua.state(scope): the scope must be a non-empty string without NUL\n" ..
		"false\tmqlua.state(scope): the scope must be a string, not number\n", "read back by a new process; pairs() of mqlua.state shows its own keys only")
end)

test("unsupported values and keys raise an error naming the key", function(t)
	local out, code = child(tmp .. "/errors.db", [[
		local function try(f)
			local ok, err = pcall(f)
			print(ok and "no error" or err)
		end
		try(function() mqtt.state.fn = print end)
		try(function() mqtt.state["my key"] = coroutine.create(print) end)
		try(function() mqtt.state.ud = io.stdout end)
		try(function() mqtt.state.t = { f = print } end)
		try(function() mqtt.state.sparse = { [1] = 1, [1000] = 2 } end)
		try(function() mqtt.state.nan = { 0 / 0 } end)
		try(function() mqtt.state[1] = 2 end)
		try(function() return mqtt.state[true] end)
		try(function() mqtt.state["a\0b"] = 1 end)
		print(mqtt.state.fn, mqtt.state.t, mqtt.state.sparse)
	]])
	t:eq(code, 0, "exit code; output:\n" .. out)
	local WHERE = "[^\n]*child%d+%.lua:%d+: "   -- the error points at the script's line
	local lines = {}
	for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
	t:match(lines[1], "^" .. WHERE .. "mqlua%.state%.fn: cannot store a function %(strings, numbers, booleans and tables only%)$", "function")
	t:match(lines[2], "^" .. WHERE .. "mqlua%.state%[\"my key\"%]: cannot store a thread", "thread")
	t:match(lines[3], "^" .. WHERE .. "mqlua%.state%.ud: cannot store a FILE%*", "userdata")
	t:match(lines[4], "^" .. WHERE .. "mqlua%.state%.t: cannot store the table as JSON: .*function", "table holding a function")
	t:match(lines[5], "^" .. WHERE .. "mqlua%.state%.sparse: cannot store the table as JSON: .*sparse", "sparse array")
	t:match(lines[6], "^" .. WHERE .. "mqlua%.state%.nan: cannot store the table as JSON: .*NaN", "NaN in a table")
	t:match(lines[7], "^" .. WHERE .. "mqlua%.state: keys are strings, not number$", "number key")
	t:match(lines[8], "^" .. WHERE .. "mqlua%.state: keys are strings, not boolean$", "boolean key")
	t:match(lines[9], "^" .. WHERE .. "mqlua%.state: a key must not contain a NUL character$", "NUL in a key")
	t:eq(lines[10], "nil\tnil\tnil", "nothing was stored")
end)

test("a store that cannot be opened: the error names the file", function(t)
	local bad = tmp .. "/not-a-store.db"
	local f = assert(io.open(bad, "w"))
	f:write(string.rep("this is not an SQLite database\n", 100))
	f:close()
	local out, code = child(bad, [[
		local ok, err = pcall(function() return mqtt.state.x end)
		print(ok, err)
	]])
	t:eq(code, 0, "exit code; output:\n" .. out)
	t:match(out, "^false\t[^\n]*child%d+%.lua:%d+: mqlua%.state: store .*" .. bad:gsub("%p", "%%%0"), "error naming the file")
	local h = assert(io.open(bad))
	t:eq(h:read("a"), string.rep("this is not an SQLite database\n", 100), "the file was not changed")
	h:close()
end)

test("kill -9 after a loop iteration keeps its state, loses the unfinished iteration's", function(t)
	local store = tmp .. "/killed.db"
	local path = tmp .. "/killed.lua"
	local f = assert(io.open(path, "w"))
	f:write([[
		local mqtt = require "mqlua"
		mqtt.state.count = 41
		mqtt.state.count = mqtt.state.count + 1
		mqtt.state.seen = { "a", "b" }
		mqtt.sleep(0.05)                  -- the loop runs: this iteration commits
		mqtt.state.late = "not committed" -- joins the next iteration's transaction...
		io.write("committed\n")
		io.stdout:flush()
		local t0 = os.time()
		while os.time() - t0 < 20 do end  -- ...which never ends: killed here
	]])
	f:close()
	local out = tmp .. "/killed.out"
	local pid = T.sh("MQLUA_STORE='" .. store .. "' " .. T.mqlua() .. " " .. path .. " >" .. out ..
		" 2>&1 & echo $!"):match("%d+")
	t:ok(pid, "child started")
	local function said()
		local h = io.open(out)
		local s = h and h:read("a") or ""
		if h then h:close() end
		return s
	end
	local ready = T.wait_until(function() return said():find("committed", 1, true) end, 10)
	os.execute("kill -9 " .. pid)
	t:ok(ready, "the child committed within 10 s; it said: " .. said())
	t:ok(T.wait_until(function() return T.sh("kill -0 " .. pid .. " 2>/dev/null; echo $?") ~= "0\n" end),
		"the child is gone")
	local got, code = child(store, "print(mqtt.state.count, dump(mqtt.state.seen), mqtt.state.late)")
	t:eq(code, 0, "reader exit code; output:\n" .. got)
	t:eq(got, "42\t{i:1=s:\"a\",i:2=s:\"b\"}\tnil\n", "count and seen committed, late lost")
end)
