-- qos2_queue.lua - a client that finds, and may add to, QoS 2 messages in
-- its queue, without a broker (it never connects).
--
--   mqlua --store STORE qos2_queue.lua CLIENT_ID persistent|clean N
--
-- Creates Client{client_id = CLIENT_ID, clean_session = (clean)}, prints
-- "found depth=D", publishes N QoS 2 messages (they stay queued: no
-- broker), lets the loop commit them and prints "left depth=D2". Exit 0,
-- or 2 if a publish does not return rc 0. What mqlua logs goes to stderr.
local mqtt = require "mqlua"

local id, session, n = arg[1], arg[2], tonumber(arg[3])
assert(id and (session == "persistent" or session == "clean") and n,
	"usage: qos2_queue.lua CLIENT_ID persistent|clean N")
io.stdout:setvbuf("line")

local c = mqtt.Client { client_id = id, clean_session = session == "clean" }
print(string.format("found depth=%d", c:queue_depth()))
for i = 1, n do
	local info = c:publish("faults/qos2q", tostring(i), 2)
	if info.rc ~= 0 then
		print(string.format("publish %d: rc=%s", i, tostring(info.rc)))
		os.exit(2)
	end
end
mqtt.sleep(0)
print(string.format("left depth=%d", c:queue_depth()))
