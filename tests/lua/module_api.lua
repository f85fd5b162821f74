-- module_api.lua - the mqlua module table itself: topic matching and
-- validation, paho's words for result codes, paho's constant values, and
-- the loop helpers (time, sleep, wait_until).
local mqtt = require "mqlua"
local test = T.test

---------------------------------------------------------------------------
-- topic_matches_sub

test("topic_matches_sub: MQTT's matching rules", function(t)
	local cases = {
		-- filter, topic, matches
		{ "a/b/c", "a/b/c", true },
		{ "a/b/c", "a/b", false },
		{ "a/b", "a/b/c", false },
		{ "A", "a", false },                       -- case sensitive
		{ "a/+/c", "a/b/c", true },
		{ "a/+/c", "a/b/d", false },
		{ "a/+", "a/b/c", false },
		{ "+/b", "a/b", true },
		{ "+", "a", true },
		{ "+/+", "a/b", true },
		{ "+/+/+", "a/b", false },
		{ "#", "a", true },
		{ "#", "a/b/c", true },
		{ "#", "/", true },
		{ "a/#", "a/b/c", true },
		{ "a/#", "a", true },                      -- '#' also matches the parent level
		{ "a/#", "ab", false },
		{ "a/#", "a/", true },
		{ "a/+/#", "a/b", true },
		{ "a/+/#", "a", false },
		{ "sport/tennis/player1/#", "sport/tennis/player1", true },
		{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
		{ "sport/+", "sport", false },
		{ "sport/+", "sport/", true },
		-- empty levels are levels
		{ "+/+", "/x", true },
		{ "+", "/x", false },
		{ "/+", "/x", true },
		{ "a/+", "a/", true },
		{ "a/+", "a//", false },
		{ "a//b", "a//b", true },
		{ "a/+/b", "a//b", true },
		{ "a/b", "a/b/", false },
		{ "a/b/", "a/b", false },
		{ "+/#", "/", true },
		-- topics starting with $ are not matched by a leading wildcard
		{ "#", "$SYS/broker/uptime", false },
		{ "+/broker/uptime", "$SYS/broker/uptime", false },
		{ "+/#", "$SYS/x", false },
		{ "+", "$", false },
		{ "$SYS/#", "$SYS/broker/uptime", true },
		{ "$SYS/#", "$SYS", true },
		{ "$SYS/+/uptime", "$SYS/broker/uptime", true },
		{ "$", "$", true },
		{ "a/+", "a/$b", true },                   -- only the first character counts
		{ "a/#", "a/$b/c", true },
		-- UTF-8
		{ "\xc3\xbc/+", "\xc3\xbc/x", true },
		{ "\xc3\xbc/+", "u/x", false },
	}
	local wrong = {}
	for _, cs in ipairs(cases) do
		local got = mqtt.topic_matches_sub(cs[1], cs[2])
		t:eq(type(got), "boolean", "result type for " .. cs[1] .. " / " .. cs[2])
		if got ~= cs[3] then
			wrong[#wrong + 1] = string.format("%q vs %q: expected %s, got %s", cs[1], cs[2], cs[3], got)
		end
	end
	t:eq(wrong, {}, "mismatches")
end)

test("topic_matches_sub raises on an invalid filter or topic", function(t)
	t:raises(function() mqtt.topic_matches_sub("a/#/b", "a") end,
		"bad argument #1 to '[%w%.]*topic_matches_sub' %(sub has a '#' that is not the whole last level%)")
	t:raises(function() mqtt.topic_matches_sub("a+", "a") end, "sub has a '%+' that is not a whole level")
	t:raises(function() mqtt.topic_matches_sub("a/#", "a/+") end,
		"bad argument #2 to '[%w%.]*topic_matches_sub' %(topic must not contain the wildcards")
	t:raises(function() mqtt.topic_matches_sub("#", "") end, "topic must not be empty")
	t:raises(function() mqtt.topic_matches_sub("#") end, "string expected, got no value")
end)

---------------------------------------------------------------------------
-- validate_topic / validate_filter

test("validate_topic: true, or nil and the reason", function(t)
	local function v(s) return { mqtt.validate_topic(s) } end
	t:eq(v("a/b"), { true }, "plain topic")
	t:eq(v("/"), { true }, "empty levels")
	t:eq(v("$SYS/x"), { true }, "$ topic")
	t:eq(v("caf\xc3\xa9"), { true }, "UTF-8")
	t:eq(v(string.rep("a", 65535)), { true }, "65535 bytes")
	t:eq(v(""), { nil, "must not be empty" }, "empty")
	t:eq(v("a/+"), { nil, "must not contain the wildcards '+' or '#'" }, "+")
	t:eq(v("a/#"), { nil, "must not contain the wildcards '+' or '#'" }, "#")
	t:eq(v("a\0b"), { nil, "must not contain a NUL character" }, "NUL")
	t:eq(v(string.rep("a", 65536)), { nil, "is longer than 65535 bytes" }, "too long")
	t:eq(v("a\xff"), { nil, "is not valid UTF-8 (or contains control characters)" }, "invalid UTF-8")
	t:eq(v("a\1b"), { nil, "is not valid UTF-8 (or contains control characters)" }, "control character")
	t:raises(function() mqtt.validate_topic(nil) end, "string expected, got nil")
end)

test("validate_filter: true, or nil and the reason", function(t)
	local function v(s) return { mqtt.validate_filter(s) } end
	for _, ok in ipairs { "a/b", "#", "+", "a/#", "+/+/#", "/", "+/", "/+", "$SYS/#", "a/+/b" } do
		t:eq(v(ok), { true }, ok)
	end
	t:eq(v("a#"), { nil, "has a '#' that is not the whole last level" }, "a#")
	t:eq(v("a/#/b"), { nil, "has a '#' that is not the whole last level" }, "a/#/b")
	t:eq(v("#/"), { nil, "has a '#' that is not the whole last level" }, "#/")
	t:eq(v("a+"), { nil, "has a '+' that is not a whole level" }, "a+")
	t:eq(v("+a/b"), { nil, "has a '+' that is not a whole level" }, "+a/b")
	t:eq(v("a/++"), { nil, "has a '+' that is not a whole level" }, "a/++")
	t:eq(v(""), { nil, "must not be empty" }, "empty")
	t:eq(v("a\0b"), { nil, "must not contain a NUL character" }, "NUL")
	t:eq(v("a/\xff"), { nil, "is not valid UTF-8 (or contains control characters)" }, "invalid UTF-8")
end)

---------------------------------------------------------------------------
-- words for codes

test("connack_string: paho's texts", function(t)
	t:eq(mqtt.connack_string(0), "Connection Accepted.", "0")
	t:eq(mqtt.connack_string(1), "Connection Refused: unacceptable protocol version.", "1")
	t:eq(mqtt.connack_string(2), "Connection Refused: identifier rejected.", "2")
	t:eq(mqtt.connack_string(3), "Connection Refused: broker unavailable.", "3")
	t:eq(mqtt.connack_string(4), "Connection Refused: bad user name or password.", "4")
	t:eq(mqtt.connack_string(5), "Connection Refused: not authorised.", "5")
	t:eq(mqtt.connack_string(6), "Connection Refused: unknown reason.", "6")
	t:eq(mqtt.connack_string(255), "Connection Refused: unknown reason.", "255")
	t:eq(mqtt.connack_string(mqtt.CONNACK_REFUSED_NOT_AUTHORIZED), "Connection Refused: not authorised.", "constant")
	t:raises(function() mqtt.connack_string("x") end, "number expected, got string")
end)

test("error_string: paho's texts", function(t)
	local want = {
		[0] = "No error.",
		"Out of memory.",
		"A network protocol error occurred when communicating with the broker.",
		"Invalid function arguments provided.",
		"The client is not currently connected.",
		"The connection was refused.",
		"Message not found (internal error).",
		"The connection was lost.",
		"A TLS error occurred.",
		"Payload too large.",
		"This feature is not supported.",
		"Authorisation failed.",
		"Access denied by ACL.",
		"Unknown error.",
		"Error defined by errno.",
		"Message queue full.",
		"Client or broker did not communicate in the keepalive interval.",
	}
	for rc = 0, 16 do
		t:eq(mqtt.error_string(rc), want[rc], "error_string(" .. rc .. ")")
	end
	t:eq(mqtt.error_string(17), "Unknown error.", "17")
	t:eq(mqtt.error_string(1000), "Unknown error.", "1000")
	t:eq(mqtt.error_string(mqtt.MQTT_ERR_NO_CONN), want[4], "by constant")
	t:raises(function() mqtt.error_string() end, "number expected, got no value")
end)

---------------------------------------------------------------------------
-- constants

test("constants have paho's values", function(t)
	local want = {
		MQTTv31 = 3, MQTTv311 = 4, MQTTv5 = 5,
		MQTT_ERR_AGAIN = -1, MQTT_ERR_SUCCESS = 0, MQTT_ERR_NOMEM = 1, MQTT_ERR_PROTOCOL = 2,
		MQTT_ERR_INVAL = 3, MQTT_ERR_NO_CONN = 4, MQTT_ERR_CONN_REFUSED = 5, MQTT_ERR_NOT_FOUND = 6,
		MQTT_ERR_CONN_LOST = 7, MQTT_ERR_TLS = 8, MQTT_ERR_PAYLOAD_SIZE = 9, MQTT_ERR_NOT_SUPPORTED = 10,
		MQTT_ERR_AUTH = 11, MQTT_ERR_ACL_DENIED = 12, MQTT_ERR_UNKNOWN = 13, MQTT_ERR_ERRNO = 14,
		MQTT_ERR_QUEUE_SIZE = 15, MQTT_ERR_KEEPALIVE = 16,
		CONNACK_ACCEPTED = 0, CONNACK_REFUSED_PROTOCOL_VERSION = 1, CONNACK_REFUSED_IDENTIFIER_REJECTED = 2,
		CONNACK_REFUSED_SERVER_UNAVAILABLE = 3, CONNACK_REFUSED_BAD_USERNAME_PASSWORD = 4,
		CONNACK_REFUSED_NOT_AUTHORIZED = 5,
		MQTT_LOG_INFO = 0x01, MQTT_LOG_NOTICE = 0x02, MQTT_LOG_WARNING = 0x04, MQTT_LOG_ERR = 0x08,
		MQTT_LOG_DEBUG = 0x10,
		MQTT_CLEAN_START_FIRST_ONLY = 3,
		CERT_NONE = 0, CERT_OPTIONAL = 1, CERT_REQUIRED = 2,
	}
	local got = {}
	for name in pairs(want) do got[name] = mqtt[name] end
	t:eq(got, want, "constant values")
	for name in pairs(want) do
		t:eq(math.type(mqtt[name]), "integer", name .. " is an integer")
	end
	-- nothing that looks like one of paho's constants is missing from the list above
	local extra = {}
	for name, value in pairs(mqtt) do
		if name:match("^MQTT") or name:match("^CONNACK_") or name:match("^CERT_") then
			if want[name] == nil then extra[#extra + 1] = name .. "=" .. tostring(value) end
		end
	end
	table.sort(extra)
	t:eq(extra, {}, "constants this test does not know (add them with paho's value)")
end)

test("the module table has the documented functions", function(t)
	for _, name in ipairs { "Client", "topic_matches_sub", "connack_string", "error_string", "validate_topic",
		"validate_filter", "sleep", "wait_until", "time" } do
		t:eq(type(mqtt[name]), "function", name)
	end
	t:eq(type(mqtt.broker), "table", "broker")
	t:eq(type(mqtt.broker.start), "function", "broker.start")
	t:match(mqtt.VERSION, "^%d+%.%d+%.%d+", "VERSION")
	t:ok(rawequal(require "mqlua", mqtt), "require returns the same table")
end)

---------------------------------------------------------------------------
-- loop helpers

test("mqlua.time is monotonic seconds; mqlua.sleep waits that long", function(t)
	local t0 = mqtt.time()
	t:eq(math.type(t0), "float", "a float")
	mqtt.sleep(0.25)
	local dt = mqtt.time() - t0
	t:ok(dt >= 0.25 and dt < 1.0, "slept about 0.25 s (" .. dt .. ")")
	local t1 = mqtt.time()
	mqtt.sleep(0)
	t:ok(mqtt.time() >= t1, "never goes back")
	t:raises(function() mqtt.sleep(-1) end, "seconds must not be negative")
	t:raises(function() mqtt.sleep("soon") end, "number expected, got string")
end)

test("mqlua.wait_until: true when the predicate holds, nil,'timeout' otherwise", function(t)
	local calls = 0
	local r = { mqtt.wait_until(function() calls = calls + 1; return calls >= 3 end, 5) }
	t:eq(r, { true }, "true once the predicate holds")
	t:eq(calls, 3, "predicate called until it held")
	local t0 = mqtt.time()
	r = { mqtt.wait_until(function() return false end, 0.2) }
	local dt = mqtt.time() - t0
	t:eq(r, { nil, "timeout" }, "timeout result")
	t:ok(dt >= 0.2 and dt < 1.0, "waited about the timeout (" .. dt .. ")")
	t:eq({ mqtt.wait_until(function() return "yes" end, 0) }, { true }, "a truthy value counts, even with timeout 0")
	t:raises(function() mqtt.wait_until(function() error("pred broke") end, 1) end,
		"module_api%.lua:239: pred broke")
	t:raises(function() mqtt.wait_until(5) end, "function expected, got number")
end)

test("mqlua.sleep drives clients: a message arrives during it", function(t)
	local b = T.broker()
	local c = mqtt.Client("module-sleep")
	local got
	c.on_connect = function(client) client:subscribe("sleep/x") end
	c.on_subscribe = function(client) client:publish("sleep/x", "during sleep") end
	c.on_message = function(_, _, m) got = m.payload end
	c:connect()
	local t0 = mqtt.time()
	while got == nil and mqtt.time() - t0 < 5 do mqtt.sleep(0.05) end
	t:eq(got, "during sleep", "connect, subscribe, publish, deliver: all inside sleep()")
	c:disconnect()
	t:eq(b.port, c.port, "used the default broker")
end)

test("broker objects: fields, tostring, stop", function(t)
	local b = mqtt.broker.start { default = false }
	t:eq(b.host, "127.0.0.1", "host")
	t:eq(math.type(b.port), "integer", "port")
	t:eq(b.url, "mqtt://127.0.0.1:" .. b.port, "url")
	t:eq(b.running, true, "running")
	t:match(tostring(b), "^mqlua%.Broker%(mqtt://127%.0%.0%.1:%d+, pid %d+%)$", "tostring")
	t:raises(function() return b.nope end, "Broker has no field 'nope'")
	local c = mqtt.Client("module-broker")
	t:eq(c:connect(b.host, b.port), 0, "it accepts connections")
	c:disconnect()
	b:stop()
	t:eq(b.running, false, "stopped")
	t:eq(tostring(b), "mqlua.Broker(stopped)", "tostring when stopped")
	b:stop()   -- twice is harmless
	local c2 = mqtt.Client("module-broker-2")
	local rc, words = c2:connect("127.0.0.1", b.port)
	t:ok(rc ~= 0, "nothing listens after stop()")
	t:eq(words, "Connection refused", "words")
	local port = mqtt.broker.free_port()
	t:ok(math.type(port) == "integer" and port > 0 and port < 65536, "free_port gives a port (" .. tostring(port) .. ")")
end)
