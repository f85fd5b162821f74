-- client_paho_misc.lua - paho's smaller Client features against a real
-- broker: enable_logger/disable_logger and client.logger, paho 2.x's
-- attributes (connect_timeout, host, port, keepalive, will_topic,
-- will_payload, max_inflight_messages, max_queued_messages, password,
-- suppress_exceptions), connect_timeout ending an attempt that gets no
-- CONNACK, manual_ack_set/ack (what the ack means with libmosquitto), and
-- message_retry_set.
local mqtt = require "mqlua"
local test = T.test

local broker = T.broker()

test("enable_logger(fn) gets libmosquitto's lines with MQTT_LOG_* levels; disable_logger() stops them", function(t)
	local c = mqtt.Client("misc-logger")
	local lines = {}
	local function logger(level, msg) lines[#lines + 1] = { level = level, msg = msg } end
	c:enable_logger(logger)
	t:ok(rawequal(c.logger, logger), "client.logger is the function")
	t:eq(c:connect(broker.host, broker.port), 0, "connect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	T.subscribed(t, c, "misc/logger", 0)
	local seen = {}
	for _, l in ipairs(lines) do seen[l.msg] = l.level end
	t:eq(seen['client "misc-logger": Client misc-logger sending CONNECT'], mqtt.MQTT_LOG_DEBUG, "CONNECT line")
	t:eq(seen['client "misc-logger": Client misc-logger received CONNACK (0)'], mqtt.MQTT_LOG_DEBUG, "CONNACK line")
	t:ok(seen['client "misc-logger": Client misc-logger sending SUBSCRIBE (Mid: 1, Topic: misc/logger, QoS: 0, Options: 0x00)']
		or seen['client "misc-logger": Client misc-logger sending SUBSCRIBE (Mid: 2, Topic: misc/logger, QoS: 0, Options: 0x00)'],
		"SUBSCRIBE line (" .. T.show(seen) .. ")")
	c:disable_logger()
	t:eq(c.logger, nil, "client.logger after disable_logger()")
	local n = #lines
	c:publish("misc/logger", "x", 0)
	mqtt.sleep(0.2)
	t:eq(#lines, n, "no lines after disable_logger()")
	c.logger = logger                       -- paho 2.x: the attribute does the same
	c:publish("misc/logger", "y", 0)
	t:ok(T.wait_until(function() return #lines > n end), "lines again after client.logger = fn")
	c:disconnect()
	t:raises(function() c:enable_logger(42) end, "logger must be a function%(level, message%) or nil, got number")
end)

test("enable_logger() without a logger writes to mqlua's log at the matching level", function(t)
	local out = T.sh(T.mqlua() .. [[ -e 'local m = require "mqlua"; local c = m.Client()
c:enable_logger(); print(type(c.logger))
c.logger(m.MQTT_LOG_WARNING, "a warning line"); c.logger(m.MQTT_LOG_ERR, "an error line")
c.logger(m.MQTT_LOG_NOTICE, "a notice line"); c.logger(m.MQTT_LOG_DEBUG, "a debug line")' 2>&1]])
	t:match(out, "^function\n", "client.logger")
	t:match(out, "WARN  a warning line\n", "warning")
	t:match(out, "ERROR an error line\n", "error")
	t:match(out, "INFO  a notice line\n", "notice")
	t:ok(not out:find("a debug line", 1, true), "debug lines are left to -v: " .. out)
end)

test("attributes: read, set while disconnected, refused while connected, read-only ones", function(t)
	local other = T.broker{ config = "" }
	local c = mqtt.Client("misc-attrs")
	t:eq({ c.connect_timeout, c.max_inflight_messages, c.max_queued_messages, c.suppress_exceptions, c.password },
		{ 5.0, 20, 0, true, nil }, "defaults (connect_timeout, inflight, queued, suppress_exceptions, password)")
	c:will_set("misc/will", "gone\0binary", 1, true)
	t:eq({ c.will_topic, c.will_payload }, { "misc/will", "gone\0binary" }, "will_topic, will_payload")
	c:will_clear()
	t:eq({ c.will_topic, c.will_payload }, { nil, nil }, "after will_clear()")
	c.connect_timeout = 2.5
	c.max_inflight_messages = 5
	c.max_queued_messages = 100
	t:eq({ c.connect_timeout, c.max_inflight_messages, c.max_queued_messages }, { 2.5, 5, 100 }, "after setting")
	c:username_pw_set("u", "secret")
	t:eq({ c.username, c.password }, { "u", nil }, "username, password (write-only)")

	t:eq(c:connect(broker.host, broker.port, 30), 0, "connect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	t:eq({ c.host, c.port, c.keepalive }, { broker.host, broker.port, 30 }, "host, port, keepalive")
	for _, k in ipairs{ "host", "port", "keepalive", "connect_timeout", "max_inflight_messages", "max_queued_messages" } do
		t:raises(function() c[k] = 10 end, "updating " .. k .. " on established connection is not supported")
	end
	c:disconnect()
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")
	-- set while disconnected: reconnect() goes where the attributes say
	local listener = T.connected(t, "misc-attrs-listener", true, other)
	local got = T.collector(listener)
	T.subscribed(t, listener, "misc/attrs", 1)
	c.host, c.port, c.keepalive = other.host, other.port, 20
	t:eq(c:reconnect(), 0, "reconnect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected again")
	c:publish("misc/attrs", "to the other broker", 1)
	t:ok(T.wait_until(function() return #got == 1 end), "the other broker got the message")
	t:eq({ c.port, c.keepalive }, { other.port, 20 }, "port, keepalive")
	c:disconnect()
	listener:disconnect()

	t:raises(function() c.port = 0 end, "port must be between 1 and 65535")
	t:raises(function() c.keepalive = 2 end, "keepalive must be 0 %(off%) or between 5 and 65535")
	t:raises(function() c.connect_timeout = 0 end, "connect_timeout must be a positive number")
	t:raises(function() c.host = "" end, "host must not be empty")
	t:raises(function() c.max_inflight_messages = -1 end, "inflight must be between 0 and 65535")
	t:raises(function() c.will_topic = "x" end, "will_topic is read%-only: use will_set%(%)")
	t:raises(function() c.password = "x" end, "password is read%-only: use username_pw_set%(%)")
	t:raises(function() c.protocol = 5 end, "protocol is read%-only")
	t:raises(function() c.suppress_exceptions = false end, "suppress_exceptions cannot be false in mqlua")
	c.suppress_exceptions = true
end)

test("connect_timeout: an attempt without CONNACK ends after it, with on_connect_fail and the reason", function(t)
	local silent = T.broker{ config = "" }
	T.sh("kill -STOP " .. silent.pid)     -- the kernel still accepts the TCP connection
	local c = mqtt.Client("misc-timeout")
	c.connect_timeout = 1
	local fails = {}
	local start = mqtt.time()
	c.on_connect_fail = function() fails[#fails + 1] = mqtt.time() - start end
	local rc = c:connect(silent.host, silent.port)
	t:eq(rc, 0, "connect rc (the TCP connection is accepted)")
	t:ok(T.wait_until(function() return #fails > 0 end, 4), "on_connect_fail within 4 s")
	t:ok(fails[1] >= 0.9 and fails[1] < 2, "after about 1 s (" .. fails[1] .. ")")
	t:eq(c:last_error(), "no CONNACK within connect_timeout (1 s)", "last_error()")
	t:ok(not c:is_connected(), "not connected")
	c:disconnect()
	T.sh("kill -CONT " .. silent.pid)
end)

test("manual_ack_set(true): libmosquitto has acked before on_message, so no redelivery without ack()", function(t)
	local pub = T.connected(t, "misc-ack-pub")
	local c = T.connected(t, "misc-ack-sub", false)
	c:manual_ack_set(true)
	t:eq(c.manual_ack, true, "client.manual_ack")
	local got = T.collector(c)
	T.subscribed(t, c, "misc/ack", 1)
	pub:publish("misc/ack", "once", 1)
	t:ok(T.wait_until(function() return #got == 1 end), "received")
	mqtt.sleep(0.2)
	c:disconnect()
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")
	-- the same session again: the broker would resend an unacknowledged QoS 1 message
	local c2 = mqtt.Client("misc-ack-sub", false)
	local again = T.collector(c2)
	t:eq(c2:connect(broker.host, broker.port), 0, "reconnect rc")
	t:ok(T.wait_until(function() return c2:is_connected() end), "connected again")
	mqtt.sleep(0.5)
	t:eq(#again, 0, "nothing redelivered: the PUBACK went out before on_message")
	t:eq(c2:ack(1, 1), mqtt.MQTT_ERR_SUCCESS, "ack() returns MQTT_ERR_SUCCESS")
	t:raises(function() c2:ack(1, 3) end, "qos must be 0, 1 or 2, got 3")
	t:raises(function() c2:ack(70000, 1) end, "mid must be between 0 and 65535")
	t:raises(function() c2:ack(1) end, "qos must be 0, 1 or 2, got no value")
	t:raises(function() c2:manual_ack_set("yes") end, "on must be a boolean")
	c2:disconnect()
	pub:disconnect()
end)

test("message_retry_set(s) is accepted (no effect); a negative value names the argument", function(t)
	local c = mqtt.Client("misc-retry")
	t:eq(select("#", c:message_retry_set(20)), 0, "returns nothing, as paho")
	t:raises(function() c:message_retry_set(-1) end, "retry must not be negative")
	t:raises(function() c:message_retry_set("soon") end, "number expected, got string")
end)

test("on_pre_connect runs before every attempt: connect(), reconnect() and the automatic retries", function(t)
	local c = mqtt.Client("misc-pre-connect")
	local closed = mqtt.broker.free_port()
	local events = {}
	c.on_pre_connect = function(client, userdata)
		t:ok(rawequal(client, c), "on_pre_connect got the client")
		events[#events + 1] = "pre " .. client.port .. " " .. tostring(userdata)
		-- after two failed attempts, point the client at the real broker
		if #events == 5 then client.port = broker.port end
	end
	c:user_data_set("ud")
	c.on_connect_fail = function() events[#events + 1] = "fail" end
	c.on_connect = function(client) events[#events + 1] = "connect " .. client.port end
	c:reconnect_delay_set(0.05, 0.1)
	c:connect_async("127.0.0.1", closed)
	t:ok(T.wait_until(function() return c:is_connected() end), "connected after the retries")
	t:eq(events, { "pre " .. closed .. " ud", "fail", "pre " .. closed .. " ud", "fail",
		"pre " .. closed .. " ud", "connect " .. broker.port }, "order of the callbacks")
	c:disconnect()
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")
	events = {}
	t:eq(c:reconnect(), 0, "reconnect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected again")
	t:eq(events, { "pre " .. broker.port .. " ud", "connect " .. broker.port }, "reconnect()")
	c:disconnect()
end)

test("paho features libmosquitto cannot give raise a clear error instead of doing nothing", function(t)
	local c = mqtt.Client("misc-unsupported")
	t:raises(function() c:enable_bridge_mode() end,
		"enable_bridge_mode is not supported: libmosquitto cannot mark a client as a bridge")
	for _, name in ipairs{ "on_socket_open", "on_socket_close", "on_socket_register_write",
		"on_socket_unregister_write" } do
		t:raises(function() c[name] = function() end end, "unknown callback '" .. name .. "'")
	end
end)
