-- backlog.lua - the mqlua side of the offline-backlog benchmark (no C
-- counterpart: libmosquitto keeps no queue on disk).
--
--   mqlua tests/bench/backlog.lua queue HOST PORT TOPIC COUNT PAYLOAD_BYTES CLIENT_ID STORE BATCH
--   mqlua tests/bench/backlog.lua drain HOST PORT TOPIC COUNT PAYLOAD_BYTES CLIENT_ID STORE
--
-- queue: connect_async to HOST:PORT, where nothing listens (the caller picks
-- a closed port), so the client stays offline and keeps retrying; publish
-- COUNT QoS 1 messages of PAYLOAD_BYTES bytes to TOPIC, BATCH per loop
-- iteration (mqlua.sleep(0) between batches, so each batch is one group
-- commit, as in a script that keeps publishing while the broker is away);
-- then disconnect and let mqlua exit, which commits the last rows. Prints
-- "queue COUNT SECONDS RATE DEPTH", DEPTH being queue_depth() at the end.
--
-- drain: open the same STORE as the same CLIENT_ID (durability normal),
-- check that COUNT messages wait, connect to the broker at HOST:PORT and
-- count acknowledgements until queue_depth() is 0. Prints
-- "drain COUNT SECONDS RATE", the clock running from CONNACK to the ack
-- that emptied the queue. TOPIC and PAYLOAD_BYTES are unused here (the rows
-- carry them); they keep the two command lines alike.
--
-- Peak memory is measured from outside (tests/bench/run wraps the process
-- in /usr/bin/time), so it includes the commit at exit.

local mqtt = require "mqlua"
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local mode, host, port, topic = arg[1], arg[2], tonumber(arg[3]), arg[4]
local count, payload_bytes = tonumber(arg[5]), tonumber(arg[6])
local client_id, store, batch = arg[7], arg[8], tonumber(arg[9])
B.usage((mode == "queue" and batch and batch > 0 or mode == "drain")
		and host and port and topic and count and payload_bytes and client_id and store,
	"mqlua backlog.lua queue HOST PORT TOPIC COUNT PAYLOAD_BYTES CLIENT_ID STORE BATCH",
	"mqlua backlog.lua drain HOST PORT TOPIC COUNT PAYLOAD_BYTES CLIENT_ID STORE")

local c = mqtt.Client{client_id = client_id, clean_session = true, store = store, durability = "normal"}

if mode == "queue" then
	local payload = string.rep("x", payload_bytes)
	local before = c:queue_depth()
	c.on_connect = function() B.fail("connected to %s:%d, which should be closed", host, port) end
	c:connect_async(host, port, 60)
	local start = mqtt.time()
	for i = 1, count do
		local info = c:publish(topic, payload, 1, false)
		if info.rc ~= mqtt.MQTT_ERR_SUCCESS then
			B.fail("publish %d failed, rc %s", i, tostring(info.rc))
		end
		if i % batch == 0 then
			mqtt.sleep(0)
		end
	end
	mqtt.sleep(0)    -- the last batch is committed too
	local seconds = mqtt.time() - start
	local depth = c:queue_depth() - before
	print(string.format("queue %d %.6f %.0f %d", count, seconds, seconds > 0 and count / seconds or 0, depth))
	io.stdout:flush()
	c:disconnect()
	return
end

-- drain
local depth = c:queue_depth()
if depth ~= count then
	B.fail("%d messages wait in %s for %s, expected %d", depth, store, client_id, count)
end
local start, acked = nil, 0

c.on_connect = function(client, userdata, flags, rc)
	B.refused(rc)
	start = start or mqtt.time()
end

c.on_publish = function(client, userdata, mid)
	acked = acked + 1
	if client:queue_depth() == 0 then
		local seconds = mqtt.time() - start
		print(string.format("drain %d %.6f %.0f", acked, seconds, seconds > 0 and acked / seconds or 0))
		io.stdout:flush()
		client:disconnect()
	end
end

B.run(c, host, port)
B.expect(acked, count, "acknowledgements")
