-- pub.lua - the mqlua side of the publish benchmark.
--
--   mqlua tests/bench/pub.lua HOST PORT TOPIC COUNT QOS PAYLOAD_BYTES
--         [CLIENT_ID STORE DURABILITY]
--
-- Same work as `ref_client pub`: after CONNACK, publish COUNT messages of
-- PAYLOAD_BYTES bytes to TOPIC at QOS, and wait until every one is
-- acknowledged (QoS 1/2) or written (QoS 0: on_publish fires when sent);
-- print "pub COUNT SECONDS RATE", the clock running from just before the
-- first publish to the last on_publish.
--
-- The C client calls mosquitto_publish COUNT times back to back and lets
-- libmosquitto's queue hold what the socket cannot take yet. Here the calls
-- are made in batches from the callbacks, so the loop gets to flush between
-- them: WINDOW messages go out from on_connect, and whenever no more than
-- WINDOW/2 remain unconfirmed on_publish tops the window up again. Both
-- sides make exactly COUNT publish calls with the same payload string and
-- receive exactly COUNT on_publish callbacks; the window only bounds how
-- much waits in memory, and it is far larger than the inflight limit (20)
-- and than what fills a socket buffer, so the wire is never left idle.
--
-- Without CLIENT_ID the client gets a generated id, so QoS>0 messages go
-- through an in-memory store. With CLIENT_ID STORE DURABILITY ("memory",
-- "normal" or "full") the QoS>0 messages go through that SQLite store file:
-- every publish is a row, committed once per loop iteration, sent within the
-- inflight window of 20, deleted by its ack.

local mqtt = require "mqlua"
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local WINDOW = 1000

local host, port, topic = arg[1], tonumber(arg[2]), arg[3]
local count, qos, payload_bytes = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
local client_id, store, durability = arg[7], arg[8], arg[9]
B.usage(host and port and topic and count and qos and payload_bytes and (not client_id or store and durability),
	"mqlua pub.lua HOST PORT TOPIC COUNT QOS PAYLOAD_BYTES [CLIENT_ID STORE DURABILITY]")

local payload = string.rep("x", payload_bytes)
local sent, confirmed = 0, 0
local start

local function report(client)
	local seconds = mqtt.time() - start
	print(string.format("pub %d %.6f %.0f", confirmed, seconds,
		seconds > 0 and confirmed / seconds or 0))
	io.stdout:flush()
	client:disconnect()
end

-- Publishes until WINDOW messages are unconfirmed or all COUNT are sent.
local function top_up(client)
	local target = math.min(count, confirmed + WINDOW)
	while sent < target do
		local info = client:publish(topic, payload, qos, false)
		if info.rc ~= mqtt.MQTT_ERR_SUCCESS then
			B.fail("publish %d failed, rc %s", sent, tostring(info.rc))
		end
		sent = sent + 1
	end
end

local c
if client_id then
	c = mqtt.Client{client_id = client_id, clean_session = true, store = store, durability = durability}
else
	c = mqtt.Client("", true)
end

c.on_connect = function(client, userdata, flags, rc)
	B.refused(rc)
	if start then return end      -- a reconnect: keep going, do not restart the clock
	start = mqtt.time()
	if count == 0 then
		report(client)
	else
		top_up(client)
	end
end

c.on_publish = function(client, userdata, mid)
	confirmed = confirmed + 1
	if confirmed == count then
		report(client)
	elseif sent < count and sent - confirmed <= WINDOW // 2 then
		top_up(client)
	end
end

B.run(c, host, port)
B.expect(confirmed, count, "confirmations")
