--[[
mqlua/test/spawn.lua - background processes for tests and fixtures (a
device simulator, the rule script under test, a proxy): started with their
output in a log file, waited for, stopped by pid. Reached as T.spawn.

    local p = T.spawn.start("mqlua --broker " .. t.broker.url .. " rules.lua", "connected")
    p:stop()      -- SIGTERM and wait
    p:log()       -- what it printed so far
    T.spawn.free_port()

`mqlua test` stops whatever is still running when the file ends.
]]
local T = require "mqlua.test"
local mqtt = require "mqlua"

local spawn = {}
local running = {}

local P = {}
P.__index = P

local function read_all(path)
	local f = io.open(path, "r")
	if not f then return "" end
	local s = f:read("a")
	f:close()
	return s
end

function P:log() return read_all(self.logfile) end

-- True while pid runs (an exited child nobody reaped yet counts as gone).
local function alive(pid)
	local f = io.open("/proc/" .. pid .. "/stat")
	if not f then return false end
	local stat = f:read("a")
	f:close()
	return stat:match("^%d+ %b() (%a)") ~= "Z"
end

function P:stop()
	if not self.pid then return end
	os.execute("kill " .. self.pid .. " 2>/dev/null")
	T.wait_until(function() return not alive(self.pid) end, 3)
	os.execute("kill -9 " .. self.pid .. " 2>/dev/null")
	running[self] = nil
	self.pid = nil
end

-- Starts cmd (a shell command line) in the background and waits until its
-- output matches ready (a Lua pattern, nil: no wait). Raises if it does not.
function spawn.start(cmd, ready, timeout)
	local logfile = T.tmpdir() .. "/out.log"
	local out = T.sh("exec " .. cmd .. " >'" .. logfile .. "' 2>&1 & echo $!")
	local p = setmetatable({ pid = tonumber(out:match("%d+")), logfile = logfile, cmd = cmd }, P)
	running[p] = true
	if ready and not T.wait_until(function() return p:log():find(ready) ~= nil end, timeout or 10) then
		local log = p:log()
		p:stop()
		error("spawn: '" .. cmd .. "' did not become ready: " .. log, 2)
	end
	return p
end

function spawn.stop_all()
	for p in pairs(running) do p:stop() end
end

spawn.free_port = mqtt.broker.free_port

return spawn
