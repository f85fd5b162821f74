-- claim.lua - one client_id's queue claimed by a process.
--
--   mqlua --store STORE claim.lua CLIENT_ID hold   queues one QoS1 message,
--       prints "holding depth=D", then stays 60 s (the claim held)
--   mqlua --store STORE claim.lua CLIENT_ID try    creates the client and
--       queues one QoS1 message, protected: prints "ok depth=D" and exits
--       0, or prints "refused: <error or rc>" and exits 4
--   mqlua claim.lua CLIENT_ID try STORE            the same with
--       Client{store = STORE} instead of --store
local mqtt = require "mqlua"

local id, mode, store = arg[1], arg[2], arg[3]
assert(id and (mode == "hold" or mode == "try"), "usage: claim.lua CLIENT_ID hold|try [STORE]")
io.stdout:setvbuf("line")

-- Returns the client, or nil and why it could not queue a message.
local function claim()
	local c = mqtt.Client { client_id = id, clean_session = false, store = store }
	local info = c:publish("faults/claim/" .. id, "1", 1)
	if info.rc ~= 0 then return nil, "publish rc=" .. tostring(info.rc) end
	mqtt.sleep(0)
	return c
end

local ok, c, why = pcall(claim)
if not ok then c, why = nil, c end
if not c then
	print("refused: " .. tostring(why))
	os.exit(4)
end
if mode == "hold" then
	print(string.format("holding depth=%d", c:queue_depth()))
	mqtt.sleep(60)
	os.exit(0)
end
print(string.format("ok depth=%d", c:queue_depth()))
