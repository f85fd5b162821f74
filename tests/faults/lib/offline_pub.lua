-- offline_pub.lua - publishes N QoS1 messages (payload = 1..N) to TOPIC
-- with no broker: the client never connects. Every publish must return
-- rc 0 (queued) with an increasing 64-bit mid; queue_depth() must be N
-- when the main chunk ends. Prints one summary line; exit 0 if all held.
--
--   mqlua --store STORE offline_pub.lua CLIENT_ID N TOPIC
local mqtt = require "mqlua"

local id, n, topic = arg[1], tonumber(arg[2]), arg[3]
assert(id and n and topic, "usage: offline_pub.lua CLIENT_ID N TOPIC")

local c = mqtt.Client { client_id = id, clean_session = false }
local bad_rc, bad_mid, first_bad = 0, 0, nil
local last_mid
for i = 1, n do
	local info = c:publish(topic, tostring(i), 1)
	if info.rc ~= 0 then
		bad_rc = bad_rc + 1
		first_bad = first_bad or string.format("message %d: rc=%s", i, tostring(info.rc))
	end
	if math.type(info.mid) ~= "integer" or (last_mid and info.mid <= last_mid) then
		bad_mid = bad_mid + 1
		first_bad = first_bad or string.format("message %d: mid %s after %s", i, tostring(info.mid), tostring(last_mid))
	end
	last_mid = info.mid
	if i % 1000 == 0 then mqtt.sleep(0) end
end
local depth = c:queue_depth()
print(string.format("published=%d rc_not_0=%d bad_mid=%d depth=%d last_mid=%s%s", n, bad_rc, bad_mid, depth,
	tostring(last_mid), first_bad and (" first_problem=" .. first_bad) or ""))
os.exit((bad_rc == 0 and bad_mid == 0 and depth == n) and 0 or 1)
