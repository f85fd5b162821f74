--[[
mqlua.publish - paho's one-shot publishing helpers: connect, publish, wait
for the acknowledgements, disconnect.

    local publish = require "mqlua.publish"
    publish.single("lights/porch/set", "ON", 1, false, "broker.local")
    publish.multiple({ { topic = "a", payload = "1", qos = 1 }, { "b", "2", 2, true } }, "broker.local")
    publish.single{ topic = "a", payload = "x", hostname = "broker.local", port = 8883,
                    auth = { username = "u", password = "p" }, tls = { ca_certs = "ca.crt" } }

  single(topic, payload=nil, qos=0, retain=false, hostname, port=1883,
         client_id="", keepalive=60, will=nil, auth=nil, tls=nil,
         protocol=MQTTv311, transport="tcp", proxy_args=nil)
  multiple(msgs, hostname, port, client_id, keepalive, will, auth, tls,
           protocol, transport, proxy_args)

msgs is a list of {topic=, payload=, qos=, retain=} or {topic, payload, qos,
retain}. will = {topic=, payload=, qos=, retain=}, auth = {username=,
password=}, tls = {ca_certs=, certfile=, keyfile=, cert_reqs=, tls_version=,
ciphers=, keyfile_password=, insecure=}, proxy_args = Client:proxy_set's
arguments. No hostname: the default broker (--broker or mqlua.broker.start),
else "localhost". Both return nothing once every message was written (QoS 0)
or acknowledged (QoS 1 and 2); a refused or failed connection raises an error
saying why. The messages are queued in memory, not in the script's store: a
helper that returned has nothing left to send (see mqlua.helper_client).
]]

local mqtt = require "mqlua"
local H = require "mqlua.helper_client"

local M = {}

local CONN = { "hostname", "port", "client_id", "keepalive", "will", "auth", "tls", "protocol",
	"transport", "proxy_args" }

local SINGLE, MULTIPLE = H.names({ "topic", "payload", "qos", "retain" }, CONN), H.names({ "msgs" }, CONN)

-- Checks one message of msgs (named or positional form); returns
-- topic, payload, qos, retain.
local function check_msg(fname, i, m)
	local what = "msgs[" .. i .. "]"
	if type(m) ~= "table" then H.argerror(fname, what, "table expected, got " .. type(m)) end
	local topic, payload, qos, retain
	if m.topic ~= nil then
		topic, payload, qos, retain = m.topic, m.payload, m.qos, m.retain
	else
		topic, payload, qos, retain = m[1], m[2], m[3], m[4]
	end
	if type(topic) ~= "string" then H.argerror(fname, what, "topic must be a string, got " .. type(topic)) end
	local valid, why = mqtt.validate_topic(topic)
	if not valid then H.argerror(fname, what, "topic " .. why) end
	qos = qos or 0
	if qos ~= 0 and qos ~= 1 and qos ~= 2 then H.argerror(fname, what, "qos must be 0, 1 or 2") end
	return topic, payload, qos, retain or false
end

local function publish_all(fname, msgs, o)
	if type(msgs) ~= "table" then H.argerror(fname, "msgs", "a list of messages expected, got " .. type(msgs)) end
	if #msgs == 0 then H.argerror(fname, "msgs", "no message to publish") end
	local list = {}
	for i, m in ipairs(msgs) do list[i] = table.pack(check_msg(fname, i, m)) end
	local c = H.client(fname, o)
	H.run(fname, c, o, function(client, fail)
		local infos = {}
		local function check_done()
			for _, info in ipairs(infos) do
				if not info:is_published() then return end
			end
			client:disconnect()
		end
		client.on_publish = check_done
		for i, m in ipairs(list) do
			local info = client:publish(table.unpack(m, 1, 4))
			if info.rc ~= mqtt.MQTT_ERR_SUCCESS then
				return fail(string.format("%s: publishing msgs[%d] failed: %s", fname, i, mqtt.error_string(info.rc)))
			end
			infos[i] = info
		end
		check_done()
	end)
end

M.single = H.public(function(...)
	local a = H.args("single", SINGLE, ...)
	local topic = a[1]
	if type(topic) ~= "string" then H.argerror("single", "topic", "string expected, got " .. type(topic)) end
	local valid, why = mqtt.validate_topic(topic)
	if not valid then H.argerror("single", "topic", "topic " .. why) end
	if a[3] ~= nil and a[3] ~= 0 and a[3] ~= 1 and a[3] ~= 2 then H.argerror("single", "qos", "qos must be 0, 1 or 2") end
	publish_all("single", { { topic, a[2], a[3], a[4] } }, H.options(a, 5, CONN))
end)

M.multiple = H.public(function(...)
	local a = H.args("multiple", MULTIPLE, ...)
	publish_all("multiple", a[1], H.options(a, 2, CONN))
end)

return M
