--[[
mqlua/test/tap.lua - what mqlua.test's t:expect_message and t:no_message
stand on: every Client made after install() is watched from its creation,
and each message it receives is kept in a per-client buffer before the
script's own on_message or message_callback_add callback runs. So a
fixture may publish first and expect afterwards: messages that arrived
before the call count.

It works on the shared Client metatable (test mode only): reading or
setting `on_message` of a watched client goes to the script's function
while the client keeps a recording dispatcher; message_callback_add
records before calling the given callback; subscribe, unsubscribe and
reinitialise keep track of the filters, so that expect_message knows
whether it must subscribe itself. Errors of these methods keep their
usual text.
]]

local mqlua = require "mqlua"
local S = require "mqlua.test.show"

local M = {}

local MAX_BUFFERED = 10000     -- messages per client; beyond, the older half is dropped
local MAX_BYTES = 1024 * 1024   -- payload bytes per client, likewise
local taps = setmetatable({}, { __mode = "k" })   -- client -> tap
local index, newindex          -- the Client metatable's own
local bypass = false           -- the next __index lookup goes to the original

local function record(tap, msg)
	if rawequal(tap.last, msg) then return end   -- several filter callbacks, one message
	tap.last = msg
	local buf = tap.buf
	local payload = msg.payload
	buf[#buf + 1] = { topic = msg.topic, payload = payload, qos = msg.qos, retain = msg.retain, msg = msg }
	tap.bytes = (tap.bytes or 0) + #payload
	if #buf > MAX_BUFFERED or tap.bytes > MAX_BYTES then
		-- drop the older half at once: a flood stays linear
		local keep = #buf // 2
		table.move(buf, #buf - keep + 1, #buf, 1)
		local dropped = #buf - keep
		for i = #buf, keep + 1, -1 do buf[i] = nil end
		tap.dropped = tap.dropped + dropped
		local bytes = 0
		for i = 1, keep do bytes = bytes + #buf[i].payload end
		tap.bytes = bytes
	end
end

-- The filters a subscribe/unsubscribe call names, in each of its forms.
local function filters_of(a, ...)
	if type(a) == "string" then return { a } end
	if type(a) ~= "table" then return {} end
	if type(a.topic) == "string" then return { a.topic } end
	if type(a[1]) == "string" and select("#", ...) == 0 and (a[2] == nil or type(a[2]) == "number") then
		return { a[1] }                 -- {"t", qos}
	end
	local out = {}
	for _, e in ipairs(a) do
		if type(e) == "string" then out[#out + 1] = e
		elseif type(e) == "table" and type(e[1] or e.topic) == "string" then out[#out + 1] = e[1] or e.topic end
	end
	return out
end

local methods = {}

function methods.message_callback_add(self, sub, fn, ...)
	local tap = taps[self]
	if tap and type(fn) == "function" then
		local user = fn
		fn = function(client, userdata, msg)
			record(tap, msg)
			return user(client, userdata, msg)
		end
	end
	bypass = true
	self:message_callback_add(sub, fn, ...)   -- not a tail call: errors name the method
end

function methods.subscribe(self, ...)
	bypass = true
	local r = table.pack(self:subscribe(...))
	if r[1] == 0 then
		for _, f in ipairs(filters_of(...)) do taps[self].subs[f] = true end
	end
	return table.unpack(r, 1, r.n)
end

function methods.unsubscribe(self, ...)
	bypass = true
	local r = table.pack(self:unsubscribe(...))
	if r[1] == 0 then
		for _, f in ipairs(filters_of(...)) do taps[self].subs[f] = nil end
	end
	return table.unpack(r, 1, r.n)
end

-- reinitialise() clears the callbacks and subscriptions: so does the tap,
-- which then puts its dispatcher back.
function methods.reinitialise(self, ...)
	bypass = true
	local r = table.pack(self:reinitialise(...))
	local tap = taps[self]
	tap.on_message, tap.subs = nil, {}
	newindex(self, "on_message", tap.dispatch)
	return table.unpack(r, 1, r.n)
end

-- Starts keeping c's messages (idempotent). Returns its tap.
function M.watch(c)
	local tap = taps[c]
	if tap then return tap end
	M.install()
	tap = { buf = {}, subs = {}, dropped = 0 }
	bypass = true
	tap.on_message = c.on_message
	tap.dispatch = function(client, userdata, msg)
		record(tap, msg)
		local user = tap.on_message
		if user then return user(client, userdata, msg) end
	end
	newindex(c, "on_message", tap.dispatch)
	taps[c] = tap
	return tap
end

-- Patches mqlua.Client and the Client metatable once; clients made from
-- now on are watched.
function M.install()
	if index then return end
	local probe = mqlua.Client()   -- a generated id: no store file is touched
	local mt = getmetatable(probe)
	index, newindex = mt.__index, mt.__newindex
	mt.__index = function(self, k)
		if bypass then
			bypass = false
			return index(self, k)
		end
		local tap = taps[self]
		if tap then
			if k == "on_message" then return tap.on_message end
			local m = methods[k]
			if m then return m end
		end
		return index(self, k)
	end
	mt.__newindex = function(self, k, v)
		local tap = taps[self]
		if tap and k == "on_message" then
			newindex(self, k, v)        -- checks v, with the usual error
			tap.on_message = v
			newindex(self, k, tap.dispatch)
			return
		end
		return newindex(self, k, v)
	end
	local Client = mqlua.Client
	mqlua.Client = function(...)
		local c = Client(...)
		M.watch(c)
		return c
	end
end

-- True if subscription filter s receives every topic filter f matches.
local function covers(s, f)
	local sl, fl = {}, {}
	for p in (s .. "/"):gmatch("(.-)/") do sl[#sl + 1] = p end
	for p in (f .. "/"):gmatch("(.-)/") do fl[#fl + 1] = p end
	for i = 1, math.max(#sl, #fl) do
		local a, b = sl[i], fl[i]
		if a == "#" then return true end
		if a == nil or b == nil or b == "#" then return false end
		if a ~= "+" and (a ~= b or b == "+") then return false end
	end
	return true
end

-- Subscribes c to filter (qos 2) and waits for the SUBACK, unless a
-- subscription of c already covers it. Returns nil or why it failed.
local function ensure_subscribed(tap, c, filter, timeout)
	for s in pairs(tap.subs) do
		if covers(s, filter) then return nil end
	end
	local acked = false
	local before = c.on_subscribe
	c.on_subscribe = function(...)
		acked = true
		if before then return before(...) end
	end
	bypass = true
	local rc = c:subscribe(filter, 2)
	if rc == 0 then mqlua.wait_until(function() return acked end, timeout) end
	c.on_subscribe = before
	if rc ~= 0 then
		return "could not subscribe to " .. filter .. ": " .. mqlua.error_string(rc)
	elseif not acked then
		return "no SUBACK for " .. filter .. " within " .. timeout .. " s"
	end
	tap.subs[filter] = true
	return nil
end

-- What opts ask of a message, in words.
local function wanted(filter, opts)
	local s = "a message on " .. filter
	if opts.payload ~= nil then s = s .. " with payload " .. S.show(opts.payload, 200) end
	if opts.json ~= nil then s = s .. " with JSON " .. S.show(opts.json, 200) end
	if opts.match ~= nil then s = s .. " accepted by the match function" end
	return s
end

local function accepts(e, filter, opts)
	if not mqlua.topic_matches_sub(filter, e.topic) then return false end
	if opts.payload ~= nil and e.payload ~= opts.payload then return false end
	if opts.json ~= nil then
		local v = e.msg:json()
		if v == nil or S.diff(v, opts.json) ~= nil then return false end
	end
	if opts.match ~= nil and not opts.match(e.msg) then return false end
	return true
end

-- "got no message on F" / "got 2 other messages: a "x", b "y"".
local function arrived_on(tap, filter, other)
	local list = {}
	for _, e in ipairs(tap.buf) do
		if not e.taken and mqlua.topic_matches_sub(filter, e.topic) then
			list[#list + 1] = e.topic .. " " .. S.show(e.payload, 80)
		end
	end
	local n = #list
	if n == 0 then return "got no message on " .. filter end
	return string.format("got %d %smessage%s: %s%s%s", n, other and "other " or "", n == 1 and "" or "s",
		table.concat(list, ", ", 1, math.min(n, 10)), n > 10 and ", ..." or "",
		tap.dropped > 0 and string.format(" (and %d older ones were dropped)", tap.dropped) or "")
end

local function check_opts(opts, name)
	if opts == nil then return {} end
	if type(opts) ~= "table" then
		error(name .. ": opts must be a table, got " .. type(opts), 3)
	end
	if opts.payload ~= nil and type(opts.payload) ~= "string" then
		error(name .. ": opts.payload must be a string, got " .. type(opts.payload), 3)
	end
	if opts.match ~= nil and type(opts.match) ~= "function" then
		error(name .. ": opts.match must be a function, got " .. type(opts.match), 3)
	end
	return opts
end

-- expect(client, filter, opts): the first buffered or arriving message that
-- opts accept (it is taken: a later expect does not see it again), or nil
-- and the failure text.
function M.expect(c, filter, opts)
	if type(filter) ~= "string" then error("expect_message: filter must be a string, got " .. type(filter), 3) end
	opts = check_opts(opts, "expect_message")
	local timeout = opts.timeout or 5
	local tap = M.watch(c)
	local err = ensure_subscribed(tap, c, filter, timeout)
	if err then return nil, "expect_message: " .. err end
	local found
	local function scan()
		for _, e in ipairs(tap.buf) do
			if not e.taken and accepts(e, filter, opts) then
				found = e
				return true
			end
		end
		return false
	end
	if scan() or mqlua.wait_until(scan, timeout) then
		found.taken = true
		return found.msg
	end
	return nil, "expected " .. wanted(filter, opts) .. " within " .. timeout .. " s; " ..
		arrived_on(tap, filter, true)
end

-- none(client, filter, within): nil if no message on filter was buffered
-- (and not taken) or arrives within `within` seconds (default 1), else the
-- failure text.
function M.none(c, filter, within)
	if type(filter) ~= "string" then error("no_message: filter must be a string, got " .. type(filter), 3) end
	within = within or 1
	local tap = M.watch(c)
	local err = ensure_subscribed(tap, c, filter, 5)
	if err then return "no_message: " .. err end
	local function any()
		for _, e in ipairs(tap.buf) do
			if not e.taken and mqlua.topic_matches_sub(filter, e.topic) then return true end
		end
		return false
	end
	if not any() then mqlua.wait_until(any, within) end
	if not any() then return nil end
	return "expected no message on " .. filter .. " within " .. within .. " s; " .. arrived_on(tap, filter, false)
end

return M
