-- fill.lua - publishes until the disk under the store is full, then waits
-- for space and publishes again, without a broker.
--
--   mqlua --store STORE fill.lua CLIENT_ID FREED_FILE AFTER
--
-- Messages are numbered 1, 2, ... counting ACCEPTED publishes only (rc 0),
-- payload "<n>:" and 1000 bytes; 20 per loop iteration, each iteration
-- committed by mqlua.sleep(0). On the first publish that does not return
-- rc 0 (an error code or a raised error) it prints
--   full accepted=K depth=D rc=<rc> error=<raised error or ->
-- then tries once more while the disk is still full (prints "again rc=..
-- error=.."), waits (up to 60 s) for FREED_FILE to exist, and publishes
-- AFTER more, printing
--   after accepted=K2 failed=F depth=D
-- The main chunk ends there (the store is committed at exit).
local mqtt = require "mqlua"

local id, freed, after = arg[1], arg[2], tonumber(arg[3])
assert(id and freed and after, "usage: fill.lua CLIENT_ID FREED_FILE AFTER")
io.stdout:setvbuf("line")

local c = mqtt.Client { client_id = id, clean_session = false }
local filler = string.rep("x", 1000)
local accepted = 0

-- One publish of number accepted + 1: rc (or nil) and the raised error.
local function try()
	local ok, info = pcall(c.publish, c, "faults/full", (accepted + 1) .. ":" .. filler, 1)
	if not ok then return nil, tostring(info) end
	if info.rc == 0 then accepted = accepted + 1 end
	return info.rc, nil
end

local rc, err
local shrank = nil
local deadline = mqtt.time() + 60
while true do
	for _ = 1, 20 do
		rc, err = try()
		if rc ~= 0 then break end
	end
	if rc ~= 0 then break end
	mqtt.sleep(0)
	local depth = c:queue_depth()
	if depth ~= accepted and not shrank then
		shrank = string.format("after a commit: depth %d but %d accepted", depth, accepted)
		print("depth_mismatch " .. shrank)
	end
	if accepted >= 100000 or mqtt.time() > deadline then
		print(string.format("never_full accepted=%d depth=%d", accepted, c:queue_depth()))
		os.exit(5)
	end
end
print(string.format("full accepted=%d depth=%s rc=%s error=%s", accepted, tostring(c:queue_depth()),
	tostring(rc), err and err:gsub("\n", " | ") or "-"))
mqtt.sleep(0)
rc, err = try()
print(string.format("again rc=%s error=%s accepted=%d depth=%s", tostring(rc), err and err:gsub("\n", " | ") or "-",
	accepted, tostring(c:queue_depth())))
mqtt.sleep(0)

assert(mqtt.wait_until(function()
	local h = io.open(freed)
	if h then h:close() end
	return h ~= nil
end, 60), "FREED_FILE never appeared")

local failed = 0
for i = 1, after do
	rc, err = try()
	if rc ~= 0 then
		failed = failed + 1
		if failed == 1 then print("after: first failure rc=" .. tostring(rc) .. " error=" .. tostring(err)) end
	end
	if i % 20 == 0 then mqtt.sleep(0) end
end
mqtt.sleep(0)
print(string.format("after accepted=%d failed=%d depth=%s", accepted, failed, tostring(c:queue_depth())))
