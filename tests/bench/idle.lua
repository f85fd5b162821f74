-- idle.lua - the mqlua side of the idle-memory benchmark.
--
--   mqlua tests/bench/idle.lua HOST PORT TOPIC
--
-- Same work as `ref_client idle`: connect, subscribe to TOPIC at QoS 1,
-- stay idle for half a second, print "rss KB" (VmRSS of this process).

local mqtt = require "mqlua"

local host, port, topic = arg[1], tonumber(arg[2]), arg[3]
if not (host and port and topic) then
	io.stderr:write("usage: mqlua idle.lua HOST PORT TOPIC\n")
	os.exit(1)
end

local function rss_kb()
	for line in io.lines("/proc/self/status") do
		local kb = line:match("^VmRSS:%s*(%d+)")
		if kb then return kb end
	end
	return "-1"
end

local c = mqtt.Client("", true)
c.on_connect = function(client, userdata, flags, rc)
	if rc ~= 0 then
		io.stderr:write("idle.lua: connection refused, rc ", tostring(rc), "\n")
		os.exit(1)
	end
	client:subscribe(topic, 1)
end
c.on_subscribe = function(client)
	mqtt.after(0.5, function()
		print("rss " .. rss_kb())
		io.stdout:flush()
		client:disconnect()
	end)
end

local rc = c:connect(host, port, 60)
if rc ~= mqtt.MQTT_ERR_SUCCESS then
	io.stderr:write("idle.lua: connect ", host, ":", port, " failed, rc ", tostring(rc), "\n")
	os.exit(1)
end
c:loop_forever()
