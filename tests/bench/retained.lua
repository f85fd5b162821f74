-- retained.lua - the mqlua side of the retained-memory benchmark.
--
--   mqlua tests/bench/retained.lua HOST PORT FILTER COUNT CLIENT_ID STORE
--
-- Same work as `ref_client retained`: subscribe to FILTER, where COUNT
-- retained messages wait, and hold them: here mqlua's retained cache does
-- the holding (every retained message is upserted into the client's store,
-- the file STORE, durability normal, as a named client has by default).
-- Once COUNT arrived and were committed, prints "rss KB" (VmRSS), then
-- checks that client:retained(FILTER) returns COUNT entries.

local mqtt = require "mqlua"

local host, port, filter = arg[1], tonumber(arg[2]), arg[3]
local count, client_id, store = tonumber(arg[4]), arg[5], arg[6]
if not (host and port and filter and count and client_id and store) then
	io.stderr:write("usage: mqlua retained.lua HOST PORT FILTER COUNT CLIENT_ID STORE\n")
	os.exit(1)
end

local function fail(why)
	io.stderr:write("retained.lua: ", why, "\n")
	os.exit(1)
end

local function rss_kb()
	for line in io.lines("/proc/self/status") do
		local kb = line:match("^VmRSS:%s*(%d+)")
		if kb then return kb end
	end
	return "-1"
end

local received = 0
local c = mqtt.Client{client_id = client_id, clean_session = true, store = store}
c.on_connect = function(client, userdata, flags, rc)
	if rc ~= 0 then fail("connection refused, rc " .. tostring(rc)) end
	client:subscribe(filter, 0)
end
c.on_message = function(client)
	received = received + 1
	if received == count then
		mqtt.sleep(0)   -- the last group commit
		print("rss " .. rss_kb())
		io.stdout:flush()
		local held = #client:retained(filter)
		if held ~= count then fail(("the retained cache holds %d of %d"):format(held, count)) end
		client:disconnect()
	end
end

local rc = c:connect(host, port, 60)
if rc ~= mqtt.MQTT_ERR_SUCCESS then
	fail(("connect %s:%d failed, rc %s"):format(host, port, tostring(rc)))
end
c:loop_forever()
if received ~= count then
	fail(("loop ended after %d of %d messages"):format(received, count))
end
