-- client_basic.lua - the Client's everyday behaviour against a real broker:
-- construction, connect/disconnect, publish at every QoS with exact payloads,
-- retained messages, on_publish and MQTTMessageInfo, userdata, reinitialise,
-- the will, and several clients in one script. Subscribing and message
-- callbacks are in client_subscribe.lua.
local mqtt = require "mqlua"
local test = T.test

local broker = T.broker()
local connected, subscribed = T.connected, T.subscribed
local collector, payloads = T.collector, T.payloads




---------------------------------------------------------------------------
-- construction

test("Client() positional form sets id, clean_session and protocol", function(t)
	local c = mqtt.Client("basic-pos", false, nil, mqtt.MQTTv31)
	t:eq(c.client_id, "basic-pos", "client_id")
	t:eq(c.clean_session, false, "clean_session")
	t:eq(c.protocol, mqtt.MQTTv31, "protocol")
	t:eq(c.transport, "tcp", "transport")
	t:eq(c:is_connected(), false, "not connected before connect()")
	t:eq(c.host, nil, "no host before connect()")
end)

test("Client{} table form takes the same names", function(t)
	local ud = {}
	local c = mqtt.Client{ client_id = "basic-tbl", clean_session = false, userdata = ud, protocol = mqtt.MQTTv311 }
	t:eq(c.client_id, "basic-tbl", "client_id")
	t:eq(c.clean_session, false, "clean_session")
	t:eq(c.protocol, mqtt.MQTTv311, "protocol")
	t:ok(rawequal(c:user_data_get(), ud), "userdata from the table form")
end)

test("Client() defaults: a generated id, clean session, MQTT 3.1.1", function(t)
	local a, b = mqtt.Client(), mqtt.Client()
	-- only 0-9a-zA-Z, 1..23 bytes: what every MQTT 3.1.1 server must accept [MQTT-3.1.3-5]
	t:match(a.client_id, "^mqlua%x%x%x%x%x%x%x%x%x%x%x%x$", "generated id: mqlua and 12 hex digits")
	t:ok(a.client_id ~= b.client_id, "two generated ids differ: " .. a.client_id)
	t:eq(a.clean_session, true, "clean_session default")
	t:eq(a.protocol, mqtt.MQTTv311, "protocol default")
	t:eq(mqtt.Client{ client_id = "" }.clean_session, true, "empty id with the default clean session")
end)

test("empty client_id with clean_session=false raises", function(t)
	t:raises(function() mqtt.Client("", false) end, "a client_id must be provided if clean_session is false")
	t:raises(function() mqtt.Client(nil, false) end, "a client_id must be provided if clean_session is false")
	t:raises(function() mqtt.Client{ client_id = "", clean_session = false } end,
		"a client_id must be provided if clean_session is false")
end)

