--[[
mqlua.helper_client - the part mqlua.publish and mqlua.subscribe share: their
argument forms (paho's positional arguments or one table of named ones), the
short-lived Client they connect with, and running it until the job is done.

Not meant for scripts; require "mqlua.publish" or "mqlua.subscribe" instead.

The helper's Client keeps its queue in memory (Client{store = false}): a
helper is over when it returns, every QoS>0 message it published has been
acknowledged by then, and nothing of it stays in the script's store (neither
queue rows nor retained messages it saw), whatever client_id it was given.
]]

local mqtt = require "mqlua"

local H = {}

-- H.args(fname, names, ...) -> the arguments as a list in the order of names.
-- One plain table with a string key among names is the named form; any
-- other key in it raises. Otherwise the arguments are positional.
function H.args(fname, names, ...)
	local first = ...
	if select("#", ...) ~= 1 or type(first) ~= "table" or getmetatable(first) ~= nil then
		return table.pack(...)
	end
	local known, named = {}, false
	for _, n in ipairs(names) do
		known[n] = true
		named = named or first[n] ~= nil
	end
	if not named then return table.pack(...) end
	for k in pairs(first) do
		if not known[k] then
			error(string.format("bad argument #1 to '%s' (unknown argument '%s')", fname, tostring(k)), 0)
		end
	end
	local out = { n = #names }
	for i, n in ipairs(names) do out[i] = first[n] end
	return out
end

-- H.names(first, conn) -> the list first..., conn... (a helper's parameter names).
function H.names(first, conn)
	local out = { table.unpack(first) }
	for _, n in ipairs(conn) do out[#out + 1] = n end
	return out
end

-- H.options(a, i, conn) -> {conn[1] = a[i], conn[2] = a[i + 1], ...}
function H.options(a, i, conn)
	local o = {}
	for k, n in ipairs(conn) do o[n] = a[i + k - 1] end
	return o
end

-- The number of a reason code: MQTT v5 callbacks get ReasonCode values
-- (which never compare equal to a number), MQTT 3 ones plain numbers.
function H.code(rc)
	if type(rc) == "number" then return rc end
	return rc.value
end

-- Raises paho's ValueError equivalent: an error naming the argument.
function H.argerror(fname, name, msg)
	error(string.format("bad argument '%s' to '%s' (%s)", name, fname, msg), 0)
end

-- Checks that v is nil or a table; returns it.
local function opt_table(fname, name, v)
	if v ~= nil and type(v) ~= "table" then
		H.argerror(fname, name, "table expected, got " .. type(v))
	end
	return v
end

-- Checks that the table t has only the keys in list `keys`.
local function only_keys(fname, name, t, keys)
	local ok = {}
	for _, k in ipairs(keys) do ok[k] = true end
	for k in pairs(t) do
		if not ok[k] then H.argerror(fname, name, "unknown key '" .. tostring(k) .. "'") end
	end
end

-- H.client(fname, o) -> a Client configured from o: client_id, clean_session,
-- userdata, protocol, transport, will, auth, tls, proxy_args (paho's meanings).
function H.client(fname, o)
	local will = opt_table(fname, "will", o.will)
	local auth = opt_table(fname, "auth", o.auth)
	local tls = opt_table(fname, "tls", o.tls)
	local proxy = opt_table(fname, "proxy_args", o.proxy_args)
	if o.protocol == mqtt.MQTTv5 and o.clean_session ~= nil then
		H.argerror(fname, "clean_session", "clean_session is not used for MQTT 5.0 (leave it out)")
	end
	local id = o.client_id
	if id == nil or id == "" then
		if o.clean_session == false then
			H.argerror(fname, "client_id", "a client_id must be provided if clean_session is false")
		end
		-- made here rather than by Client(""), which would warn that a generated
		-- id keeps its queue in memory: for a helper that is the plan
		-- (0-9a-zA-Z only, at most 23 bytes: what every server must accept)
		id = string.format("mqlua%s%08x", fname, math.random(0, 0x7fffffff))
	end
	local c = mqtt.Client{ client_id = id, clean_session = o.clean_session,
		userdata = o.userdata, protocol = o.protocol or mqtt.MQTTv311, transport = o.transport or "tcp",
		store = false }
	if will then
		only_keys(fname, "will", will, { "topic", "payload", "qos", "retain", "properties" })
		if will.topic == nil then H.argerror(fname, "will", "will needs a topic") end
		c:will_set(will.topic, will.payload, will.qos or 0, will.retain or false, will.properties)
	end
	if auth then
		only_keys(fname, "auth", auth, { "username", "password" })
		if auth.username == nil then H.argerror(fname, "auth", "auth needs a username") end
		c:username_pw_set(auth.username, auth.password)
	end
	if tls then
		only_keys(fname, "tls", tls, { "ca_certs", "certfile", "keyfile", "cert_reqs", "tls_version",
			"ciphers", "keyfile_password", "insecure" })
		c:tls_set(tls.ca_certs, tls.certfile, tls.keyfile, tls.cert_reqs, tls.tls_version, tls.ciphers,
			tls.keyfile_password)
		if tls.insecure then c:tls_insecure_set(true) end
	end
	if proxy then
		if not c.proxy_set then
			H.argerror(fname, "proxy_args", "this mqlua has no proxy support (Client:proxy_set)")
		end
		c:proxy_set(proxy)
	end
	return c
end

-- H.run(fname, c, o, on_connected): connects c to o.hostname/o.port with
-- o.keepalive, calls on_connected(c, fail) after the first accepted CONNACK,
-- and runs the loop until c disconnects (which on_connected's work must do
-- in the end). fail(message) disconnects and makes H.run raise message; so
-- do an error in on_connected, a refused CONNACK and a failed connection
-- (these three with the reason in words). No hostname: the default broker
-- (--broker, mqlua.broker.start) if there is one, else "localhost" as paho.
function H.run(fname, c, o, on_connected)
	local failure, started = nil, false
	local function fail(why)
		failure = failure or why
		c:disconnect()
	end
	local function where()
		return string.format("%s: %s:%s", fname, tostring(c.host), tostring(c.port))
	end
	c.on_connect = function(_, _, _, rc)
		if H.code(rc) ~= 0 then
			return fail(where() .. " refused the connection: " .. (c:last_error() or tostring(rc)))
		end
		if not started then
			started = true
			local ok, err = pcall(on_connected, c, fail)
			if not ok then fail(err) end
		end
	end
	c.on_connect_fail = function()
		fail(where() .. ": cannot connect: " .. tostring(c:last_error()))
	end
	local keepalive = o.keepalive or 60
	local ok, rc, words = pcall(c.connect, c, o.hostname, o.port, keepalive)
	if not ok and o.hostname == nil and tostring(rc):find("host is required", 1, true) then
		ok, rc, words = pcall(c.connect, c, "localhost", o.port, keepalive)
	end
	if not ok then error(rc, 0) end
	if rc ~= mqtt.MQTT_ERR_SUCCESS then
		error(where() .. ": cannot connect: " .. tostring(words), 0)
	end
	c:loop_forever()
	if failure then error(failure, 0) end
end

-- H.public(impl) -> a function calling impl(...) that raises impl's errors
-- at the position of its own caller (impl raises with level 0).
function H.public(impl)
	return function(...)
		local r = table.pack(pcall(impl, ...))
		if not r[1] then error(r[2], 2) end
		return table.unpack(r, 2, r.n)
	end
end

return H
