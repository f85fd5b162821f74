--[[
mqlua/test.lua - the test harness: `mqlua test` runs files written with it,
and so do the project's own tests (tests/lua/*.lua).

    test("the porch light turns on", function(t)
       local c = T.connected(t, "fixture")             -- on the file's broker
       c:publish("sensors/porch/motion", "1")
       local msg = t:expect_message(c, "lights/porch/set", { json = { state = "ON" } })
       t:no_message(c, "lights/hall/set", 0.5)
       t:eq(msg.qos, 1, "qos")
    end)

Under `mqlua test`, every file gets the globals `test`, `T` (this
module) and `arg` (arg[0] is the file), a fresh private broker (the default broker of connect() without a
host, also T.broker() and t.broker), and per-test timeouts; the command
prints the summary line. A plain script may also `local T = require
"mqlua.test"` and end with T.done(), which prints and exits.

Each test() runs its function at once, protected, and prints one line,
`ok - <file>: <name>` or `not ok - <file>: <name>` followed by `# ` lines
saying why: expected and actual values and the `file:line` of the failed
assertion in the test file, or the traceback of an error. A failed
assertion ends its test; the next test() still runs.
test(name, fn, { timeout = s }) gives one test its own time limit instead
of --timeout (for a test that waits for the clock).

Assertions (each returns its value):
  t:eq(a, e, what)    a equals e; tables are compared deeply (same keys,
                      equal values; metatables ignored), numbers with Lua's
                      == (so 1 == 1.0), NaN equals NaN.
  t:ok(v, msg)        v is neither nil nor false.
  t:match(s, p, what) s is a string and string.find(s, p) succeeds
                      (p is a Lua pattern, not plain text).
  t:raises(fn, p)     fn() raises an error whose message (tostring'ed)
                      matches the Lua pattern p (any error if p is nil).
                      Returns the message.
  t:expect_message(client, filter, opts)
                      the first message on filter that opts accept, among
                      those the client received since it was made (every
                      Client made in a test file is watched from its
                      creation) and those arriving within opts.timeout
                      seconds (default 5). opts: payload = exact string,
                      json = a table compared deeply with the decoded
                      payload, match = function(msg) returning true. The
                      message is taken: a later call does not see it again.
                      The client is subscribed to filter (qos 2) first
                      unless one of its subscriptions covers it; subscribe
                      before causing the message when it is not retained.
  t:no_message(client, filter, within)
                      fails if a message on filter arrives within `within`
                      seconds (default 1), or had arrived and was not taken
                      by expect_message.
]]

local S = require "mqlua.test.show"
local has_mqlua, mqlua = pcall(require, "mqlua")
local tap = has_mqlua and require "mqlua.test.tap" or nil

local T = {}
T.show = S.show
-- T.spawn: background processes (mqlua/test/spawn.lua), loaded on first use
T.spawn = setmetatable({}, { __index = function(_, k) return require("mqlua.test.spawn")[k] end })

io.stdout:setvbuf("line")     -- keep ok lines in the log even if we crash

local passed, failed = 0, 0
local finished = false
local file_name               -- how result lines name the file
local config = {}             -- from run_file: filter, timeout, verbose, broker_url
local ctl                     -- from run_file: arm, disarm, notify (C, test mode only)
local tmpdirs = {}
local brokers = {}            -- every broker started here, stopped by cleanup()
local shared_broker
local harness_sources = {}    -- chunk names of the harness's own files

for _, m in ipairs { "mqlua.test", "mqlua.test.show", "mqlua.test.tap" } do
	local path = package.searchpath(m, package.path)
	if path then harness_sources["@" .. path] = true end
end
harness_sources[debug.getinfo(1, "S").source] = true

-- A failed assertion is raised as one of these, so it can be told apart
-- from an error in the code under test (which gets a traceback).
local Failure = {}
Failure.__tostring = function(f) return f.msg end

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
-- Test context

local Context = {}
Context.__index = Context

-- The first Lua frame outside the harness: where the failing call is.
local function where()
	for level = 3, 50 do
		local info = debug.getinfo(level, "Sl")
		if not info then break end
		if info.what ~= "C" and not harness_sources[info.source] then
			return info.short_src .. ":" .. (info.currentline or "?")
		end
	end
	return "?"
end

-- Raises a Failure located in the test file.
local function fail(msg)
	error(setmetatable({ msg = msg .. "\nat " .. where() }, Failure), 0)
end

local function label(what, default)
	if what == nil then return default end
	return tostring(what)
end

function Context:eq(actual, expected, what)
	local p, x, y = S.diff(actual, expected)
	if p == nil then return actual end
	local msg = label(what, "values differ") .. ": not equal\n" ..
		"  expected: " .. S.show(expected) .. "\n" ..
		"  actual:   " .. S.show(actual)
	if p ~= "" then
		msg = msg .. "\n  first difference at " .. p .. ": expected " ..
			S.show(y, 120) .. ", got " .. S.show(x, 120)
	end
	fail(msg)
end

function Context:ok(value, message)
	if value then return value end
	fail(label(message, "value is not true") .. " (got " .. S.show(value, 120) .. ")")
end

function Context:match(str, pattern, what)
	if type(str) ~= "string" then
		fail(label(what, "match") .. ": expected a string matching " ..
			S.quote(tostring(pattern)) .. ", got " .. S.show(str, 120))
	end
	if string.find(str, pattern) then return str end
	fail(label(what, "match") .. ": " .. S.show(str) .. "\n  does not match pattern " ..
		S.quote(tostring(pattern)))
end

function Context:raises(fn, pattern)
	local ok, err = pcall(fn)
	if ok then
		fail("expected an error" .. (pattern and (" matching " .. S.quote(pattern)) or "") ..
			", but the function returned normally")
	end
	if getmetatable(err) == Failure then
		error(err, 0)   -- an assertion failed inside fn: report that one
	end
	local msg = tostring(err)
	if pattern == nil or string.find(msg, pattern) then return msg end
	fail("error message " .. S.show(msg) .. "\n  does not match pattern " .. S.quote(pattern))
end

function Context:expect_message(client, filter, opts)
	local msg, why = tap.expect(client, filter, opts)
	if msg == nil then fail(why) end
	return msg
end

function Context:no_message(client, filter, within)
	local why = tap.none(client, filter, within)
	if why then fail(why) end
end

---------------------------------------------------------------------------
-- Running tests

local function report_error(err)
	if getmetatable(err) == Failure then return err end
	local tb = debug.traceback(tostring(err), 2)
	-- drop the harness's own frames below the test function
	return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end

local function selected(name)
	local f = config.filter
	if f == nil or name:find(f, 1, true) then return true end
	local ok, found = pcall(string.find, name, f)
	return ok and found ~= nil
end

-- Runs fn(t) now, protected, and prints its result line. opts.timeout
-- overrides --timeout for this test (one that waits for the clock, say).
function T.test(name, fn, opts)
	if type(name) ~= "string" then error("test: name must be a string, got " .. type(name), 2) end
	if type(fn) ~= "function" then error("test: fn must be a function, got " .. type(fn), 2) end
	if opts ~= nil and (type(opts) ~= "table" or (opts.timeout ~= nil and
		(type(opts.timeout) ~= "number" or opts.timeout <= 0))) then
		error("test: opts must be a table with timeout = seconds > 0", 2)
	end
	local timeout = opts and opts.timeout or config.timeout
	if not file_name then
		local info = debug.getinfo(2, "S")
		file_name = (tostring(info and info.source or "?"):gsub("^@", ""):match("([^/]+)$"))
	end
	if finished then
		error("mqlua.test: test() called after T.done()", 2)
	end
	if not selected(name) then return nil end
	local t = setmetatable({ name = name, broker = shared_broker }, Context)
	local started = has_mqlua and mqlua.time()
	if ctl then
		ctl.notify("start " .. one_line(name))
		ctl.arm(timeout)
	end
	local ok, err = xpcall(fn, report_error, t)
	if ctl then
		if ctl.disarm() then
			ok = false
			err = string.format("timed out after %g s\n", timeout) ..
				tostring(err):gsub("^[^\n]*\n", "", 1)   -- the traceback shows where it hung
		end
		ctl.notify(ok and "pass" or "fail")
	end
	local line = file_name .. ": " .. one_line(name)
	if ok then
		passed = passed + 1
		print("ok - " .. line)
	else
		failed = failed + 1
		print("not ok - " .. line)
		comment(tostring(err))
	end
	if config.verbose and started then
		print(string.format("# %.3f s", mqlua.time() - started))
	end
	io.stdout:flush()
	return ok
end

local function cleanup()
	local spawn = package.loaded["mqlua.test.spawn"]
	if spawn then pcall(spawn.stop_all) end
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

-- Standalone use (not under `mqlua test`): cleans up and exits, 0 if at
-- least one test ran and none failed. Under `mqlua test` it does nothing.
function T.done()
	if ctl then return end
	finished = true
	cleanup()
	if failed > 0 then
		print(string.format("# %d of %d tests failed", failed, passed + failed))
	elseif passed == 0 then
		print("# no tests ran")
	end
	io.stdout:flush()
	os.exit((failed == 0 and passed > 0) and 0 or 1, true)
end

-- Used by `mqlua test` (runtime/testmode.c) in the child process of one
-- file: runs the file at `path` (named `name` in result lines) with the
-- globals test and T, on a fresh broker unless cfg.broker_url is given.
-- cfg: filter, timeout (seconds per test), verbose, broker_url, broker_host,
-- broker_port. c: arm(s), disarm() -> timed out?, notify(line) for the
-- parent. Returns the number of passed and failed cases (a file that cannot
-- load or raises outside a test counts one failure).
function T.run_file(path, name, cfg, c)
	config, ctl, file_name = cfg, c, name
	tap.install()
	local function broken(what, err)
		failed = failed + 1
		print("not ok - " .. name .. ": " .. what)
		comment(err)
	end
	local chunk, err = loadfile(path)
	if not chunk then
		broken("the file does not load", err)
		return passed, failed
	end
	if cfg.broker_url then
		shared_broker = { url = cfg.broker_url, host = cfg.broker_host, port = cfg.broker_port,
			running = true, stop = function() end }
	else
		local ok, b = pcall(mqlua.broker.start)
		if not ok then
			broken("the embedded broker did not start", b)
			return passed, failed
		end
		shared_broker = b
		brokers[1] = b
	end
	_G.test, _G.T, _G.arg = T.test, T, { [0] = path }   -- arg[0]: to find files beside the test
	local ok, e = xpcall(chunk, report_error)
	if not ok then broken("an error outside a test", e) end
	finished = true
	cleanup()
	return passed, failed
end

---------------------------------------------------------------------------
-- Fixtures

-- Path of the mqlua binary under test: $MQLUA_BUILD/mqlua, else the mqlua
-- running this file.
local running_exe
function T.mqlua()
	local build = os.getenv("MQLUA_BUILD")
	if build then return build .. "/mqlua" end
	if not running_exe then
		local p = io.popen("readlink /proc/$PPID/exe 2>/dev/null")   -- the shell's parent: us
		running_exe = p and p:read("l") or ""
		if p then p:close() end
		if running_exe == "" then running_exe = "mqlua" end
	end
	return running_exe
end

-- Writes source to the file path and runs it with the mqlua under test and
-- the arguments (each quoted); returns what it wrote (stdout and stderr) and
-- its exit code, as T.sh.
function T.run_script(path, source, ...)
	local f = assert(io.open(path, "w"))
	f:write(source)
	f:close()
	local args = {}
	for i, a in ipairs { ... } do args[i] = string.format("%q", tostring(a)) end
	return T.sh(string.format("%s %s %s 2>&1", T.mqlua(), path, table.concat(args, " ")))
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
-- privileges can read files put there), removed when the file ends.
function T.tmpdir()
	local out, code = T.sh("mktemp -d")
	local dir = out:match("^(%S+)")
	if code ~= 0 or not dir or dir:find("'", 1, true) then
		error("mqlua.test: mktemp -d failed", 2)
	end
	os.execute("chmod 755 '" .. dir .. "'")
	tmpdirs[#tmpdirs + 1] = dir
	return dir
end

-- T.certs(): a fresh directory of throw-away TLS material made by
-- tests/lib/certs.sh (ca.crt, server.crt/.key, client certificates...);
-- raises when it cannot be made.
function T.certs()
	local dir = T.tmpdir()
	local out, code = T.sh("tests/lib/certs.sh '" .. dir .. "' 2>&1")
	if code ~= 0 then
		error("mqlua.test: tests/lib/certs.sh failed: " .. out, 2)
	end
	return dir
end

-- T.broker(): the file's broker (under `mqlua test`: the fresh one, or the
-- --broker one; standalone: one started on first use). T.broker(opts): a
-- new private broker (mqlua.broker.start(opts)), which becomes the default
-- broker. Either has host, port, url and :stop(); the file's end stops it.
function T.broker(opts)
	if opts == nil and shared_broker then return shared_broker end
	local ok, b = pcall(mqlua.broker.start, opts)
	if not ok then
		error("mqlua.test: broker.start failed: " .. tostring(b), 2)
	end
	brokers[#brokers + 1] = b
	if opts == nil then shared_broker = b end
	return b
end

-- Runs the mqlua loop until pred() is truthy (true) or `timeout` seconds
-- (default 5) have passed (false).
function T.wait_until(pred, timeout)
	local deadline = mqlua.time() + (timeout or 5)
	while not pred() do
		if mqlua.time() >= deadline then return false end
		mqlua.sleep(0.01)   -- polls: pred may watch files or processes, not only messages
	end
	return true
end

-- T.connected(t, id, clean, broker): a Client(id, clean) connected to broker
-- (default: the file's default broker), failing the test if it does not connect.
function T.connected(t, id, clean, broker)
	local c = mqlua.Client(id, clean)
	local rc = broker and c:connect(broker.host, broker.port) or c:connect()
	t:eq(rc, mqlua.MQTT_ERR_SUCCESS, id .. ": connect rc")
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

if tap then tap.install() end

return T
