-- tls_connect.lua - client:tls_set / tls_insecure_set against a real
-- mosquitto with TLS listeners: verification on by default, hostname checks,
-- client certificates (also with an encrypted key), and the argument errors.
-- TLS failures happen in the handshake on the loop, so they are observed as
-- on_connect_fail and client:last_error() words.
local mqtt = require "mqlua"
local test = T.test

local certs = T.certs()
local function cert(name) return certs .. "/" .. name end

-- One broker: the plain listener, then three TLS listeners.
local good_port, wrong_port, mutual_port = mqtt.broker.free_port(), mqtt.broker.free_port(), mqtt.broker.free_port()
local function listener(port, server, require_cert)
	return table.concat({
		string.format("listener %d 127.0.0.1", port),
		"cafile " .. cert("ca.crt"),
		"certfile " .. cert(server .. ".crt"),
		"keyfile " .. cert(server .. ".key"),
		"require_certificate " .. tostring(require_cert),
		require_cert and "use_identity_as_username true" or "",
	}, "\n")
end
local broker = T.broker{ config = listener(good_port, "server", false) .. "\n" ..
	listener(wrong_port, "wrong-host", false) .. "\n" .. listener(mutual_port, "server", true) }

local seq = 0
-- A client whose callbacks record what happened; returns it and the record.
local function new_client(setup)
	seq = seq + 1
	local c = mqtt.Client("tls-test-" .. seq)
	local ev = { connects = {}, fails = 0, disconnects = 0 }
	c.on_connect = function(_, _, _, rc) ev.connects[#ev.connects + 1] = rc end
	c.on_connect_fail = function() ev.fails = ev.fails + 1 end
	c.on_disconnect = function() ev.disconnects = ev.disconnects + 1 end
	if setup then setup(c) end
	return c, ev
end

-- Connects and waits until the attempt is decided; returns connect()'s rc.
local function attempt(t, c, ev, host, port)
	local rc, words = c:connect(host, port)
	if rc ~= mqtt.MQTT_ERR_SUCCESS then return rc, words end
	t:ok(T.wait_until(function() return #ev.connects > 0 or ev.fails > 0 end, 5),
		"the TLS attempt ended within 5 s (no on_connect, no on_connect_fail)")
	return rc
end

local function expect_connected(t, c, ev, host, port)
	t:eq(attempt(t, c, ev, host, port), mqtt.MQTT_ERR_SUCCESS, "connect rc")
	t:eq(ev.fails, 0, "on_connect_fail calls (last error: " .. tostring(c:last_error()) .. ")")
	t:eq(ev.connects, { 0 }, "on_connect rc")
	t:ok(c:is_connected(), "is_connected()")
end

-- The handshake fails either inside connect() (when the broker answers
-- fast enough: rc MQTT_ERR_TLS) or later on the loop (on_connect_fail).
local function expect_refused(t, c, ev, host, port, words, ...)
	local rc, rc_words = attempt(t, c, ev, host, port)
	if rc == mqtt.MQTT_ERR_SUCCESS then
		t:eq(ev.fails, 1, "on_connect_fail calls")
	else
		-- MQTT_ERR_ERRNO when the alert came while CONNECT was being written
		t:ok(rc == mqtt.MQTT_ERR_TLS or rc == mqtt.MQTT_ERR_ERRNO, "connect rc MQTT_ERR_TLS or _ERRNO, got " .. rc)
		t:eq(rc_words, c:last_error(), "connect() words and last_error()")
	end
	t:eq(ev.connects, {}, "on_connect must not be called")
	t:ok(not c:is_connected(), "not connected")
	t:match(c:last_error(), "^TLS error", "last_error()")
	local found = c:last_error():find(words)
	for _, other in ipairs({ ... }) do found = found or c:last_error():find(other) end
	t:ok(found, "last_error() " .. T.show(c:last_error()) .. " matches " .. T.show({ words, ... }))
end

-- Runs a script in a child mqlua; returns its stdout+stderr and exit code.
local function run_child(code, ...)
	local dir = T.tmpdir()
	local f = assert(io.open(dir .. "/child.lua", "w"))
	f:write(code)
	f:close()
	local args = {}
	for i, a in ipairs({ ... }) do args[i] = "'" .. tostring(a) .. "'" end
	return T.sh(T.mqlua() .. " " .. dir .. "/child.lua " .. table.concat(args, " ") .. " 2>&1")
end

test("a broker certificate from the given CA: connects and messages go round over TLS", function(t)
	local c, ev = new_client(function(c) c:tls_set(cert("ca.crt")) end)
	local got
	c.on_message = function(_, _, msg) got = msg end
	expect_connected(t, c, ev, "localhost", good_port)
	local subscribed
	c.on_subscribe = function() subscribed = true end
	t:eq(c:subscribe("tls/echo", 1), mqtt.MQTT_ERR_SUCCESS, "subscribe rc")
	t:ok(T.wait_until(function() return subscribed end), "SUBACK received")
	t:eq(c:publish("tls/echo", "over TLS", 1).rc, mqtt.MQTT_ERR_SUCCESS, "publish rc")
	t:ok(T.wait_until(function() return got end), "message received back over TLS")
	t:eq({ got.topic, got.payload }, { "tls/echo", "over TLS" }, "message")
	-- the same broker, seen by a plain client: TLS really is a second listener
	local plain = mqtt.Client("tls-test-plain")
	t:eq(plain:connect(broker.host, broker.port), mqtt.MQTT_ERR_SUCCESS, "plain connect")
	t:ok(T.wait_until(function() return plain:is_connected() end), "plain client connected")
	plain:disconnect()
	c:disconnect()
	t:ok(T.wait_until(function() return ev.disconnects == 1 end), "on_disconnect after disconnect()")
end)

test("127.0.0.1 matches the certificate's IP SAN; tls_version tlsv1.3 works", function(t)
	local c, ev = new_client(function(c) c:tls_set(cert("ca.crt"), nil, nil, nil, "tlsv1.3") end)
	expect_connected(t, c, ev, "127.0.0.1", good_port)
	c:disconnect()
end)

test("a broker certificate from another CA: refused with certificate verification words", function(t)
	local c, ev = new_client(function(c) c:tls_set(cert("other-ca.crt")) end)
	expect_refused(t, c, ev, "localhost", good_port, "certificate verify failed")
	c:disconnect()
end)

test("connect_async with a failing handshake: on_connect_fail, then retries with backoff", function(t)
	local c, ev = new_client(function(c)
		c:tls_set(cert("other-ca.crt"))
		c:reconnect_delay_set(0.1, 0.2)
	end)
	local rc = c:connect_async("localhost", good_port)
	t:ok(rc == mqtt.MQTT_ERR_SUCCESS or rc == mqtt.MQTT_ERR_TLS, "connect_async rc 0 or MQTT_ERR_TLS, got " .. rc)
	t:ok(T.wait_until(function() return ev.fails >= 1 end, 5), "on_connect_fail called")
	t:match(c:last_error(), "^TLS error: .*certificate verify failed", "last_error()")
	-- the client is not stuck: it keeps trying (and failing) with backoff
	t:ok(T.wait_until(function() return ev.fails >= 3 end, 5), "retried after the failed handshake")
	t:eq(ev.connects, {}, "never connected")
	c:disconnect()
	local fails = ev.fails
	mqtt.sleep(0.5)
	t:eq(ev.fails, fails, "no more attempts after disconnect()")
end)

test("a certificate for another host name: refused", function(t)
	local c, ev = new_client(function(c) c:tls_set(cert("ca.crt")) end)
	expect_refused(t, c, ev, "localhost", wrong_port, "certificate verify failed")
	c:disconnect()
end)

test("tls_insecure_set(true) accepts the wrong host name and logs a WARN", function(t)
	local out, status = run_child([[
		local mqtt = require "mqlua"
		local c = mqtt.Client("tls-insecure")
		c:tls_set(arg[1])
		c:tls_insecure_set(true)
		c.on_connect = function(cl, _, _, rc)
			print("on_connect " .. rc)
			cl:disconnect()
		end
		c.on_connect_fail = function(cl) print("FAILED: " .. tostring(cl:last_error())); cl:disconnect() end
		c:connect("localhost", tonumber(arg[2]))
	]], cert("ca.crt"), wrong_port)
	t:eq(status, 0, "child exit status; output:\n" .. out)
	t:match(out, "on_connect 0", "child output")
	t:match(out, "WARN%s+client \"tls%-insecure\": TLS hostname verification is disabled", "child stderr")
end)

test("a broker requiring a client certificate refuses a client without one", function(t)
	local c, ev = new_client(function(c) c:tls_set(cert("ca.crt")) end)
	-- when the broker's alert comes while connect() writes CONNECT, OpenSSL
	-- only sees the socket closed: libmosquitto reports EPROTO and no words
	expect_refused(t, c, ev, "localhost", mutual_port, "certificate required", "^TLS error: Protocol error$")
	c:disconnect()
end)

test("client certificate and key: connects", function(t)
	local c, ev = new_client(function(c) c:tls_set(cert("ca.crt"), cert("client.crt"), cert("client.key")) end)
	expect_connected(t, c, ev, "localhost", mutual_port)
	c:disconnect()
end)

test("encrypted client key with keyfile_password: connects", function(t)
	local c, ev = new_client(function(c)
		c:tls_set{ ca_certs = cert("ca.crt"), certfile = cert("client.crt"), keyfile = cert("client-enc.key"),
			keyfile_password = "secret" }
	end)
	expect_connected(t, c, ev, "localhost", mutual_port)
	c:disconnect()
end)

test("encrypted client key with a wrong or no password: connect() returns MQTT_ERR_TLS", function(t)
	for _, password in ipairs({ "not-the-secret", false }) do
		local c = mqtt.Client("tls-bad-password")
		c:tls_set(cert("ca.crt"), cert("client.crt"), cert("client-enc.key"), nil, nil, nil, password or nil)
		local rc, words = c:connect("localhost", mutual_port)
		t:eq(rc, mqtt.MQTT_ERR_TLS, "connect rc with password " .. tostring(password))
		t:match(words, "TLS error", "connect words")
		t:ok(not c:is_connected(), "not connected")
		c:disconnect()
	end
end)

test("tls_version older than TLS 1.2 raises", function(t)
	local c = mqtt.Client("tls-old")
	t:raises(function() c:tls_set(cert("ca.crt"), nil, nil, nil, "tlsv1.1") end, "tls_version must be \"tlsv1.2\" or \"tlsv1.3\"")
	t:raises(function() c:tls_set(cert("ca.crt"), nil, nil, nil, "sslv3") end, "tls_version")
	c:tls_set(cert("ca.crt"), nil, nil, nil, "tlsv1.2")   -- nothing was configured by the failures
end)

test("an unreadable ca_certs raises naming ca_certs and the file", function(t)
	local c = mqtt.Client("tls-nofile")
	local missing = certs .. "/missing.crt"
	local msg = t:raises(function() c:tls_set(missing) end, "ca_certs")
	t:match(msg, "bad argument #1 to 'tls_set'", "error")
	t:ok(msg:find(missing, 1, true), "the message names the file: " .. msg)
	t:match(msg, "No such file", "error")
	t:raises(function() c:tls_set{ ca_certs = missing } end, "ca_certs '" .. missing:gsub("%p", "%%%0") .. "' cannot be read")
	t:raises(function() c:tls_set(cert("ca.crt"), certs .. "/missing-client.crt", cert("client.key")) end, "certfile")
	t:raises(function() c:tls_set(cert("ca.crt"), cert("client.crt"), certs .. "/missing.key") end, "keyfile")
	t:raises(function() c:tls_set(cert("ca.crt"), cert("client.crt")) end, "certfile and keyfile must be given together")
end)

test("tls_set twice raises; tls_insecure_set before tls_set raises", function(t)
	local c = mqtt.Client("tls-twice")
	t:raises(function() c:tls_insecure_set(true) end, "Must configure SSL context before using tls_insecure_set")
	c:tls_set(cert("ca.crt"))
	t:raises(function() c:tls_set(cert("ca.crt")) end, "SSL/TLS has already been configured")
	t:raises(function() c:tls_insecure_set("yes") end, "boolean expected")
end)
