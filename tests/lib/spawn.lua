--[[
spawn.lua - background helper processes for tests (a node broker, a SOCKS5
proxy): started with their output in a log file, waited for, stopped by pid.

    local spawn = require "spawn"
    local p = spawn.start(t, "node tests/lib/ws_broker.js --ws 1234", "^ready")
    p:stop()      -- SIGTERM and wait; spawn.stop_all() in the end
    p:log()       -- what it printed so far

tests/run kills whatever a test file leaves running; stop_all() is for
tidiness and for restarts within a file.
]]
local T = require "testlib"
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
