-- filters.lua - the mqlua side of the message-callback benchmark.
--
--   mqlua tests/bench/filters.lua HOST PORT PREFIX COUNT NFILTERS CLIENT_ID
--
-- Like recv.lua (drain a backlog waiting in a persistent session, subscribed
-- to PREFIX/# at QoS 0; every message is on PREFIX/sensors/room42/dev77/temp),
-- but the messages are counted by a message_callback_add callback, with
-- NFILTERS = 1 (PREFIX/sensors/room42/+/temp alone) or 10000 filters:
-- PREFIX/sensors/room<1..100>/<dev1..dev9 or +>/<10 metrics>, of which only
-- PREFIX/sensors/room42/+/temp matches. Prints "recv COUNT SECONDS RATE".
-- The same filters are built by peers/paho_bench.py.

local mqtt = require "mqlua"
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local host, port, prefix = arg[1], tonumber(arg[2]), arg[3]
local count, nfilters, client_id = tonumber(arg[4]), tonumber(arg[5]), arg[6]
B.usage(host and port and prefix and count and (nfilters == 1 or nfilters == 10000) and client_id,
	"mqlua filters.lua HOST PORT PREFIX COUNT NFILTERS(1|10000) CLIENT_ID")

local received, first = 0, nil
local function counted(client)
	received = received + 1
	if received == 1 then
		first = mqtt.time()
	end
	if received == count then
		local seconds = mqtt.time() - first
		print(string.format("recv %d %.6f %.0f", received, seconds, seconds > 0 and received / seconds or 0))
		io.stdout:flush()
		client:disconnect()
	end
end

local c = mqtt.Client(client_id, false)
local match = prefix .. "/sensors/room42/+/temp"
if nfilters == 1 then
	c:message_callback_add(match, counted)
else
	local metrics = { "temp", "humidity", "co2", "lux", "motion", "door", "window", "power", "voltage", "battery" }
	local function wrong() B.fail("a filter that should not match did") end
	for room = 1, 100 do
		for dev = 1, 10 do
			local device = dev == 10 and "+" or "dev" .. dev
			for _, metric in ipairs(metrics) do
				local f = ("%s/sensors/room%d/%s/%s"):format(prefix, room, device, metric)
				c:message_callback_add(f, f == match and counted or wrong)
			end
		end
	end
end
c.on_message = function() B.fail("no filter matched") end

c.on_connect = function(client, userdata, flags, rc)
	B.refused(rc)
	client:subscribe(prefix .. "/#", 0)
end

B.run(c, host, port)
B.expect(received, count, "messages")
