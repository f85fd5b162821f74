-- commit_kill.lua - publishes COUNT QoS1 messages with no broker, sets
-- mqlua.state.next = COUNT + 1 in the same loop iteration, calls
-- mqlua.sleep(SLEEP) (which runs the loop, and so commits), then kills
-- itself with SIGKILL: nothing of the normal exit path runs.
--
--   mqlua --store STORE commit_kill.lua CLIENT_ID COUNT SLEEP
local mqtt = require "mqlua"

local id, count, pause = arg[1], tonumber(arg[2]), tonumber(arg[3])
assert(id and count and pause, "usage: commit_kill.lua CLIENT_ID COUNT SLEEP")
local c = mqtt.Client { client_id = id, clean_session = false }
for i = 1, count do
	local info = c:publish("faults/commit", tostring(i), 1)
	assert(info.rc == 0, "publish rc " .. tostring(info.rc))
end
mqtt.state.next = count + 1
mqtt.sleep(pause)
local self = assert(io.open("/proc/self/stat")):read("a"):match("^(%d+)")
io.stdout:write("killing myself: ", self, "\n")
io.stdout:flush()
os.execute("kill -KILL " .. self)
mqtt.sleep(5)
print("still alive")
