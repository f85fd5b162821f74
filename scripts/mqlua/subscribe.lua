--[[
mqlua.subscribe - paho's subscribing helpers: connect, subscribe, hand the
messages over, disconnect.

    local subscribe = require "mqlua.subscribe"
    local msg = subscribe.simple("sensors/porch/temp", 1, 1, true, "broker.local")
    local msgs = subscribe.simple{ topics = { "a/#", "b" }, msg_count = 3, retained = false }
    subscribe.callback(function(client, userdata, msg)
      print(msg.topic, msg.payload)
      if msg.payload == "stop" then client:disconnect() end
    end, "commands/#", 1, nil, "broker.local")

  simple(topics, qos=0, msg_count=1, retained=true, hostname, port=1883,
         client_id="", keepalive=60, will=nil, auth=nil, tls=nil,
         protocol=MQTTv311, transport="tcp", clean_session=true, proxy_args=nil)
  callback(callback, topics, qos=0, userdata=nil, hostname, port, client_id,
           keepalive, will, auth, tls, protocol, transport, clean_session,
           proxy_args)

topics is one filter or a list of filters, each subscribed with qos.
simple() returns the first message when msg_count is 1, else a list of
msg_count messages; with retained = false it skips the retained messages the
broker sends on subscription. callback() calls callback(client, userdata,
msg) for every message until the callback calls client:disconnect(); an
error in it is logged and the next message still comes (as for any mqlua
callback). will, auth, tls, proxy_args and the default host are those of
mqlua.publish. A refused or failed connection or subscription raises an
error saying why.
]]

local mqtt = require "mqlua"
local H = require "mqlua.helper_client"

local M = {}

local CONN = { "hostname", "port", "client_id", "keepalive", "will", "auth", "tls", "protocol",
	"transport", "clean_session", "proxy_args" }

local CALLBACK = H.names({ "callback", "topics", "qos", "userdata" }, CONN)
local SIMPLE = H.names({ "topics", "qos", "msg_count", "retained" }, CONN)

-- Checks topics (a filter or a non-empty list of filters) and qos; returns
-- the list of filters and the qos.
local function check_topics(fname, topics, qos)
	if type(topics) == "string" then topics = { topics } end
	if type(topics) ~= "table" or #topics == 0 then
		H.argerror(fname, "topics", "a topic filter or a list of them expected")
	end
	for i, f in ipairs(topics) do
		if type(f) ~= "string" then
			H.argerror(fname, "topics", "topics[" .. i .. "] must be a string, got " .. type(f))
		end
		local valid, why = mqtt.validate_filter(f)
		if not valid then H.argerror(fname, "topics", "topics[" .. i .. "] " .. why) end
	end
	qos = qos or 0
	if qos ~= 0 and qos ~= 1 and qos ~= 2 then H.argerror(fname, "qos", "qos must be in the range 0-2") end
	return topics, qos
end

-- Connects with the options o, subscribes to every filter at qos, and runs
-- on_message(client, msg) for each message until the client disconnects.
local function run(fname, topics, qos, o, on_message)
	local c = H.client(fname, o)
	c.on_message = on_message
	H.run(fname, c, o, function(client, fail)
		local filter_of = {}
		client.on_subscribe = function(_, _, mid, granted)
			for _, g in ipairs(granted) do
				if H.code(g) >= 0x80 then
					return fail(string.format("%s: the broker refused the subscription to %s (reason %d)",
						fname, tostring(filter_of[mid]), H.code(g)))
				end
			end
		end
		for _, f in ipairs(topics) do
			local rc, mid = client:subscribe(f, qos)
			if rc ~= 0 then return fail(fname .. ": subscribe to " .. f .. " failed: rc " .. rc) end
			filter_of[mid] = f
		end
	end)
end

M.callback = H.public(function(...)
	local a = H.args("callback", CALLBACK, ...)
	local fn = a[1]
	if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
		H.argerror("callback", "callback", "function expected, got " .. type(fn))
	end
	local topics, qos = check_topics("callback", a[2], a[3])
	local o = H.options(a, 5, CONN)
	o.userdata = a[4]
	run("callback", topics, qos, o, function(client, userdata, msg) fn(client, userdata, msg) end)
end)

M.simple = H.public(function(...)
	local a = H.args("simple", SIMPLE, ...)
	local topics, qos = check_topics("simple", a[1], a[2])
	local count = a[3] or 1
	count = type(count) == "number" and math.tointeger(count)
	if not count or count < 1 then
		H.argerror("simple", "msg_count", "msg_count must be > 0")
	end
	local retained = a[4] ~= false
	local got = {}
	run("simple", topics, qos, H.options(a, 5, CONN), function(client, _, msg)
		if #got >= count or (msg.retain and not retained) then return end
		got[#got + 1] = msg
		if #got == count then client:disconnect() end
	end)
	if count == 1 then return got[1] end
	return got
end)

return M
