-- mqlua/repl.lua - the Lua side of the interactive prompt (runtime/repl.c):
-- how values are shown (show, escape) and the helpers for interactive use
-- (help, connect, sub, pub, unsub, clients), which install() puts in _G.
local mqtt = require "mqlua"

local M = {}

local MAX_DEPTH = 3
local MAX_PAYLOAD = 200

local function valid_utf8_at(s, i)
	local b = s:byte(i)
	local n = b >= 0xC2 and b <= 0xDF and 2 or b >= 0xE0 and b <= 0xEF and 3 or b >= 0xF0 and b <= 0xF4 and 4 or nil
	if not n or i + n - 1 > #s then return nil end
	local seq = s:sub(i, i + n - 1)
	if not seq:find("^.[\x80-\xBF]+$") or not utf8.len(seq) then return nil end
	return n
end

-- escape(s[, limit]) -> s with control bytes and invalid UTF-8 as \xNN
-- (backslash doubled), cut at limit characters with "..." appended.
function M.escape(s, limit)
	limit = limit or math.huge
	local out, i, shown = {}, 1, 0
	while i <= #s do
		if shown >= limit then
			out[#out + 1] = "..."
			break
		end
		local b = s:byte(i)
		if b == 0x5C then
			out[#out + 1] = "\\\\"
			i = i + 1
		elseif b >= 0x20 and b < 0x7F then
			out[#out + 1] = string.char(b)
			i = i + 1
		else
			local n = b >= 0x80 and valid_utf8_at(s, i)
			if n then
				out[#out + 1] = s:sub(i, i + n - 1)
				i = i + n
			else
				out[#out + 1] = string.format("\\x%02X", b)
				i = i + 1
			end
		end
		shown = shown + 1
	end
	return table.concat(out)
end

local function quote(s)
	return '"' .. M.escape(s):gsub('"', '\\"') .. '"'
end

local function key_order(a, b)
	local ta, tb = type(a), type(b)
	if ta ~= tb then return ta < tb end
	if ta == "number" or ta == "string" then return a < b end
	return tostring(a) < tostring(b)
end

local format

local function format_table(t, depth, seen)
	if seen[t] then return "<cycle: " .. tostring(t) .. ">" end
	if depth > MAX_DEPTH then return "{...}" end
	seen[t] = true
	local parts, n = {}, #t
	for i = 1, n do
		parts[#parts + 1] = format(rawget(t, i), depth + 1, seen)
	end
	local keys = {}
	for k in next, t do
		if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
	end
	table.sort(keys, key_order)
	for _, k in ipairs(keys) do
		local ks
		if type(k) == "string" and k:find("^[%a_][%w_]*$") then
			ks = k
		else
			ks = "[" .. format(k, depth + 1, seen) .. "]"
		end
		parts[#parts + 1] = ks .. " = " .. format(rawget(t, k), depth + 1, seen)
	end
	seen[t] = nil
	if #parts == 0 then return "{}" end
	return "{" .. table.concat(parts, ", ") .. "}"
end

format = function(v, depth, seen)
	local tv = type(v)
	if tv == "string" then return quote(v) end
	if tv == "table" and not (getmetatable(v) and getmetatable(v).__tostring) then
		return format_table(v, depth, seen)
	end
	return tostring(v)
end

-- show(...): prints the values the way the prompt shows an expression:
-- tab-separated, strings as they are, tables nested and quoted inside.
function M.show(...)
	local n = select("#", ...)
	local parts = {}
	for i = 1, n do
		local v = select(i, ...)
		if type(v) == "string" then
			parts[i] = v
		else
			parts[i] = format(v, 1, {})
		end
	end
	print(table.concat(parts, "\t"))
end

-- ---- helpers ----

local made = setmetatable({}, { __mode = "k" })   -- client -> url it was connected to
local default

local function parse_url(url)
	local scheme, rest = url:match("^(mqtts?)://(.*)$")
	if not scheme then return nil, "not an mqtt:// or mqtts:// URL: " .. url end
	local cred, hostport = rest:match("^(.*)@(.-)$")
	hostport = hostport or rest
	local user, pass
	if cred then
		user, pass = cred:match("^([^:]*):(.*)$")
		user = user or cred
	end
	local host, port = hostport:match("^%[(.-)%]:?(%d*)/?$")
	if not host then host, port = hostport:match("^([^:/]*):?(%d*)/?$") end
	if not host or host == "" then return nil, "no host in " .. url end
	port = tonumber(port) or (scheme == "mqtts" and 8883 or 1883)
	return { host = host, port = port, user = user, pass = pass, tls = scheme == "mqtts" }
end

-- connect([url]) -> client | nil, message
function M.connect(url)
	local u
	if url then
		local err
		u, err = parse_url(url)
		if not u then return nil, err end
	end
	local c = mqtt.Client(string.format("mqlua-repl-%d-%d", os.time(), math.random(0, 999999)))
	c.on_message = function(_, _, msg)
		print(msg.topic .. " " .. msg.qos .. " " .. M.escape(msg.payload, MAX_PAYLOAD))
	end
	local ok, rc, why
	if u then
		if u.user then c:username_pw_set(u.user, u.pass) end
		if u.tls then c:tls_set() end
		ok, rc, why = pcall(c.connect, c, u.host, u.port)
	else
		ok, rc, why = pcall(c.connect, c)
	end
	if not ok then return nil, (tostring(rc):gsub("^.-:%d+: ", "")) end
	if rc ~= 0 then return nil, "connect failed: " .. tostring(why or rc) end
	local ok = mqtt.wait_until(function() return c:is_connected() or c:last_error() ~= nil end, 10)
	if not ok or not c:is_connected() then
		c:disconnect()
		return nil, "no CONNACK: " .. tostring(c:last_error() or "timeout")
	end
	made[c] = u and (u.host .. ":" .. u.port) or "default broker"
	default = default or c
	return c
end

local function client()
	if default and default:is_connected() then return default end
	default = nil
	return M.connect()
end

-- sub(filter[, qos]): subscribes the default client; arrivals print as
-- `topic qos payload`. Returns nothing, or nil and the reason.
function M.sub(filter, qos)
	local c, err = client()
	if not c then return nil, err end
	local rc = c:subscribe(filter, qos or 0)
	if rc ~= 0 then return nil, "subscribe failed: " .. mqtt.error_string(rc), rc end
end

function M.unsub(filter)
	local c, err = client()
	if not c then return nil, err end
	local rc = c:unsubscribe(filter)
	if rc ~= 0 then return nil, "unsubscribe failed: " .. mqtt.error_string(rc), rc end
end

function M.pub(topic, payload, qos, retain)
	local c, err = client()
	if not c then return nil, err end
	return c:publish(topic, payload, qos or 0, retain or false)
end

-- clients(): lists the clients connect() made, with their state.
function M.clients()
	for c, where in pairs(made) do
		print(string.format("%s\t%s\t%s%s", c.client_id, where,
			c:is_connected() and "connected" or "not connected", c == default and "\t(default)" or ""))
	end
end

M.help_text = [==[
Lua with the mqlua library (mqtt = require "mqlua"). The event loop keeps running
while you type. Helpers:
  connect([url])          a connected client (default: --broker; url mqtt://host:port)
  sub(filter[, qos])      subscribe; messages print as `topic qos payload`
  unsub(filter)           unsubscribe
  pub(topic, payload[, qos[, retain]])   publish
  clients()               the clients connect() made, with their state
  help()                  this text
sub/pub/unsub use the first client connect() made (connecting one if needed).
Tab completes globals, fields and methods. Ctrl-C stops a running statement;
Ctrl-D or os.exit() disconnects every client cleanly and exits.]==]

function M.help()
	print(M.help_text)
end

-- install(env): puts the helpers (and `mqtt`) into env.
function M.install(env)
	for _, name in ipairs { "help", "connect", "sub", "unsub", "pub", "clients" } do
		env[name] = M[name]
	end
	env.mqtt = env.mqtt or mqtt
end

return M
