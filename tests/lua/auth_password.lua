-- auth_password.lua - username/password authentication against a mosquitto
-- with a password_file and allow_anonymous false: username_pw_set, what a
-- refusal looks like (on_connect rc, last_error words, on_disconnect), and
-- default credentials from `--broker mqtt://user:pass@host:port` (which must
-- never show up in the logs, even with -v).
local mqtt = require "mqlua"
local test = T.test

local USER, PASS = "alice", "s3cret:p@ss w%rd"
local PASS_IN_URL = "s3cret%3Ap%40ss%20w%25rd"

local dir = T.tmpdir()
local pwfile = dir .. "/passwd"
local _, code = T.sh("mosquitto_passwd -b -c '" .. pwfile .. "' " .. USER .. " '" .. PASS .. "' 2>&1")
assert(code == 0, "mosquitto_passwd failed")
os.execute("chmod 644 '" .. pwfile .. "'")
local broker = T.broker{ allow_anonymous = false, config = "password_file " .. pwfile }

local seq = 0
-- Connects a client (after setup(c)) and waits for its CONNACK; returns the
-- client and what its callbacks saw.
local function connect(t, setup, opts)
	seq = seq + 1
	local c = mqtt.Client{ client_id = "auth-test-" .. seq, protocol = opts and opts.protocol }
	local ev = { connects = {}, disconnects = {} }
	c.on_connect = function(_, _, _, rc)   -- MQTT v5: a ReasonCode, shown as "name (value)"
		ev.connects[#ev.connects + 1] = type(rc) == "number" and rc or string.format("%s (%d)", rc, rc.value)
	end
	c.on_disconnect = function(_, _, rc) ev.disconnects[#ev.disconnects + 1] = rc end
	if setup then setup(c) end
	t:eq(c:connect(broker.host, broker.port), mqtt.MQTT_ERR_SUCCESS, "connect rc")
	t:ok(T.wait_until(function() return #ev.connects > 0 end), "CONNACK within 5 s")
	return c, ev
end

-- A refusal: on_connect gets rc, last_error() the words, on_disconnect follows.
local function expect_refused(t, c, ev, rc, words)
	t:eq(ev.connects, { rc }, "on_connect rc")
	t:ok(not c:is_connected(), "not connected")
	t:ok(T.wait_until(function() return #ev.disconnects > 0 end), "on_disconnect after the refusal")
	t:eq(c:last_error(), words, "last_error()")
	c:disconnect()
end

-- Runs a script in a child mqlua with the given options; returns its
-- stdout, its stderr and its exit code.
local function run_child(opts, code)
	local d = T.tmpdir()
	local f = assert(io.open(d .. "/child.lua", "w"))
	f:write(code)
	f:close()
	local out, status = T.sh(opts.env .. " " .. T.mqlua() .. " " .. opts.args .. " " .. d .. "/child.lua 2>" .. d .. "/stderr")
	local ef = assert(io.open(d .. "/stderr"))
	local err = ef:read("a")
	ef:close()
	return out, err, status
end

local CHILD = [[
local mqtt = require "mqlua"
local c = mqtt.Client("auth-child")
c.on_connect = function(cl, _, _, rc)
	print("on_connect " .. rc .. " username " .. tostring(cl.username))
	cl:disconnect()
end
local rc = c:connect()   -- the default broker
print("connect " .. rc)
]]

test("right user name and password: connected", function(t)
	local c, ev = connect(t, function(c) c:username_pw_set(USER, PASS) end)
	t:eq(ev.connects, { 0 }, "on_connect rc")
	t:ok(c:is_connected(), "is_connected()")
	t:eq(c.username, USER, "client.username")
	t:eq(c.password, nil, "the password is not readable back")
	t:ok(not tostring(c):find(PASS, 1, true), "tostring(client) shows no password: " .. tostring(c))
	-- and it can really use the broker
	local got
	c.on_message = function(_, _, m) got = m.payload end
	c:subscribe("auth/echo")
	c:publish("auth/echo", "hello", 1)
	t:ok(T.wait_until(function() return got end), "message round trip")
	t:eq(got, "hello", "payload")
	c:disconnect()
	t:ok(T.wait_until(function() return #ev.disconnects > 0 end), "on_disconnect")
	t:eq(ev.disconnects, { 0 }, "on_disconnect rc after disconnect()")
end)

test("credentials in the keyword-table form", function(t)
	local c, ev = connect(t, function(c) c:username_pw_set{ username = USER, password = PASS } end)
	t:eq(ev.connects, { 0 }, "on_connect rc")
	c:disconnect()
end)

-- mosquitto 2.0.11 answers every failed MQTT 3.1.1 login with CONNACK 5
-- (not authorised), never 4 (bad user name or password).
test("wrong password (MQTT 3.1.1): on_connect rc 5, not authorised", function(t)
	local c, ev = connect(t, function(c) c:username_pw_set(USER, PASS .. "x") end)
	expect_refused(t, c, ev, mqtt.CONNACK_REFUSED_NOT_AUTHORIZED, "Connection Refused: not authorised.")
	t:eq(ev.disconnects, { mqtt.MQTT_ERR_CONN_REFUSED }, "on_disconnect rc")
	t:eq(mqtt.connack_string(5), "Connection Refused: not authorised.", "connack_string(5)")
end)

test("unknown user, user without password, no credentials: refused with rc 5", function(t)
	for _, setup in ipairs({
		function(c) c:username_pw_set("mallory", PASS) end,
		function(c) c:username_pw_set(USER) end,
		false,
	}) do
		local c, ev = connect(t, setup or nil)
		expect_refused(t, c, ev, 5, "Connection Refused: not authorised.")
	end
end)

test("wrong password (MQTT 5): reason code 135 and its words", function(t)
	local c, ev = connect(t, function(c) c:username_pw_set(USER, "nope") end, { protocol = mqtt.MQTTv5 })
	expect_refused(t, c, ev, "Not authorized (135)", "Not authorized")
end)

test("username_pw_set argument errors", function(t)
	local c = mqtt.Client("auth-args")
	t:raises(function() c:username_pw_set(nil, "pw") end, "username is required when a password is given")
	t:raises(function() c:username_pw_set({}) end, "string expected")
end)

test("--broker mqtt://user:pass@host:port gives default credentials; -v never logs the password", function(t)
	local url = string.format("mqtt://%s:%s@%s:%d", USER, PASS_IN_URL, broker.host, broker.port)
	local out, err, status = run_child({ env = "", args = "-v --broker '" .. url .. "'" }, CHILD)
	t:eq(status, 0, "exit status; stderr:\n" .. err)
	t:match(out, "connect 0", "stdout")
	t:match(out, "on_connect 0 username alice", "stdout")
	t:match(err, "DEBUG", "-v logs at debug level")
	t:match(err, "sending CONNECT", "-v shows libmosquitto's log")
	for _, secret in ipairs({ PASS, PASS_IN_URL, "s3cret" }) do
		t:ok(not err:find(secret, 1, true), "stderr contains the password (" .. secret .. "):\n" .. err)
		t:ok(not out:find(secret, 1, true), "stdout contains the password (" .. secret .. ")")
	end
end)

test("MQLUA_BROKER with a wrong password: on_connect rc 5", function(t)
	local url = string.format("mqtt://%s:wrong@%s:%d", USER, broker.host, broker.port)
	local out, err, status = run_child({ env = "MQLUA_BROKER='" .. url .. "'", args = "" }, CHILD)
	t:eq(status, 0, "exit status; stderr:\n" .. err)
	t:match(out, "on_connect 5 username alice", "stdout")
	t:match(err, "refused the connection: Connection Refused: not authorised%.", "stderr")
	t:ok(not err:find("wrong", 1, true), "stderr shows the password:\n" .. err)
end)

test("a script's own username_pw_set wins over the --broker credentials", function(t)
	local url = string.format("mqtt://%s:wrong@%s:%d", USER, broker.host, broker.port)
	local out, err, status = run_child({ env = "", args = "--broker '" .. url .. "'" }, [[
		local mqtt = require "mqlua"
		local c = mqtt.Client("auth-child-own")
		c:username_pw_set("alice", "]] .. PASS .. [[")
		c.on_connect = function(cl, _, _, rc) print("on_connect " .. rc); cl:disconnect() end
		c:connect()
	]])
	t:eq(status, 0, "exit status; stderr:\n" .. err)
	t:match(out, "on_connect 0", "stdout")
end)
