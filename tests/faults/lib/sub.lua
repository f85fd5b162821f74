-- sub.lua - the witness of the fault tests: a subscriber with a persistent
-- session (clean_session = false) that writes the number at the start of
-- every payload it receives, one per line, to OUT, and keeps reconnecting
-- (connect_async, short backoff) while the broker is away.
--
--   mqlua sub.lua HOST PORT CLIENT_ID FILTER QOS OUT [N]
--
-- OUT.ready appears after the first SUBACK. With N, OUT.done appears once
-- every number 1..N has arrived at least once; the driver then stops the
-- subscriber with SIGTERM (a clean disconnect) and counts OUT itself.
-- The subscriber publishes nothing, so it uses no store (store = false).
local mqtt = require "mqlua"

local host, port, id, filter, qos, out, n =
	arg[1], tonumber(arg[2]), arg[3], arg[4], tonumber(arg[5]), arg[6], tonumber(arg[7])
assert(host and port and id and filter and qos and out, "usage: sub.lua HOST PORT CLIENT_ID FILTER QOS OUT [N]")

local f = assert(io.open(out, "a"))
f:setvbuf("line")

local function touch(path, text)
	local h = assert(io.open(path, "w"))
	h:write(text or "")
	h:close()
end

local seen, distinct, done = {}, 0, false
local c = mqtt.Client { client_id = id, clean_session = false, store = false }
c:reconnect_delay_set(0.05, 0.5)
local ready = false
c.on_connect = function(cl, _, flags, rc)
	io.stderr:write(string.format("sub %s: on_connect rc=%s session_present=%s\n",
		id, tostring(rc), tostring(flags and flags.session_present)))
	if rc == 0 then cl:subscribe(filter, qos) end
end
c.on_disconnect = function(_, _, rc)
	io.stderr:write(string.format("sub %s: on_disconnect rc=%s\n", id, tostring(rc)))
end
c.on_subscribe = function()
	if not ready then
		ready = true
		touch(out .. ".ready", "ready\n")
	end
end
c.on_message = function(_, _, m)
	local num = m.payload:match("^(%d+)") or ("?" .. m.payload:sub(1, 20))
	f:write(num, "\n")
	local k = tonumber(num)
	if n and k and not seen[k] and k >= 1 and k <= n then
		seen[k] = true
		distinct = distinct + 1
		if distinct == n and not done then
			done = true
			touch(out .. ".done", "done\n")
		end
	end
end
-- connect_async returns the first attempt's rc (say, refused: the broker
-- is down) and keeps retrying in the loop: that is what we want here
c:connect_async(host, port, 30)
-- the connected client keeps mqlua running until SIGTERM
