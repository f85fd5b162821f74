--[[
mqlua.rules - small wrappers that turn message handlers into rules.

    local rules = require "mqlua.rules"
    c:message_callback_add("sensors/+/motion", rules.debounce(2, handler))

Each wrapper takes a handler with paho's signature (client, userdata, msg)
and returns one with the same signature. State is kept per topic, so one
wrapped handler can serve a wildcard filter.

  debounce(s, fn)   fn runs with the last message of a burst, once no message
                    arrived on that topic for s seconds
  throttle(s, fn)   fn runs at most once per s seconds per topic; messages in
                    between are dropped
  changed(fn[, name])
                    fn runs only when the payload differs from the previous
                    one on that topic (the first message counts as a change).
                    The last payload per topic is kept in the store
                    (mqlua.state("mqlua.rules.changed <name>")), written in
                    the same transaction as what fn publishes, so a restarted
                    script is not called again for a retained payload that
                    did not change. name defaults to "<script>#<n>" for the
                    n-th changed() of the script; give one that stays put if
                    the script's path or its rules' order may change.
  held(s, cond, fn) fn runs once cond(msg) has been true for s seconds on a
                    topic without a message that made it false ("motion has
                    been off for 5 minutes"); fn gets the message that started
                    the run
]]

local mqtt = require "mqlua"

local rules = {}

local function check(s, fn, name)
	if type(s) ~= "number" or s < 0 then
		error(name .. ": seconds must be a number >= 0, got " .. tostring(s), 3)
	end
	if type(fn) ~= "function" then
		error(name .. ": handler must be a function, got " .. type(fn), 3)
	end
end

function rules.debounce(s, fn)
	check(s, fn, "debounce")
	local pending = {}   -- topic -> timer
	return function(client, userdata, msg)
		local topic = msg.topic
		if pending[topic] then pending[topic]:cancel() end
		pending[topic] = mqtt.after(s, function()
			pending[topic] = nil
			fn(client, userdata, msg)
		end)
	end
end

function rules.throttle(s, fn)
	check(s, fn, "throttle")
	local last = {}      -- topic -> time of the last run
	return function(client, userdata, msg)
		local now = mqtt.time()
		local t = last[msg.topic]
		if t and now - t < s then return end
		last[msg.topic] = now
		return fn(client, userdata, msg)
	end
end

local changed_rules = 0   -- changed() calls so far, for default names

function rules.changed(fn, name)
	check(0, fn, "changed")
	if name ~= nil and (type(name) ~= "string" or name == "") then
		error("changed: name must be a non-empty string, got " .. tostring(name), 2)
	end
	changed_rules = changed_rules + 1
	name = name or string.format("%s#%d", arg and arg[0] or "", changed_rules)
	local memory = mqtt.state("mqlua.rules.changed " .. name)   -- topic -> last payload
	local previous = {}  -- topic -> payload: what memory holds, read once per topic
	return function(client, userdata, msg)
		local topic, payload = msg.topic, msg.payload
		local last = previous[topic]
		if last == nil then last = memory[topic] end
		previous[topic] = payload
		if last == payload then return end
		memory[topic] = payload
		return fn(client, userdata, msg)
	end
end

function rules.held(s, cond, fn)
	check(s, fn, "held")
	if type(cond) ~= "function" then
		error("held: condition must be a function, got " .. type(cond), 2)
	end
	local timers = {}    -- topic -> timer of the current run
	return function(client, userdata, msg)
		local topic = msg.topic
		if cond(msg) then
			if not timers[topic] then
				timers[topic] = mqtt.after(s, function()
					fn(client, userdata, msg)
				end)
			end
		elseif timers[topic] then
			timers[topic]:cancel()
			timers[topic] = nil
		end
	end
end

return rules
