-- transport_unix.lua - transport = "unix" (paho 2.x): connect(path) to a
-- mosquitto listening on a Unix socket (`listener 0 PATH`); libmosquitto
-- connects there itself when given port 0.
local mqtt = require "mqlua"
local test = T.test
local collector, payloads = T.collector, T.payloads

local dir = T.tmpdir()
os.execute("chmod 777 '" .. dir .. "'")   -- mosquitto drops root and creates the socket as its own user
local sock = dir .. "/mqtt.sock"
local broker = T.broker{ config = "listener 0 " .. sock }

test("connect(path) over a Unix socket: subscribe, publish at QoS 0-2, seen over TCP too", function(t)
	local c = mqtt.Client{ client_id = "unix-1", transport = "unix" }
	t:eq(c.transport, "unix", "client.transport")
	t:eq(c:connect(sock), 0, "connect rc: " .. tostring(c:last_error()))
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	t:eq(tostring(c), 'mqlua.Client("unix-1", unix:' .. sock .. ', connected)', "tostring")
	local w = T.connected(t, "unix-watch", true, broker)
	local seen = collector(w)
	T.subscribed(t, w, "ux/#", 2)
	local got = collector(c)
	T.subscribed(t, c, "ux/#", 2)
	for q = 0, 2 do c:publish("ux/" .. q, "unix " .. q, q) end
	t:ok(T.wait_until(function() return #got == 3 and #seen == 3 end), "3 back over the socket, 3 over TCP")
	table.sort(seen, function(a, b) return a.topic < b.topic end)
	t:eq(payloads(seen), { "unix 0", "unix 1", "unix 2" }, "payloads on the TCP side")
	c:disconnect()
	w:disconnect()
end)

test("positional form, and a socket that does not exist", function(t)
	local c = mqtt.Client("unix-2", nil, nil, mqtt.MQTTv5, "unix")
	local rc, err = c:connect(dir .. "/missing.sock")
	t:eq(rc, mqtt.MQTT_ERR_ERRNO, "rc")
	t:eq(err, "No such file or directory", "error")
	t:eq(c:connect(sock, 1883, 30), 0, "the port is ignored")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected with MQTT v5")
	c:disconnect()
end)
