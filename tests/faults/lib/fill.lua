-- fill.lua - publishes until the disk under the store is full, then waits
-- for space and publishes again, without a broker.
--
--   mqlua --store STORE fill.lua CLIENT_ID FREED_FILE AFTER ACCEPTED_FILE
--
-- Every publish that returns rc 0 takes the next number n (payload "<n>:"
-- and 1000 bytes), and n is written to ACCEPTED_FILE. 20 publishes per loop
-- iteration, each iteration ended by mqlua.sleep(0), which commits. The
-- filling stops at the first publish that does not return rc 0 (an error
-- code, or a raised error), printing
--   full accepted=K window=W depth=D rc=<rc> error=<raised error or ->
-- where numbers W+1..K went out in the last two loop iterations: their
-- commit may have been the one that failed. Without any failure after
-- 60 s or 100,000 messages it prints "never_failed ..." instead.
-- Then one more try while the disk is still full ("again rc=.."), a wait
-- (up to 60 s) for FREED_FILE to exist, and AFTER more publishes:
--   after accepted=K2 failed=F depth=D
-- Whenever queue_depth() after a commit is below the number accepted it
-- prints "depth_fell accepted=K depth=D" (the store lost rc-0 messages).
local mqtt = require "mqlua"

local id, freed, after, accepted_file = arg[1], arg[2], tonumber(arg[3]), arg[4]
assert(id and freed and after and accepted_file, "usage: fill.lua CLIENT_ID FREED_FILE AFTER ACCEPTED_FILE")
io.stdout:setvbuf("line")

local c = mqtt.Client { client_id = id, clean_session = false }
local filler = string.rep("x", 1000)
local out = assert(io.open(accepted_file, "w"))
local n = 0
local fell = false

-- One publish of number n + 1: its rc (nil if it raised) and the error.
local function try()
	local ok, info = pcall(c.publish, c, "faults/full", (n + 1) .. ":" .. filler, 1)
	if not ok then return nil, tostring(info) end
	if info.rc == 0 then
		n = n + 1
		out:write(n, "\n")
	end
	return info.rc, nil
end

local function commit()
	mqtt.sleep(0)
	local depth = c:queue_depth()
	if depth < n and not fell then
		fell = true
		print(string.format("depth_fell accepted=%d depth=%d", n, depth))
	end
end

local function oneline(s) return s and (s:gsub("\n", " | ")) or "-" end

local rc, err
local starts = { 0, 0 }     -- n at the start of the last two iterations
local deadline = mqtt.time() + 60
while true do
	starts[1], starts[2] = starts[2], n
	for _ = 1, 20 do
		rc, err = try()
		if rc ~= 0 then break end
	end
	if rc ~= 0 then break end
	commit()
	if n >= 100000 or mqtt.time() > deadline then
		print(string.format("never_failed accepted=%d depth=%d", n, c:queue_depth()))
		break
	end
end
if rc ~= 0 then
	print(string.format("full accepted=%d window=%d depth=%s rc=%s error=%s", n, starts[1],
		tostring(c:queue_depth()), tostring(rc), oneline(err)))
end
commit()
rc, err = try()
print(string.format("again rc=%s error=%s accepted=%d", tostring(rc), oneline(err), n))
commit()
out:flush()

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
		if failed == 1 then print("after: first failure rc=" .. tostring(rc) .. " error=" .. oneline(err)) end
	end
	if i % 20 == 0 then commit() end
end
commit()
out:close()
print(string.format("after accepted=%d failed=%d depth=%s", n, failed, tostring(c:queue_depth())))
