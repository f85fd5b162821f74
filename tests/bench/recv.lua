-- recv.lua - the mqlua side of the receive-backlog benchmark.
--
--   mqlua tests/bench/recv.lua HOST PORT TOPIC COUNT QOS CLIENT_ID
--
-- Same work as `ref_client recv`: connect with clean_session=false to a
-- session whose backlog is waiting, subscribe TOPIC at QOS, count messages
-- in on_message until COUNT arrived, print "recv COUNT SECONDS RATE" with
-- the time from the first message to the last, disconnect.
-- The no-progress timeout is left to the caller (tests/bench/run wraps the
-- process in timeout(1)); this script does nothing per message but count.

local mqtt = require "mqlua"
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local host, port, topic = arg[1], tonumber(arg[2]), arg[3]
local count, qos, client_id = tonumber(arg[4]), tonumber(arg[5]), arg[6]
B.usage(host and port and topic and count and qos and client_id, "mqlua recv.lua HOST PORT TOPIC COUNT QOS CLIENT_ID")

local received, first = 0, nil

local c = mqtt.Client(client_id, false)

c.on_connect = function(client, userdata, flags, rc)
	B.refused(rc)
	client:subscribe(topic, qos)
end

c.on_message = function(client, userdata, msg)
	received = received + 1
	if received == 1 then
		first = mqtt.time()
	end
	if received == count then
		local seconds = mqtt.time() - first
		print(string.format("recv %d %.6f %.0f", received, seconds,
			seconds > 0 and received / seconds or 0))
		io.stdout:flush()
		client:disconnect()
	end
end

B.run(c, host, port)
B.expect(received, count, "messages")
