-- common.lua - what the mqlua sides of tests/bench/run share: the usage
-- check, failing with the script's name, VmRSS, and connect-then-loop.
--
--   local B = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local mqtt = require "mqlua"

local B = {}
local name = arg[0]:match("([^/]+)$")

-- B.fail(fmt, ...): prints "NAME: message" on stderr and exits 1.
function B.fail(fmt, ...)
	io.stderr:write(name, ": ", string.format(fmt, ...), "\n")
	os.exit(1)
end

-- B.usage(ok, line, ...): unless ok, prints the usage lines and exits 1.
function B.usage(ok, ...)
	if ok then return end
	io.stderr:write("usage: ", table.concat({ ... }, "\n       "), "\n")
	os.exit(1)
end

-- B.refused(rc): fails for an on_connect whose rc is not 0.
function B.refused(rc)
	if rc ~= 0 then B.fail("connection refused, rc %s", tostring(rc)) end
end

-- B.rss_kb(): this process's VmRSS in kB, as a string ("-1" if unknown).
function B.rss_kb()
	for line in io.lines("/proc/self/status") do
		local kb = line:match("^VmRSS:%s*(%d+)")
		if kb then return kb end
	end
	return "-1"
end

-- B.run(c, host, port): connects c and runs its loop until it disconnects.
function B.run(c, host, port)
	local rc = c:connect(host, port, 60)
	if rc ~= mqtt.MQTT_ERR_SUCCESS then B.fail("connect %s:%d failed, rc %s", host, port, tostring(rc)) end
	c:loop_forever()
end

-- B.expect(got, want, what): after the loop, fails unless got == want.
function B.expect(got, want, what)
	if got ~= want then B.fail("loop ended after %d of %d %s", got, want, what) end
end

return B
