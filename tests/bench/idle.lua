-- idle.lua - the mqlua side of the idle-memory benchmark.
--
--   mqlua tests/bench/idle.lua HOST PORT TOPIC
--
-- Same work as `ref_client idle`: connect, subscribe to TOPIC at QoS 1,
-- stay idle for half a second, print "rss KB" (VmRSS of this process).

local mqtt = require "mqlua"
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local host, port, topic = arg[1], tonumber(arg[2]), arg[3]
B.usage(host and port and topic, "mqlua idle.lua HOST PORT TOPIC")

local c = mqtt.Client("", true)
c.on_connect = function(client, userdata, flags, rc)
	B.refused(rc)
	client:subscribe(topic, 1)
end
c.on_subscribe = function(client)
	mqtt.after(0.5, function()
		print("rss " .. B.rss_kb())
		io.stdout:flush()
		client:disconnect()
	end)
end

B.run(c, host, port)
