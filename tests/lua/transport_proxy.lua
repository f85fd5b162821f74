-- transport_proxy.lua - proxy_set() through a real SOCKS5 proxy on loopback
-- (microsocks), with and without a user name and password, to a private
-- mosquitto: the traffic goes through the proxy (it logs the connection,
-- and with the proxy stopped the broker is out of reach), failures say
-- which proxy, and the proxy password shows up nowhere.
local spawn = T.spawn
local mqtt = require "mqlua"
local test = T.test
local collector, payloads = T.collector, T.payloads

local broker = T.broker()
local open_port, auth_port = spawn.free_port(), spawn.free_port()
local open_proxy = spawn.start("microsocks -i 127.0.0.1 -p " .. open_port)
local auth_proxy = spawn.start("microsocks -i 127.0.0.1 -p " .. auth_port .. " -u alice -P pr0xy-s3cret")
-- microsocks prints nothing when it is up: wait until it accepts connections
local function listening(port)
	return T.wait_until(function()
		local _, code = T.sh("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" .. port .. "' 2>/dev/null")
		return code == 0
	end)
end
assert(listening(open_port) and listening(auth_port), "microsocks did not start")

local function through(t, c, host, port)
	t:eq(c:connect(host or broker.host, port or broker.port), 0, "connect rc: " .. tostring(c:last_error()))
	t:ok(T.wait_until(function() return c:is_connected() end), "connected through the proxy: " .. tostring(c:last_error()))
end

