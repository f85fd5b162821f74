-- use_store.lua - uses a store the way any script would: a client with a
-- persistent session, its queue depth, one QoS1 message queued offline.
-- Prints what happened; a store that cannot be used should make mqlua
-- itself fail (a Lua error naming the file, exit 1).
--
--   mqlua --store STORE use_store.lua CLIENT_ID    the process's store
--   mqlua use_store.lua CLIENT_ID STORE            Client{store = STORE}
local mqtt = require "mqlua"

local id, store = arg[1], arg[2]
io.stdout:setvbuf("line")
local c = mqtt.Client { client_id = id, clean_session = false, store = store }
print("depth " .. tostring(c:queue_depth()))
local info = c:publish("faults/use", "1", 1)
print("publish rc " .. tostring(info.rc))
mqtt.sleep(0)
print("depth " .. tostring(c:queue_depth()))
