-- pingpong.lua - the mqlua side of the round-trip latency benchmark.
--
--   mqlua tests/bench/pingpong.lua HOST PORT N
--
-- Same work as `ref_client pingpong`: subscribe to bench/pong, then N times
-- publish a 64-byte QoS 0 message to bench/ping and wait for its echo (from
-- `ref_client echo`) before sending the next. Prints "pingpong N P50_US
-- P99_US", nearest-rank percentiles of the round trips in microseconds.

local mqtt = require "mqlua"
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local PING, PONG = "bench/ping", "bench/pong"

local host, port, n = arg[1], tonumber(arg[2]), tonumber(arg[3])
B.usage(host and port and n, "mqlua pingpong.lua HOST PORT N")

local payload = string.rep("p", 64)
local rtts = {}
local sent_at

local function percentile(sorted, p)
	local rank = math.max(1, math.min(#sorted, math.ceil(p / 100 * #sorted)))
	return sorted[rank]
end

local function finish(client)
	table.sort(rtts)
	print(string.format("pingpong %d %.1f %.1f", #rtts,
		n > 0 and percentile(rtts, 50) * 1e6 or 0, n > 0 and percentile(rtts, 99) * 1e6 or 0))
	io.stdout:flush()
	client:disconnect()
end

local function ping(client)
	sent_at = mqtt.time()
	client:publish(PING, payload, 0, false)
end

local c = mqtt.Client("", true)

c.on_connect = function(client, userdata, flags, rc)
	B.refused(rc)
	client:subscribe(PONG, 0)
end

c.on_subscribe = function(client, userdata, mid, granted_qos)
	if n == 0 then finish(client) else ping(client) end
end

c.on_message = function(client, userdata, msg)
	rtts[#rtts + 1] = mqtt.time() - sent_at
	if #rtts == n then finish(client) else ping(client) end
end

B.run(c, host, port)
