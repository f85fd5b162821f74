-- stream_pub.lua - the publisher of the kill and outage tests: publishes the
-- numbers state.next .. N (payload = the number) at QoS QOS, keeping its
-- place in mqlua.state.next, set in the same loop iteration as the publish,
-- so a restart after kill -9 goes on where the last commit left it. Yields
-- to the loop (and so commits) every BATCH messages, then waits until the
-- broker has acknowledged everything and disconnects.
--
--   mqlua --store STORE stream_pub.lua HOST PORT CLIENT_ID QOS N TOPIC PROGRESS [BATCH [SESSION]]
--
-- SESSION: "persistent" (default: clean_session = false) or "clean"
-- (clean_session = true, as the README says to publish QoS 2).
-- TOPIC may contain %d (replaced by the number). PROGRESS is rewritten
-- with "next depth" after each batch and while draining, for the driver to
-- pick kill points. Exit 0 after "done ..."; 2 when a publish fails.
local mqtt = require "mqlua"

local host, port, id, qos, n, topic, progress, batch, session =
	arg[1], tonumber(arg[2]), arg[3], tonumber(arg[4]), tonumber(arg[5]), arg[6], arg[7], tonumber(arg[8] or 200),
	arg[9] or "persistent"
assert(host and port and id and qos and n and topic and progress and
	(session == "persistent" or session == "clean"),
	"usage: stream_pub.lua HOST PORT CLIENT_ID QOS N TOPIC PROGRESS [BATCH [persistent|clean]]")

local c = mqtt.Client { client_id = id, clean_session = session == "clean" }
c:reconnect_delay_set(0.05, 0.5)

local function report(next_i)
	local h = io.open(progress .. ".tmp", "w")
	if h then
		h:write(string.format("%d %d\n", next_i, c:queue_depth()))
		h:close()
		os.rename(progress .. ".tmp", progress)
	end
end

local start = mqtt.state.next or 1
io.stdout:setvbuf("line")
print(string.format("start next=%d depth=%d", start, c:queue_depth()))
report(start)
-- connect_async returns the first attempt's rc (say, refused: the broker
-- is down) and keeps retrying in the loop: that is what we want here
c:connect_async(host, port, 30)

local per_number = topic:find("%d", 1, true) ~= nil
for i = start, n do
	local info = c:publish(per_number and topic:format(i) or topic, tostring(i), qos)
	if info.rc ~= 0 then
		print(string.format("publish %d failed: rc=%s", i, tostring(info.rc)))
		os.exit(2)
	end
	mqtt.state.next = i + 1
	if i % batch == 0 then
		report(i + 1)
		mqtt.sleep(0)
	end
end
local next_i = math.max(start, n + 1)
while c:queue_depth() > 0 do
	report(next_i)
	mqtt.sleep(0.02)
end
report(next_i)
print(string.format("done next=%d depth=%d", next_i, c:queue_depth()))
c:disconnect()
