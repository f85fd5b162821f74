-- fill.lua - publishes until the disk under the store is full, then waits
-- for space and publishes again, without a broker.
--
--   mqlua --store STORE fill.lua CLIENT_ID FREED_FILE AFTER KEPT_FILE
--
-- Every publish takes the next number k (payload "<k>:" and 1000 bytes) and
-- its MQTTMessageInfo is kept. 20 publishes per loop iteration, each
-- iteration ended by mqlua.sleep(0), which commits. After that commit
-- every info of the iteration is looked at again: a number whose info still
-- says rc 0 is "kept" (written to KEPT_FILE: it must reach a subscriber
-- later); one whose info now says rc ~= 0 was reported failed. Printed:
--   failed number=K mid=M rc=RC when=commit|refused|again|after
--       one line per message reported failed (commit: rc 0 at publish,
--       failed by the commit after it; refused/again/after: rc ~= 0 from
--       publish itself, while filling / once full / once space is back)
--   full kept=K failed_commit=F refused=R rc=RC depth=D
--       the first iteration with a failure (after 60 s or 100,000 numbers
--       without one: "never_failed kept=K depth=D" instead)
--   again tries=5 rc_not_0=X
--       5 more publishes while the disk is still full
--   wait_for_publish failed=N raised=N2 error=<first error>
--       info:wait_for_publish() on every failed message must raise
--   after kept=K2 failed=F depth=D first_mid=M flipped=X
--       AFTER more publishes, once FREED_FILE exists (waited up to 60 s);
--       X: kept messages whose info says rc ~= 0 by then (must be 0)
--   depth_mismatch kept=K depth=D
--       (at most once) when queue_depth() after a commit is not the
--       number of kept messages: the store lost or invented some
local mqtt = require "mqlua"

local id, freed, after, kept_file = arg[1], arg[2], tonumber(arg[3]), arg[4]
assert(id and freed and after and kept_file, "usage: fill.lua CLIENT_ID FREED_FILE AFTER KEPT_FILE")
io.stdout:setvbuf("line")

local c = mqtt.Client { client_id = id, clean_session = false }
local filler = string.rep("x", 1000)
local out = assert(io.open(kept_file, "w"))
local n, kept = 0, 0
local failed = {}            -- every info reported failed: { k, info, when }
local kept_infos = {}        -- the info of every kept message
local mismatch = false

local function oneline(s) return s and (s:gsub("\n", " | ")) or "-" end

-- publish(): publishes number n + 1; returns its entry { k, info } (info nil
-- and err set if publish raised).
local function publish()
	n = n + 1
	local ok, info = pcall(c.publish, c, "faults/full", n .. ":" .. filler, 1)
	if not ok then return { k = n, err = tostring(info) } end
	return { k = n, info = info }
end

local function rc_of(e) return e.info and e.info.rc or "raised:" .. oneline(e.err) end

local function fail(e, when)
	failed[#failed + 1] = { e = e, when = when }
	print(string.format("failed number=%d mid=%s rc=%s when=%s", e.k, tostring(e.info and e.info.mid),
		tostring(rc_of(e)), when))
end

-- commit(batch, when_refused): mqlua.sleep(0), then sorts the batch's
-- entries into kept and failed. Returns the number failed by the commit,
-- the number refused by publish itself, and the last rc ~= 0 seen.
local function commit(batch, when_refused)
	mqtt.sleep(0)
	local by_commit, refused, rc = 0, 0, nil
	for _, e in ipairs(batch) do
		if e.info and e.info.rc == 0 then
			kept = kept + 1
			kept_infos[kept] = e.info
			out:write(e.k, "\n")
		else
			if e.at_publish == 0 then
				by_commit = by_commit + 1
				fail(e, "commit")
			else
				refused = refused + 1
				fail(e, when_refused)
			end
			rc = rc_of(e)
		end
	end
	out:flush()
	local depth = c:queue_depth()
	if depth ~= kept and not mismatch then
		mismatch = true
		print(string.format("depth_mismatch kept=%d depth=%d", kept, depth))
	end
	return by_commit, refused, rc
end

-- iteration(size, when_refused): size publishes (fewer if one is refused)
-- and their commit; returns what commit() returns.
local first_mid       -- of the first message published once space is back
local function iteration(size, when_refused)
	local batch = {}
	for _ = 1, size do
		local e = publish()
		if when_refused == "after" and not first_mid then first_mid = e.info and e.info.mid end
		e.at_publish = e.info and e.info.rc or -1
		batch[#batch + 1] = e
		if e.at_publish ~= 0 then break end
	end
	return commit(batch, when_refused)
end

-- 1. fill
local deadline = mqtt.time() + 60
while true do
	local by_commit, refused, rc = iteration(20, "refused")
	if by_commit + refused > 0 then
		print(string.format("full kept=%d failed_commit=%d refused=%d rc=%s depth=%d", kept, by_commit, refused,
			tostring(rc), c:queue_depth()))
		break
	end
	if n >= 100000 or mqtt.time() > deadline then
		print(string.format("never_failed kept=%d depth=%d", kept, c:queue_depth()))
		break
	end
end

-- 2. still full: each publish must fail at once
local again = 0
for _ = 1, 5 do
	local e = publish()
	e.at_publish = e.info and e.info.rc or -1
	if e.at_publish ~= 0 then again = again + 1 end
	commit({ e }, "again")
end
print(string.format("again tries=5 rc_not_0=%d", again))

-- 3. every failed message: wait_for_publish raises
local raised, first_err = 0, nil
for _, f in ipairs(failed) do
	if f.e.info then
		local ok, err = pcall(f.e.info.wait_for_publish, f.e.info, 0.5)
		if not ok and tostring(err):find("message publish failed", 1, true) then
			raised = raised + 1
		end
		first_err = first_err or (ok and "returned " .. tostring(err) or tostring(err))
	end
end
print(string.format("wait_for_publish failed=%d raised=%d error=%s", #failed, raised, oneline(first_err)))

-- 4. space back
assert(mqtt.wait_until(function()
	local h = io.open(freed)
	if h then h:close() end
	return h ~= nil
end, 60), "FREED_FILE never appeared")

local before, failed_after = #failed, 0
for _ = 1, after // 20 do iteration(20, "after") end
if after % 20 > 0 then iteration(after % 20, "after") end
failed_after = #failed - before
out:close()
local flipped = 0           -- kept messages whose info no longer says rc 0
for _, info in ipairs(kept_infos) do
	if info.rc ~= 0 then flipped = flipped + 1 end
end
print(string.format("after kept=%d failed=%d depth=%d first_mid=%s flipped=%d", kept, failed_after,
	c:queue_depth(), tostring(first_mid), flipped))
