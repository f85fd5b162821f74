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
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local host, port, filter = arg[1], tonumber(arg[2]), arg[3]
local count, client_id, store = tonumber(arg[4]), arg[5], arg[6]
B.usage(host and port and filter and count and client_id and store,
	"mqlua retained.lua HOST PORT FILTER COUNT CLIENT_ID STORE")


local received = 0
local c = mqtt.Client{client_id = client_id, clean_session = true, store = store}
c.on_connect = function(client, userdata, flags, rc)
	B.refused(rc)
	client:subscribe(filter, 0)
end
c.on_message = function(client)
	received = received + 1
	if received == count then
		mqtt.sleep(0)   -- the last group commit
		print("rss " .. B.rss_kb())
		io.stdout:flush()
		local held = #client:retained(filter)
		if held ~= count then B.fail("the retained cache holds %d of %d", held, count) end
		client:disconnect()
	end
end

B.run(c, host, port)
B.expect(received, count, "messages")