test("proxy_set(SOCKS5, addr, port): publish and receive through the proxy", function(t)
	local c = mqtt.Client("px-open")
	t:eq(c:proxy_set(mqtt.SOCKS5, "127.0.0.1", open_port), nil, "proxy_set returns nothing")
	through(t, c)
	local got = collector(c)
	T.subscribed(t, c, "px1/#", 1)
	c:publish("px1/a", "via socks5", 1)
	t:ok(T.wait_until(function() return #got == 1 end), "message back")
	t:eq(payloads(got), { "via socks5" }, "payload")
	t:match(open_proxy:log(), "connected to 127%.0%.0%.1:" .. broker.port, "the proxy logged the connection to the broker")
	c:disconnect()
end)

test("keyword form with a user name and password; the password is not in tostring or the logs", function(t)
	local c = mqtt.Client("px-auth")
	local lines = {}
	c.on_log = function(_, _, _, text) lines[#lines + 1] = text end
	c:proxy_set{ proxy_type = mqtt.SOCKS5, proxy_addr = "127.0.0.1", proxy_port = auth_port,
		proxy_username = "alice", proxy_password = "pr0xy-s3cret" }
	through(t, c, "localhost")
	t:match(auth_proxy:log(), "connected to localhost:" .. broker.port, "the proxy resolved the broker's name")
	t:ok(not tostring(c):find("s3cret", 1, true), "not in tostring: " .. tostring(c))
	t:ok(#lines > 0, "libmosquitto logged something")
	t:ok(not table.concat(lines, "\n"):find("s3cret", 1, true), "not in libmosquitto's log lines")
	c:disconnect()

	-- the same through the command line with -v: the debug log has no password either
	local script = T.tmpdir() .. "/px.lua"
	local f = assert(io.open(script, "w"))
	f:write(string.format([[
local mqtt = require "mqlua"
local c = mqtt.Client("px-cli")
c:proxy_set(mqtt.SOCKS5, "127.0.0.1", %d, true, "alice", "pr0xy-s3cret")
c.on_connect = function(client) print("connected"); client:disconnect() end
c:connect("%s", %d)
]], auth_port, broker.host, broker.port))
	f:close()
	local out, code = T.sh(T.mqlua() .. " -v '" .. script .. "' 2>&1")
	t:eq(code, 0, "exit code: " .. out)
	t:match(out, "connected", "connected")
	t:match(out, "SOCKS5 proxy 127%.0%.0%.1:" .. auth_port, "the debug log names the proxy")
	t:ok(not out:find("s3cret", 1, true), "no password in the -v output")
end)

test("a wrong proxy password: last_error says the proxy refused it", function(t)
	local c = mqtt.Client("px-badauth")
	c:proxy_set(mqtt.SOCKS5, "127.0.0.1", auth_port, true, "alice", "wrong")
	c:reconnect_delay_set(5, 5)
	c:connect(broker.host, broker.port)
	t:ok(T.wait_until(function() return c:last_error() ~= nil end), "a failure")
	t:eq(c:last_error(), "the SOCKS5 proxy 127.0.0.1:" .. auth_port .. " refused the user name or password", "last_error")
	t:ok(not c:is_connected(), "not connected")
	c:disconnect()
end)

test("a proxy that is down: connect fails with words naming the proxy", function(t)
	local port = spawn.free_port()
	local c = mqtt.Client("px-down")
	c:proxy_set(mqtt.SOCKS5, "127.0.0.1", port)
	local rc, err = c:connect(broker.host, broker.port)
	t:eq(rc, mqtt.MQTT_ERR_ERRNO, "rc")
	t:eq(err, "cannot reach the SOCKS5 proxy 127.0.0.1:" .. port .. ": Connection refused", "error")
	t:eq(c:last_error(), err, "last_error")
end)

test("the proxy cannot reach the broker: words for that", function(t)
	local c = mqtt.Client("px-target")
	c:proxy_set(mqtt.SOCKS5, "127.0.0.1", open_port)
	c:reconnect_delay_set(5, 5)
	local dead = spawn.free_port()
	c:connect("127.0.0.1", dead)
	t:ok(T.wait_until(function() return c:last_error() ~= nil end), "a failure")
	t:eq(c:last_error(), "the SOCKS5 proxy 127.0.0.1:" .. open_port .. " could not connect to 127.0.0.1:" .. dead, "last_error")
	c:disconnect()
end)

test("with the proxy stopped the broker is out of reach (the traffic went through it)", function(t)
	local port = spawn.free_port()
	local p = spawn.start("microsocks -i 127.0.0.1 -p " .. port)
	t:ok(listening(port), "proxy up")
	local c = mqtt.Client("px-stop")
	c:proxy_set(mqtt.SOCKS5, "127.0.0.1", port)
	c:reconnect_delay_set(0.2, 0.2)
	local disconnected = false
	c.on_disconnect = function() disconnected = true end
	through(t, c)
	p:stop()
	t:ok(T.wait_until(function() return disconnected end), "the connection ended with the proxy")
	-- the port may be taken again at once by another test's proxy: either way the attempt ends there
	t:ok(T.wait_until(function() return (c:last_error() or ""):find("SOCKS5 proxy 127.0.0.1:" .. port, 1, true) ~= nil end),
		"reconnecting fails at the proxy: " .. tostring(c:last_error()))
	t:ok(not c:is_connected(), "still disconnected while the broker is up")
	c:disconnect()
end)

test("proxy_set's programmer errors name the argument", function(t)
	local c = mqtt.Client("px-args")
	t:eq({ mqtt.SOCKS4, mqtt.SOCKS5, mqtt.HTTP }, { 1, 2, 3 }, "PySocks' numbers")
	t:raises(function() c:proxy_set(mqtt.HTTP, "127.0.0.1", 8080) end,
		"proxy_type mqtt%.HTTP is not supported: libmosquitto only speaks SOCKS5")
	t:raises(function() c:proxy_set(mqtt.SOCKS4, "127.0.0.1") end, "proxy_type mqtt%.SOCKS4 is not supported")
	t:raises(function() c:proxy_set{ proxy_type = mqtt.SOCKS5 } end, "proxy_type and proxy_addr are required")
	t:raises(function() c:proxy_set(mqtt.SOCKS5, "127.0.0.1", 70000) end, "proxy_port must be between 1 and 65535")
	t:raises(function() c:proxy_set(mqtt.SOCKS5, "127.0.0.1", 1080, false) end, "proxy_rdns = false is not supported")
	t:raises(function() c:proxy_set(mqtt.SOCKS5, "127.0.0.1", 1080, true, nil, "pw") end, "proxy_password needs a proxy_username")
	t:raises(function() mqtt.Client{ transport = "unix" }:proxy_set(mqtt.SOCKS5, "127.0.0.1") end,
		'transport "tcp" only, not "unix"')
end)

spawn.stop_all()