test("MQTTv5 with an explicit clean_session raises (connect's clean_start takes its place)", function(t)
	local why = "bad argument #2 to 'Client' %(clean_session is not used for MQTT 5%.0 " ..
		"%(leave it out and use connect%(clean_start = %.%.%.%)%)%)"
	t:raises(function() mqtt.Client{ client_id = "v5cs", clean_session = false, protocol = mqtt.MQTTv5 } end, why)
	t:raises(function() mqtt.Client{ client_id = "v5cs", clean_session = true, protocol = mqtt.MQTTv5 } end, why)
	t:raises(function() mqtt.Client("v5cs", true, nil, mqtt.MQTTv5) end, why)
	t:raises(function() mqtt.Client("", false, nil, mqtt.MQTTv5) end, why)
	-- left out (or nil) is fine, and the session is then chosen by connect()
	local c = mqtt.Client{ client_id = "v5cs", protocol = mqtt.MQTTv5 }
	t:eq(c.protocol, mqtt.MQTTv5, "protocol")
	t:eq(mqtt.Client("v5cs", nil, nil, mqtt.MQTTv5).client_id, "v5cs", "positional nil")
	t:raises(function() c:reinitialise("v5cs", false) end, "clean_session is not used for MQTT 5%.0")
	c:reinitialise("v5cs2")
	t:eq(c.client_id, "v5cs2", "reinitialise without clean_session")
	local b = T.broker()
	local sp = {}
	c.on_connect = function(_, _, flags) sp[#sp + 1] = flags.session_present end
	t:eq(c:connect(b.host, b.port, 60, nil, nil, false, { SessionExpiryInterval = 60 }), 0, "connect, clean_start false")
	t:ok(T.wait_until(function() return #sp == 1 end), "on_connect")
	c:disconnect()
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")
	t:eq(c:connect(b.host, b.port, 60, nil, nil, false), 0, "connect again, clean_start false")
	t:ok(T.wait_until(function() return #sp == 2 end), "on_connect again")
	t:eq(sp, { false, true }, "session_present: the session was kept by clean_start = false")
	c:disconnect()
end)

test("Client() rejects bad protocol, transport, clean_session and unknown keys", function(t)
	t:raises(function() mqtt.Client("x", true, nil, 7) end, "protocol must be mqtt%.MQTTv31, mqtt%.MQTTv311 or mqtt%.MQTTv5")
	t:raises(function() mqtt.Client("x", true, nil, mqtt.MQTTv311, "quic") end,
		'transport must be "tcp", "websockets" or "unix", got "quic"')
	t:raises(function() mqtt.Client("x", "yes") end, "clean_session must be a boolean, got string")
	t:raises(function() mqtt.Client{ client_id = "x", clean_sesion = true } end, "unknown argument 'clean_sesion'")
	t:raises(function() mqtt.Client("a\0b") end, "client_id must be valid UTF%-8 without NUL characters")
end)

---------------------------------------------------------------------------
-- connecting

test("connect, on_connect, is_connected, disconnect, on_disconnect", function(t)
	local c = mqtt.Client("basic-conn")
	local events = {}
	c.on_connect = function(client, userdata, flags, rc)
		events[#events + 1] = { "connect", rawequal(client, c), flags.session_present, rc }
	end
	c.on_disconnect = function(client, userdata, rc)
		events[#events + 1] = { "disconnect", rawequal(client, c), rc }
	end
	local n = select("#", c:connect(broker.host, broker.port, 30))
	t:eq(n, 1, "connect returns only rc on success")
	t:ok(T.wait_until(function() return #events >= 1 end), "on_connect called")
	t:eq(events[1], { "connect", true, false, 0 }, "on_connect(client, userdata, flags, rc)")
	t:eq(c:is_connected(), true, "is_connected after CONNACK")
	t:eq(c.host, broker.host, "host")
	t:eq(c.port, broker.port, "port")
	t:eq(c.keepalive, 30, "keepalive")
	t:match(tostring(c), '^mqlua%.Client%("basic%-conn", 127%.0%.0%.1:%d+, connected%)$', "tostring")
	t:eq(c:disconnect(), 0, "disconnect rc")
	t:ok(T.wait_until(function() return #events >= 2 end), "on_disconnect called")
	t:eq(events[2], { "disconnect", true, 0 }, "on_disconnect(client, userdata, 0) after disconnect()")
	t:eq(c:is_connected(), false, "is_connected after disconnect")
	t:eq(c:last_error(), nil, "no last_error after a clean session")
	mqtt.sleep(0.2)
	t:eq(#events, 2, "no further callbacks after disconnect")
end)

test("connect() without a host uses the test broker; reconnect() after disconnect", function(t)
	local c = connected(t, "basic-default")
	t:eq(c.port, broker.port, "went to the default broker")
	t:eq(c:disconnect(), 0, "disconnect")
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")
	t:eq(c:reconnect(), 0, "reconnect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected again")
	c:disconnect()
end)

---------------------------------------------------------------------------
-- publishing

test("publish at QoS 0, 1 and 2 arrives with its qos and exact payload", function(t)
	local sub = connected(t, "basic-q-sub")
	local got = collector(sub)
	subscribed(t, sub, "q/#", 2)
	local pub = connected(t, "basic-q-pub")
	for q = 0, 2 do
		local info = pub:publish("q/" .. q, "payload at qos " .. q, q)
		t:eq(info.rc, 0, "rc at qos " .. q)
	end
	t:ok(T.wait_until(function() return #got == 3 end), "three messages (got " .. #got .. ")")
	table.sort(got, function(a, b) return a.topic < b.topic end)
	for q = 0, 2 do
		t:eq(got[q + 1], { topic = "q/" .. q, payload = "payload at qos " .. q, qos = q, retain = false },
			"message at qos " .. q)
	end
	sub:disconnect()
	pub:disconnect()
end)

test("delivered qos is the lower of publish and subscription qos", function(t)
	local sub = connected(t, "basic-min-sub")
	local got = collector(sub)
	subscribed(t, sub, "min/#", 1)
	local pub = connected(t, "basic-min-pub")
	pub:publish("min/a", "two", 2)
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	t:eq(got[1].qos, 1, "qos 2 downgraded to the subscription's qos 1")
	sub:disconnect()
	pub:disconnect()
end)

test("payloads: binary with NULs, 100 KB, numbers, nil", function(t)
	local sub = connected(t, "basic-pl-sub")
	local got = collector(sub)
	subscribed(t, sub, "pl/#", 1)
	local pub = connected(t, "basic-pl-pub")
	local bytes = {}
	for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
	local binary = "\0" .. table.concat(bytes) .. "\0\0end\0"
	local big = {}
	for i = 1, 100 * 1024 do big[i] = string.char(i * 7 % 256) end
	big = table.concat(big)
	local cases = {
		{ "pl/binary", binary, binary },
		{ "pl/big", big, big },
		{ "pl/int", 42, "42" },
		{ "pl/float", 3.5, "3.5" },
		{ "pl/negative", -7, "-7" },
		{ "pl/nil", nil, "" },
		{ "pl/empty", "", "" },
	}
	for i, cs in ipairs(cases) do
		t:eq(pub:publish(cs[1], cs[2], 1).rc, 0, "publish " .. cs[1])
		-- strict order: one at a time, so got[i] is cases[i]
		t:ok(T.wait_until(function() return #got == i end), cs[1] .. " delivered")
		t:eq(got[i].topic, cs[1], "topic")
		t:eq(#got[i].payload, #cs[3], cs[1] .. " payload length")
		t:ok(got[i].payload == cs[3], cs[1] .. " payload bytes are exact")
	end
	t:eq(#big, 102400, "the big payload is 100 KB")
	sub:disconnect()
	pub:disconnect()
end)

test("publish with the keyword table form", function(t)
	local sub = connected(t, "basic-kw-sub")
	local got = collector(sub)
	subscribed(t, sub, "kw/#", 2)
	local pub = connected(t, "basic-kw-pub")
	local info = pub:publish{ topic = "kw/x", payload = "named", qos = 2 }
	t:eq(info.rc, 0, "rc")
	t:ok(info:wait_for_publish(5), "acknowledged")
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	t:eq(got[1], { topic = "kw/x", payload = "named", qos = 2, retain = false }, "message")
	sub:disconnect()
	pub:disconnect()
end)

test("message fields: mid, dup, timestamp, read-only", function(t)
	local sub = connected(t, "basic-fields-sub")
	local msg
	sub.on_message = function(_, _, m)
		msg = { mid = m.mid, dup = m.dup, timestamp = m.timestamp, qos = m.qos, str = tostring(m) }
		local ok, err = pcall(function() m.payload = "x" end)
		msg.write_ok, msg.write_err = ok, err
	end
	subscribed(t, sub, "fields/#", 1)
	local pub = connected(t, "basic-fields-pub")
	local before = mqtt.time()
	pub:publish("fields/a", "abc", 1)
	t:ok(T.wait_until(function() return msg end), "delivered")
	t:eq(math.type(msg.mid), "integer", "mid is an integer")
	t:ok(msg.mid > 0, "mid of a qos 1 message is a packet id > 0 (got " .. tostring(msg.mid) .. ")")
	t:eq(msg.dup, false, "dup")
	t:ok(msg.timestamp >= before and msg.timestamp <= mqtt.time(), "timestamp is mqlua.time() at arrival")
	t:eq(msg.str, "MQTTMessage(topic=fields/a, qos=1, retain=false, 3 bytes)", "tostring(msg)")
	t:eq(msg.write_ok, false, "assigning a field raises")
	t:match(msg.write_err, "MQTTMessage fields are read%-only", "error text")
	sub:disconnect()
	pub:disconnect()
end)

test("a retained message reaches a late subscriber with retain=true", function(t)
	local pub = connected(t, "basic-ret-pub")
	local live = connected(t, "basic-ret-live")
	local live_got = collector(live)
	subscribed(t, live, "ret/#", 1)
	t:ok(pub:publish("ret/state", "on", 1, true):wait_for_publish(5), "retained publish acknowledged")
	pub:publish("ret/plain", "not kept", 1, false):wait_for_publish(5)
	t:ok(T.wait_until(function() return #live_got == 2 end), "live subscriber got both")
	table.sort(live_got, function(a, b) return a.topic < b.topic end)
	t:eq(live_got[2].retain, false, "a live subscriber sees retain=false")

	local late = connected(t, "basic-ret-late")
	local got = collector(late)
	subscribed(t, late, "ret/#", 1)
	t:ok(T.wait_until(function() return #got == 1 end), "late subscriber got the retained message")
	mqtt.sleep(0.2)
	t:eq(got, { { topic = "ret/state", payload = "on", qos = 1, retain = true } }, "only the retained one")

	-- an empty retained payload clears it
	pub:publish("ret/state", nil, 1, true):wait_for_publish(5)
	local later = connected(t, "basic-ret-later")
	local got2 = collector(later)
	subscribed(t, later, { { "ret/#", 0 }, { "ret-sentinel", 0 } })
	pub:publish("ret-sentinel", "s", 0)
	t:ok(T.wait_until(function() return #got2 >= 1 end), "sentinel delivered")
	t:eq(payloads(got2), { "s" }, "the cleared retained message is gone")
	for _, c in ipairs { pub, live, late, later } do c:disconnect() end
end)

---------------------------------------------------------------------------
-- on_publish and MQTTMessageInfo

test("on_publish mids match info.mid; wait_for_publish and is_published", function(t)
	local c = connected(t, "basic-onpub")
	local acked, seen_client = {}, true
	c.on_publish = function(client, userdata, mid)
		acked[#acked + 1] = mid
		seen_client = seen_client and rawequal(client, c)
	end
	local infos = {}
	for q = 0, 2 do
		for n = 1, 3 do
			local info = c:publish("onpub/" .. q, "m" .. n, q)
			t:eq(info.rc, 0, "rc")
			t:eq(math.type(info.mid), "integer", "mid is an integer")
			infos[#infos + 1] = info
		end
	end
	for i, info in ipairs(infos) do
		t:eq(info:wait_for_publish(5), true, "wait_for_publish #" .. i)
		t:eq(info:is_published(), true, "is_published #" .. i)
	end
	t:ok(T.wait_until(function() return #acked == #infos end), "one on_publish per message (got " .. #acked .. ")")
	local want, have = {}, {}
	for i, info in ipairs(infos) do want[i] = info.mid end
	for i, mid in ipairs(acked) do have[i] = mid end
	table.sort(want)
	table.sort(have)
	t:eq(have, want, "on_publish mids are the info.mids")
	local distinct = {}
	for _, m in ipairs(want) do distinct[m] = true end
	local n = 0
	for _ in pairs(distinct) do n = n + 1 end
	t:eq(n, #infos, "every publish has its own mid")
	t:ok(seen_client, "on_publish got the client")
	t:match(tostring(infos[2]), "^MQTTMessageInfo%(mid=%d+, rc=0, published%)$", "tostring(info)")
	c:disconnect()
end)

test("a QoS 2 publish is pending until its PUBCOMP", function(t)
	local c = connected(t, "basic-pending")
	local info = c:publish("pending/x", "y", 2)
	t:eq(info:is_published(), false, "not published before the broker answered")
	t:eq(info:wait_for_publish(5), true, "published after the handshake")
	c:disconnect()
end)

test("max_inflight_messages_set(1): 30 QoS 1 messages all arrive in order", function(t)
	local sub = connected(t, "basic-inflight-sub")
	local got = collector(sub)
	subscribed(t, sub, "inflight/#", 1)
	local pub = mqtt.Client("basic-inflight-pub")
	pub:max_inflight_messages_set(1)
	pub:connect()
	t:ok(T.wait_until(function() return pub:is_connected() end), "connected")
	local last
	for i = 1, 30 do last = pub:publish("inflight/x", i, 1) end
	t:ok(last:wait_for_publish(10), "the last one was acknowledged")
	t:ok(T.wait_until(function() return #got == 30 end), "30 delivered (got " .. #got .. ")")
	local want = {}
	for i = 1, 30 do want[i] = tostring(i) end
	t:eq(payloads(got), want, "in order")
	sub:disconnect()
	pub:disconnect()
end)

test("user_data_set/get and the userdata every callback receives", function(t)
	local ud1, ud2 = { name = "first" }, { name = "second" }
	local c = mqtt.Client("basic-ud", true, ud1)
	t:ok(rawequal(c:user_data_get(), ud1), "constructor userdata")
	local seen = {}
	local function note(name) return function(_, userdata) seen[name] = userdata end end
	c.on_connect = note("on_connect")
	c.on_subscribe = note("on_subscribe")
	c.on_message = note("on_message")
	c.on_publish = note("on_publish")
	c.on_unsubscribe = note("on_unsubscribe")
	c:message_callback_add("ud/filtered", note("filter"))
	c:connect()
	t:ok(T.wait_until(function() return seen.on_connect end), "on_connect")
	t:ok(rawequal(seen.on_connect, ud1), "on_connect got the constructor userdata")
	c:user_data_set(ud2)
	t:ok(rawequal(c:user_data_get(), ud2), "user_data_get after set")
	c:subscribe("ud/#", 1)
	t:ok(T.wait_until(function() return seen.on_subscribe end), "on_subscribe")
	c:publish("ud/plain", "x", 1)
	c:publish("ud/filtered", "x", 1)
	t:ok(T.wait_until(function() return seen.on_message and seen.filter and seen.on_publish end), "messages")
	c:unsubscribe("ud/#")
	t:ok(T.wait_until(function() return seen.on_unsubscribe end), "on_unsubscribe")
	c.on_disconnect = note("on_disconnect")
	c:disconnect()
	t:ok(T.wait_until(function() return seen.on_disconnect end), "on_disconnect")
	for _, name in ipairs { "on_subscribe", "on_message", "filter", "on_publish", "on_unsubscribe", "on_disconnect" } do
		t:ok(rawequal(seen[name], ud2), name .. " got the userdata set later")
	end
	c:user_data_set(nil)
	t:eq(c:user_data_get(), nil, "userdata cleared")
	c:user_data_set(42)
	t:eq(c:user_data_get(), 42, "any value")
end)

---------------------------------------------------------------------------
-- credentials, tostring, callbacks as fields

test("tostring(client) never shows the password", function(t)
	local c = mqtt.Client("basic-pw")
	c:username_pw_set("alice", "s3cret-pa55")
	t:eq(c.username, "alice", "username field")
	t:eq(c.password, nil, "no password field")
	t:ok(not tostring(c):find("s3cret", 1, true), "not before connect: " .. tostring(c))
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "anonymous broker accepts it")
	t:match(tostring(c), "basic%-pw", "tostring names the client")
	t:ok(not tostring(c):find("s3cret", 1, true), "not while connected: " .. tostring(c))
	c:disconnect()
end)

test("callbacks are fields: set, read back, replaced, cleared; unknown on_ names raise", function(t)
	local c = mqtt.Client("basic-fields")
	local f = function() end
	c.on_message = f
	t:ok(rawequal(c.on_message, f), "read back")
	c.on_message = nil
	t:eq(c.on_message, nil, "cleared")
	c.anything = 5
	t:eq(c.anything, 5, "scripts may keep their own fields on a client")
	t:raises(function() c.on_mesage = f end, "unknown callback 'on_mesage'")
	t:raises(function() c.on_connect = "no" end, "on_connect must be a function or nil, got string")
	t:ok(type(c.publish) == "function", "methods are readable")
end)

---------------------------------------------------------------------------
-- will and reinitialise

test("reinitialise drops the connection (the will is sent), callbacks and subscriptions", function(t)
	local watcher = connected(t, "basic-reinit-watch")
	local got = collector(watcher)
	subscribed(t, watcher, "will/#", 1)

	local c = mqtt.Client("basic-reinit", true, "old")
	c:will_set("will/basic-reinit", "gone", 1, false)
	local old_msgs = {}
	c.on_message = function(_, _, m) old_msgs[#old_msgs + 1] = m.payload end
	c:message_callback_add("re/#", function(_, _, m) old_msgs[#old_msgs + 1] = m.payload end)
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	subscribed(t, c, "re/a", 1)

	c:reinitialise("basic-reinit-2", true, "new")
	t:eq(c:is_connected(), false, "not connected after reinitialise")
	t:eq(c.client_id, "basic-reinit-2", "new client_id")
	t:eq(c:user_data_get(), "new", "new userdata")
	t:eq(c.on_message, nil, "callbacks are reset")
	t:ok(T.wait_until(function() return #got == 1 end), "the broker published the will (no DISCONNECT was sent)")
	t:eq(got[1], { topic = "will/basic-reinit", payload = "gone", qos = 1, retain = false }, "will message")

	-- connected again under the new id: old subscription and callbacks are gone
	local new_msgs = {}
	c.on_message = function(_, _, m) new_msgs[#new_msgs + 1] = m.topic end
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "connected after reinitialise")
	subscribed(t, c, "re/sentinel", 1)
	watcher:publish("re/a", "old subscription", 1)
	watcher:publish("re/sentinel", "s", 1)
	t:ok(T.wait_until(function() return #new_msgs >= 1 end), "sentinel")
	mqtt.sleep(0.2)
	t:eq(new_msgs, { "re/sentinel" }, "the old subscription was not restored")
	t:eq(old_msgs, {}, "old callbacks never ran")

	-- the will was dropped by reinitialise: a clean disconnect and another reinitialise send none
	c:reinitialise{ client_id = "basic-reinit-3" }
	t:eq(c.client_id, "basic-reinit-3", "keyword form")
	mqtt.sleep(0.3)
	t:eq(#got, 1, "no second will")
	watcher:disconnect()
end)

test("will_clear: no will when the connection drops", function(t)
	local watcher = connected(t, "basic-wc-watch")
	local got = collector(watcher)
	subscribed(t, watcher, "wc/#", 1)
	local c = mqtt.Client("basic-wc")
	c:will_set("wc/basic-wc", "gone", 1)
	c:will_clear()
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	c:reinitialise()   -- drops the socket without DISCONNECT
	watcher:publish("wc/sentinel", "s", 1)
	t:ok(T.wait_until(function() return #got >= 1 end), "sentinel")
	mqtt.sleep(0.2)
	t:eq(payloads(got), { "s" }, "no will was published")
	watcher:disconnect()
end)

test("a QoS 1 message published before connect() is sent once connected", function(t)
	local sub = connected(t, "basic-early-sub")
	local got = collector(sub)
	subscribed(t, sub, "early/#", 1)
	local c = mqtt.Client("basic-early")
	local info = c:publish("early/x", "queued", 1)
	t:eq(info.rc, mqtt.MQTT_ERR_SUCCESS, "rc: queued")
	t:eq(info:is_published(), false, "not published yet")
	c:connect()
	t:eq(info:wait_for_publish(5), true, "acknowledged after connecting")
	t:ok(T.wait_until(function() return #got == 1 end), "delivered")
	t:eq(got[1].payload, "queued", "payload")
	sub:disconnect()
	c:disconnect()
end)

test("a <close> client sends DISCONNECT (no will) and is closed", function(t)
	local watcher = connected(t, "basic-close-watch")
	local got = collector(watcher)
	subscribed(t, watcher, "closewill/#", 1)
	local outside
	do
		local c <close> = mqtt.Client("basic-close")
		c:will_set("closewill/basic-close", "gone", 1)
		c:connect()
		t:ok(T.wait_until(function() return c:is_connected() end), "connected")
		outside = c
	end
	t:eq(tostring(outside), "mqlua.Client(closed)", "tostring after close")
	t:raises(function() outside:publish("a", "b") end, "attempt to use a closed Client")
	watcher:publish("closewill/sentinel", "s", 1)
	t:ok(T.wait_until(function() return #got >= 1 end), "sentinel")
	mqtt.sleep(0.2)
	t:eq(payloads(got), { "s" }, "no will: the connection ended with a DISCONNECT")
	watcher:disconnect()
end)

test("a connected client nobody references keeps working", function(t)
	local got = {}
	local function start()
		local c = mqtt.Client("basic-orphan")
		c.on_connect = function(client) client:subscribe("orphan/x", 1) end
		c.on_subscribe = function() got.subscribed = true end
		c.on_message = function(client, _, m)
			got[#got + 1] = m.payload
			if m.payload == "bye" then client:disconnect() end
		end
		c:connect()
	end
	start()
	t:ok(T.wait_until(function() collectgarbage() return got.subscribed end), "subscribed")
	collectgarbage()
	collectgarbage()
	local pub = connected(t, "basic-orphan-pub")
	pub:publish("orphan/x", "still here", 1)
	pub:publish("orphan/x", "bye", 1)
	t:ok(T.wait_until(function() collectgarbage() return #got == 2 end), "delivered after full GC cycles")
	t:eq({ got[1], got[2] }, { "still here", "bye" }, "messages")
	pub:disconnect()
end)

test("connect() on a connected client reconnects", function(t)
	local c = connected(t, "basic-twice")
	local connects = 0
	c.on_connect = function() connects = connects + 1 end
	t:eq(c:connect(), 0, "second connect rc")
	t:ok(T.wait_until(function() return connects == 1 end), "on_connect for the new connection")
	t:eq(c:is_connected(), true, "connected")
	local got = collector(c)
	subscribed(t, c, "twice/x", 1)
	c:publish("twice/x", "works", 1)
	t:ok(T.wait_until(function() return #got == 1 end), "the new connection works")
	c:disconnect()
end)

test("3000 QoS 1 messages arrive complete and in order", function(t)
	local sub = connected(t, "basic-many-sub")
	local n, in_order = 0, true
	sub.on_message = function(_, _, m)
		n = n + 1
		if m.payload ~= tostring(n) then in_order = false end
	end
	subscribed(t, sub, "many/x", 1)
	local pub = connected(t, "basic-many-pub")
	-- in batches of 500: mosquitto drops QoS 1 messages beyond 1000 queued for one subscriber
	for batch = 0, 5 do
		local last
		for i = batch * 500 + 1, batch * 500 + 500 do last = pub:publish("many/x", i, 1) end
		t:ok(last:wait_for_publish(20), "the last of batch " .. batch .. " was acknowledged")
		t:ok(T.wait_until(function() return n == batch * 500 + 500 end, 20), "batch " .. batch .. " delivered (" .. n .. ")")
	end
	mqtt.sleep(0.1)
	t:eq(n, 3000, "no more than sent")
	t:ok(in_order, "in order")
	sub:disconnect()
	pub:disconnect()
end)

test("on_log gets libmosquitto's packet trace with its level", function(t)
	local c = mqtt.Client("basic-log")
	local lines = {}
	c.on_log = function(client, userdata, level, text)
		t:ok(rawequal(client, c), "client")
		lines[#lines + 1] = { level, text }
	end
	c:connect()
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	c:disconnect()
	t:ok(T.wait_until(function() return not c:is_connected() end), "disconnected")
	local texts = {}
	for _, l in ipairs(lines) do
		t:eq(l[1], mqtt.MQTT_LOG_DEBUG, "level of " .. l[2])
		texts[#texts + 1] = l[2]
	end
	t:eq(texts, { "Client basic-log sending CONNECT", "Client basic-log received CONNACK (0)",
		"Client basic-log sending DISCONNECT" }, "packet trace")
end)

---------------------------------------------------------------------------
-- several clients

test("three clients in one script exchange messages", function(t)
	local names = { "alpha", "beta", "gamma" }
	local clients, inbox = {}, {}
	for _, name in ipairs(names) do
		local c = connected(t, "basic-3-" .. name)
		inbox[name] = {}
		c.on_message = function(_, _, m) table.insert(inbox[name], m.payload) end
		subscribed(t, c, "three/" .. name, 1)
		clients[name] = c
	end
	for _, from in ipairs(names) do
		for _, to in ipairs(names) do
			if from ~= to then clients[from]:publish("three/" .. to, from .. ">" .. to, 1) end
		end
	end
	t:ok(T.wait_until(function()
		return #inbox.alpha == 2 and #inbox.beta == 2 and #inbox.gamma == 2
	end), "two messages each")
	mqtt.sleep(0.2)
	for _, name in ipairs(names) do table.sort(inbox[name]) end
	t:eq(inbox, {
		alpha = { "beta>alpha", "gamma>alpha" },
		beta = { "alpha>beta", "gamma>beta" },
		gamma = { "alpha>gamma", "beta>gamma" },
	}, "each got exactly the messages addressed to it")
	for _, c in pairs(clients) do c:disconnect() end
end)
