-- drain.lua - the same client_id again: reports what it finds queued, then
-- (unless HOST is "-") connects, optionally publishes EXTRA more QoS1
-- messages numbered after FIRST_EXTRA (they must arrive after the backlog),
-- waits until queue_depth() is 0 and disconnects.
--
--   mqlua --store STORE drain.lua HOST PORT CLIENT_ID TOPIC [EXTRA FIRST_EXTRA [TIMEOUT]]
local mqtt = require "mqlua"

local host, port, id, topic = arg[1], tonumber(arg[2]), arg[3], arg[4]
local extra, first_extra, timeout = tonumber(arg[5] or 0), tonumber(arg[6] or 0), tonumber(arg[7] or 60)
assert(host and id and topic, "usage: drain.lua HOST PORT CLIENT_ID TOPIC [EXTRA FIRST_EXTRA [TIMEOUT]]")
io.stdout:setvbuf("line")

local c = mqtt.Client { client_id = id, clean_session = false }
local depth0 = c:queue_depth()
print(string.format("found depth=%d oldest_age=%s state.next=%s", depth0, tostring(c:queue_oldest_age()),
	tostring(mqtt.state.next)))
if host == "-" then os.exit(0) end

c:reconnect_delay_set(0.05, 0.5)
-- connect_async returns the first attempt's rc (say, refused: the broker
-- is down) and keeps retrying in the loop: that is what we want here
c:connect_async(host, port, 30)
for i = first_extra, first_extra + extra - 1 do
	local info = c:publish(topic, tostring(i), 1)
	if info.rc ~= 0 then
		print(string.format("extra publish %d: rc=%s", i, tostring(info.rc)))
		os.exit(2)
	end
end
local ok = mqtt.wait_until(function() return c:queue_depth() == 0 end, timeout)
print(string.format("%s depth=%d", ok and "drained" or "NOT drained", c:queue_depth()))
c:disconnect()
os.exit(ok and 0 or 1)
