--[[
testlib.lua - the harness for tests/lua/*.lua (and, later, `mqlua test`).

    package.path = "tests/lib/?.lua;" .. package.path
    local T = require "testlib"
    local test = T.test
    test("name", function(t)
       t:eq(actual, expected, "what")
       t:ok(value, "message")
       t:match(str, lua_pattern, "what")
       t:raises(function() ... end, lua_pattern)
    end)
    T.done()

Each test() runs its function at once, protected, and prints one line,
`ok - <file>: <name>` or `not ok - <file>: <name>` followed by `# ` lines
saying why. A failed assertion ends its test; the next test() still runs.
T.done() cleans up (brokers, temp dirs) and exits 0 if every test passed.

Assertions:
  t:eq(a, e, what)    a equals e; tables are compared deeply (same keys,
                      equal values; metatables ignored), numbers with Lua's
                      == (so 1 == 1.0), NaN equals NaN.
  t:ok(v, msg)        v is neither nil nor false.
  t:match(s, p, what) s is a string and string.find(s, p) succeeds
                      (p is a Lua pattern, not plain text).
  t:raises(fn, p)     fn() raises an error whose message (tostring'ed)
                      matches the Lua pattern p (any error if p is nil).
                      Returns the message. Escape magic characters
                      (%( %. %- ...) when matching literal text.

Nothing here needs mqlua until T.broker() or T.wait_until() is called, so
the pure parts also work under plain lua5.4.
]]

local T = {}

io.stdout:setvbuf("line")     -- keep ok lines in the log even if we crash

local passed, failed = 0, 0
local finished = false
local file_name               -- basename of the test file, found lazily
local tmpdirs = {}
local brokers = {}            -- every broker started here, stopped by done()
local shared_broker

-- A failed assertion is raised as one of these, so it can be told apart
-- from an error in the code under test (which gets a traceback).
local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return f.msg end

local function basename(path)
	return (tostring(path):gsub("^@", ""):match("([^/]+)$")) or tostring(path)
end

local function one_line(s)
	return (tostring(s):gsub("[\r\n]+", " "))
end

-- Prints `s` as comment lines.
local function comment(s)
	for line in (tostring(s) .. "\n"):gmatch("(.-)\r?\n") do
		print("# " .. line)
	end
end

---------------------------------------------------------------------------
-- Value display and deep comparison

local function is_identifier(k)
	return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function quote(s)
	return (string.format("%q", s):gsub("\\\n", "\\n"))
end

local function key_order(a, b)
	local ta, tb = type(a), type(b)
	if ta ~= tb then return ta < tb end
	if ta == "number" or ta == "string" then return a < b end
	return tostring(a) < tostring(b)
end

-- Renders v as compact Lua-like text: sorted keys, cycles marked, long
-- output cut at `limit` characters.
local function show(v, limit)
	limit = limit or 400
	local out, len, seen = {}, 0, {}
	local function put(s)
		out[#out + 1] = s
		len = len + #s
	end
	local function walk(x, depth)
		if len > limit then return end
		local tx = type(x)
		if tx == "string" then
			put(quote(x))
		elseif tx == "number" then
			if x ~= x then put("nan")
			elseif math.type(x) == "float" and x == math.floor(x) and math.abs(x) < 1e15 then
				put(string.format("%.1f", x))
			else put(tostring(x)) end
		elseif tx ~= "table" then
			put(tostring(x))
		elseif seen[x] then
			put("<cycle>")
		elseif depth > 8 then
			put("{...}")
		else
			seen[x] = true
			local keys, n = {}, #x
			for k in pairs(x) do
				if not (math.type(k) == "integer" and k >= 1 and k <= n) then
					keys[#keys + 1] = k
				end
			end
			table.sort(keys, key_order)
			put("{")
			local first = true
			local function sep()
				if not first then put(", ") end
				first = false
			end
			for i = 1, n do
				sep()
				walk(x[i], depth + 1)
			end
			for _, k in ipairs(keys) do
				sep()
				if is_identifier(k) then put(k)
				else put("["); walk(k, depth + 1); put("]") end
				put(" = ")
				walk(x[k], depth + 1)
			end
			put("}")
			seen[x] = nil
		end
	end
	walk(v, 0)
	local s = table.concat(out)
	if #s > limit then s = s:sub(1, limit) .. "..." end
	return s
end
T.show = show

local function path_of(path, k)
	if is_identifier(k) then return path .. "." .. k end
	return path .. "[" .. show(k, 60) .. "]"
end

-- Returns nil if a deep-equals b, else the path of the first difference and
-- the two values found there.
local function diff(a, b, path, seen)
	if rawequal(a, b) then return nil end
	if type(a) ~= type(b) then return path, a, b end
	if type(a) == "number" and a ~= a and b ~= b then return nil end
	if type(a) ~= "table" then
		if a == b then return nil end
		return path, a, b
	end
	seen[a] = seen[a] or {}
	if seen[a][b] then return nil end      -- already being compared above
	seen[a][b] = true
	local keys = {}
	for k in pairs(a) do keys[#keys + 1] = k end
	for k in pairs(b) do
		if rawget(a, k) == nil then keys[#keys + 1] = k end
	end
	table.sort(keys, key_order)
	for _, k in ipairs(keys) do
		local p, x, y = diff(rawget(a, k), rawget(b, k), path_of(path, k), seen)
		if p then return p, x, y end
	end
	return nil
end

---------------------------------------------------------------------------
-- Test context

local Context = {}
Context.__index = Context

-- Raises a Failure located at the caller of the assertion method.
local function fail(msg)
	local info = debug.getinfo(3, "Sl")
	local where = info and (info.short_src .. ":" .. (info.currentline or "?")) or "?"
	error(setmetatable({ msg = msg .. "\nat " .. where }, Failure), 0)
end

local function label(what, default)
	if what == nil then return default end
	return tostring(what)
end

function Context:eq(actual, expected, what)
	local p, x, y = diff(actual, expected, "", {})
	if p == nil then return actual end
	local msg = label(what, "values differ") .. ": not equal\n" ..
		"  expected: " .. show(expected) .. "\n" ..
		"  actual:   " .. show(actual)
	if p ~= "" then
		msg = msg .. "\n  first difference at " .. p .. ": expected " ..
			show(y, 120) .. ", got " .. show(x, 120)
	end
	fail(msg)
end

function Context:ok(value, message)
	if value then return value end
	fail(label(message, "value is not true") .. " (got " .. show(value, 120) .. ")")
end

function Context:match(str, pattern, what)
	if type(str) ~= "string" then
		fail(label(what, "match") .. ": expected a string matching " ..
			quote(tostring(pattern)) .. ", got " .. show(str, 120))
	end
	if string.find(str, pattern) then return str end
	fail(label(what, "match") .. ": " .. show(str) .. "\n  does not match pattern " ..
		quote(tostring(pattern)))
end

function Context:raises(fn, pattern)
	local ok, err = pcall(fn)
	if ok then
		fail("expected an error" .. (pattern and (" matching " .. quote(pattern)) or "") ..
			", but the function returned normally")
	end
	if getmetatable(err) == Failure then
		error(err, 0)   -- an assertion failed inside fn: report that one
	end
	local msg = tostring(err)
	if pattern == nil or string.find(msg, pattern) then return msg end
	fail("error message " .. show(msg) .. "\n  does not match pattern " .. quote(pattern))
end

---------------------------------------------------------------------------
-- Running tests

local function report_error(err)
	if getmetatable(err) == Failure then return err end
	local tb = debug.traceback(tostring(err), 2)
	-- drop the harness's own frames below the test function
	return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end

-- Runs fn(t) now, protected, and prints its result line.
function T.test(name, fn)
	if not file_name then
		local info = debug.getinfo(2, "S")
		file_name = basename(info and info.source or (arg and arg[0]) or "?")
	end
	if finished then
		error("testlib: test() called after T.done()", 2)
	end
	local t = setmetatable({ name = name }, Context)
	local ok, err = xpcall(fn, report_error, t)
	local line = file_name .. ": " .. one_line(name)
	if ok then
		passed = passed + 1
		print("ok - " .. line)
	else
		failed = failed + 1
		print("not ok - " .. line)
		comment(tostring(err))
	end
	io.stdout:flush()
	return ok
end

local function cleanup()
	for i = #brokers, 1, -1 do
		pcall(brokers[i].stop, brokers[i])
		brokers[i] = nil
	end
	shared_broker = nil
	for i = #tmpdirs, 1, -1 do
		os.execute("rm -rf -- '" .. tmpdirs[i] .. "'")
		tmpdirs[i] = nil
	end
end

-- A file that forgets T.done() still exits 0: say so where the runner sees it.
local guard = setmetatable({}, { __gc = function()
	if not finished and passed + failed > 0 then
		print("not ok - " .. (file_name or "?") .. ": T.done() was not called")
		cleanup()
	end
end })

-- Cleans up and exits: 0 if at least one test ran and none failed.
function T.done()
	finished = true
	guard = nil
	cleanup()
	if failed > 0 then
		print(string.format("# %d of %d tests failed", failed, passed + failed))
	elseif passed == 0 then
		print("# no tests ran")
	end
	io.stdout:flush()
	os.exit((failed == 0 and passed > 0) and 0 or 1, true)
end


---------------------------------------------------------------------------
-- Fixtures

-- Path of the mqlua binary under test.
function T.mqlua()
	return (os.getenv("MQLUA_BUILD") or "build") .. "/mqlua"
end

-- Runs a shell command; returns its stdout and exit code (128 + signal
-- number if it was killed). Stderr is not captured.
function T.sh(cmd)
	local p = assert(io.popen(cmd, "r"))
	local out = p:read("a")
	local _, how, code = p:close()
	if how == "signal" then code = 128 + code end
	return out, code
end

-- A fresh temporary directory (mode 755, so a broker that dropped root
-- privileges can read files put there), removed by T.done().
function T.tmpdir()
	local out, code = T.sh("mktemp -d")
	local dir = out:match("^(%S+)")
	if code ~= 0 or not dir or dir:find("'", 1, true) then
		error("testlib: mktemp -d failed", 2)
	end
	os.execute("chmod 755 '" .. dir .. "'")
	tmpdirs[#tmpdirs + 1] = dir
	return dir
end

-- A private broker: with opts nil, one per file, shared; otherwise a new
-- one each call. It has host, port, url and :stop(); T.done() stops it.
function T.broker(opts)
	if opts == nil and shared_broker then return shared_broker end
	local mqlua = require "mqlua"
	local b, err = mqlua.broker.start(opts)
	if not b then
		error("testlib: broker.start failed: " .. tostring(err), 2)
	end
	brokers[#brokers + 1] = b
	if opts == nil then shared_broker = b end
	return b
end

-- Runs the mqlua loop until pred() is truthy (true) or `timeout` seconds
-- (default 5) have passed (false).
function T.wait_until(pred, timeout)
	local mqlua = require "mqlua"
	timeout = timeout or 5
	local now = type(mqlua.now) == "function" and mqlua.now or nil
	local deadline = now and now() + timeout
	local steps = math.ceil(timeout / 0.01)
	while true do
		if pred() then return true end
		if now then
			if now() >= deadline then return false end
		else
			steps = steps - 1
			if steps < 0 then return false end
		end
		mqlua.sleep(0.01)
	end
end

-- T.connected(t, id, clean, broker): a Client(id, clean) connected to broker
-- (default: the file's default broker), failing the test if it does not connect.
function T.connected(t, id, clean, broker)
	local mqtt = require "mqlua"
	local c = mqtt.Client(id, clean)
	local rc = broker and c:connect(broker.host, broker.port) or c:connect()
	t:eq(rc, mqtt.MQTT_ERR_SUCCESS, id .. ": connect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), id .. ": connected within 5 s")
	return c
end

-- T.subscribed(t, c, ...): c:subscribe(...) and wait for the SUBACK (the
-- subscription is active then); c's own on_subscribe still runs. Returns the mid.
function T.subscribed(t, c, ...)
	local acked = false
	local before = c.on_subscribe
	c.on_subscribe = function(...)
		acked = true
		if before then before(...) end
	end
	local rc, mid = c:subscribe(...)
	t:eq(rc, 0, "subscribe rc")
	t:ok(T.wait_until(function() return acked end), "SUBACK within 5 s")
	c.on_subscribe = before
	return mid
end

-- T.collector(c): makes c record every message it gets (topic, payload, qos,
-- retain) in the returned list.
function T.collector(c)
	local got = {}
	c.on_message = function(_, _, msg)
		got[#got + 1] = { topic = msg.topic, payload = msg.payload, qos = msg.qos, retain = msg.retain }
	end
	return got
end

-- T.payloads(list): the payloads of a T.collector list, in order.
function T.payloads(list)
	local out = {}
	for i, m in ipairs(list) do out[i] = m.payload end
	return out
end

return T
