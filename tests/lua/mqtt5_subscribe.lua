-- mqtt5_subscribe.lua - MQTT v5 subscribing against a real mosquitto:
-- SubscribeOptions (no_local, retain_as_published, retain_handling) and
-- their effect on what the broker delivers, SUBACK reason codes (a filter
-- denied by an ACL), subscription identifiers arriving in msg.properties,
-- subscribe/unsubscribe properties, and options kept when the runtime
-- subscribes again after a reconnect without a session.
local mqtt = require "mqlua"
local test = T.test

local b = T.broker()
local SO = mqtt.SubscribeOptions

local function client(id, protocol, api)
	return mqtt.Client { client_id = id, protocol = protocol or mqtt.MQTTv5, callback_api_version = api }
end

-- A v5 client connected to broker (default: the file's), or fails the test.
local function connected(t, id, broker, protocol, api)
	local c = client(id, protocol, api)
	broker = broker or b
	t:eq(c:connect(broker.host, broker.port), 0, id .. ": connect rc")
	t:ok(T.wait_until(function() return c:is_connected() end), id .. ": connected within 5 s")
	return c
end

-- c:subscribe(...) and wait for on_subscribe; returns its reason codes (or granted qos).
local function subscribed(t, c, ...)
	local codes
	c.on_subscribe = function(_, _, _, rcs) codes = rcs end
	local rc = c:subscribe(...)
	t:eq(rc, 0, "subscribe rc")
	t:ok(T.wait_until(function() return codes ~= nil end), "SUBACK within 5 s")
	c.on_subscribe = nil
	return codes
end

local function names(list)
	local out = {}
	for i, rc in ipairs(list) do out[i] = tostring(rc) end
	return out
end

---------------------------------------------------------------------------
-- the SubscribeOptions value

test("SubscribeOptions: keyword, camelCase and positional forms, constants, defaults", function(t)
	t:eq({ SO.RETAIN_SEND_ON_SUBSCRIBE, SO.RETAIN_SEND_IF_NEW_SUB, SO.RETAIN_DO_NOT_SEND }, { 0, 1, 2 }, "on SubscribeOptions")
	t:eq({ mqtt.RETAIN_SEND_ON_SUBSCRIBE, mqtt.RETAIN_SEND_IF_NEW_SUB, mqtt.RETAIN_DO_NOT_SEND }, { 0, 1, 2 }, "on mqtt")
	local function fields(o)
		return { o.QoS, o.noLocal, o.retainAsPublished, o.retainHandling, o.qos, o.no_local, o.retain_as_published, o.retain_handling }
	end
	t:eq(fields(SO()), { 0, false, false, 0, 0, false, false, 0 }, "defaults")
	t:eq(fields(SO { qos = 1, no_local = true, retain_as_published = true, retain_handling = 2 }),
		{ 1, true, true, 2, 1, true, true, 2 }, "snake_case keywords")
	t:eq(fields(SO { qos = 2, noLocal = true, retainHandling = SO.RETAIN_SEND_IF_NEW_SUB }),
		{ 2, true, false, 1, 2, true, false, 1 }, "paho's camelCase keywords")
	t:eq(fields(SO(1, false, true, 2)), { 1, false, true, 2, 1, false, true, 2 }, "positional")
	t:eq(tostring(SO(1, true)), "SubscribeOptions(QoS=1, noLocal=true, retainAsPublished=false, retainHandling=0)", "tostring")
end)

test("SubscribeOptions: bad values raise naming the argument", function(t)
	t:raises(function() SO(3) end, "qos must be 0, 1 or 2, got 3")
	t:raises(function() SO { retain_handling = 3 } end, "retainHandling must be 0, 1 or 2")
	t:raises(function() SO { qos = 1, no_local = 1 } end, "noLocal must be a boolean, got number")
	t:raises(function() SO { qos = 1, nolocal = true } end, "unknown argument 'nolocal'")
end)

test("options and properties are MQTT v5 only: errors on v3 name the argument", function(t)
	local c = mqtt.Client("v3-opts")
	t:raises(function() c:subscribe("a", SO(1)) end, "bad argument #1 to 'subscribe' %(SubscribeOptions need protocol = mqtt.MQTTv5%)")
	t:raises(function() c:subscribe({ { "a", 0 }, { "b", SO(1, true) } }) end, "SubscribeOptions need protocol = mqtt.MQTTv5")
	t:raises(function() c:subscribe("a", 0, nil, { UserProperty = { { "k", "v" } } }) end,
		"bad argument #4 to 'subscribe' %(properties need protocol = mqtt.MQTTv5%)")
	t:raises(function() c:unsubscribe("a", { UserProperty = { { "k", "v" } } }) end, "properties need protocol = mqtt.MQTTv5")
	local v5 = client("v5-opts")
	t:raises(function() v5:subscribe("a", 1, SO(1)) end, "qos and options cannot be combined")
	t:raises(function() v5:subscribe("a", 0, 5) end, "options must be a SubscribeOptions, got number")
	t:raises(function() v5:subscribe({ "a", 1 }, nil, SO(1)) end, "options must not be given with a table of topics")
	t:raises(function() v5:subscribe("a", 0, nil, { Bogus = 1 }) end, "unknown property 'Bogus'")
end)

---------------------------------------------------------------------------
-- each option's effect on a real broker

test("no_local: the client's own publish is not delivered to it; others' are", function(t)
	local c = connected(t, "nl-self")
	local other = connected(t, "nl-other")
	local got = T.collector(c)
	t:eq(names(subscribed(t, c, "nl/t", SO { qos = 1, no_local = true })), { "Granted QoS 1" }, "granted")
	c:publish("nl/t", "mine", 1)
	other:publish("nl/t", "theirs", 1)
	t:ok(T.wait_until(function() return #got >= 1 end), "a message")
	mqtt.sleep(0.3)
	t:eq(T.payloads(got), { "theirs" }, "only the other client's message")
	-- without no_local the same client gets its own
	local plain = connected(t, "nl-plain")
	local mine = T.collector(plain)
	subscribed(t, plain, "nl/t", SO(1))
	plain:publish("nl/t", "echo", 1)
	t:ok(T.wait_until(function() return #mine >= 1 end), "own message without no_local")
	t:eq(T.payloads(mine), { "echo" }, "echoed")
	c:disconnect(); other:disconnect(); plain:disconnect()
end)

test("retain_as_published: the retain flag of a forwarded retained publish is kept only with it", function(t)
	local kept, cleared = connected(t, "rap-on"), connected(t, "rap-off")
	local got_kept, got_cleared = T.collector(kept), T.collector(cleared)
	subscribed(t, kept, { { "rap/t", SO { qos = 1, retain_as_published = true } } })
	subscribed(t, cleared, { { "rap/t", SO(1) } })
	local pub = connected(t, "rap-pub")
	pub:publish("rap/t", "update", 1, true)
	t:ok(T.wait_until(function() return #got_kept == 1 and #got_cleared == 1 end), "both got the update")
	t:eq({ got_kept[1].payload, got_kept[1].retain }, { "update", true }, "retain_as_published: retain stays set")
	t:eq({ got_cleared[1].payload, got_cleared[1].retain }, { "update", false }, "default: retain cleared on forwarding")
	pub:publish("rap/t", "", 1, true)   -- clear the retained message
	kept:disconnect(); cleared:disconnect(); pub:disconnect()
end)

test("retain_handling 0/1/2: retained messages on every subscribe, on a new one only, never", function(t)
	local pub = connected(t, "rh-pub")
	pub:publish("rh/t", "kept", 1, true):wait_for_publish(5)
	local function retained_on_subscribe(c, got, rh)
		local before = #got
		subscribed(t, c, "rh/t", SO { qos = 1, retain_handling = rh })
		mqtt.sleep(0.3)
		return #got - before
	end
	local counts = {}
	for rh = 0, 2 do
		local c = connected(t, "rh-" .. rh)
		local got = T.collector(c)
		counts[#counts + 1] = { retained_on_subscribe(c, got, rh), retained_on_subscribe(c, got, rh) }
		for _, m in ipairs(got) do t:eq({ m.payload, m.retain }, { "kept", true }, "the retained message") end
		c:disconnect()
	end
	t:eq(counts, { { 1, 1 }, { 1, 0 }, { 0, 0 } }, "retained messages on a first and a repeated subscribe, per handling")
	pub:publish("rh/t", "", 1, true)
	pub:disconnect()
end)

---------------------------------------------------------------------------
-- SUBACK reason codes

-- A broker whose ACL (mosquitto's dynamic-security plugin: acl_file does not
-- check subscriptions in mosquitto 2.0) lets anonymous clients subscribe to open/# only.
local function acl_broker(t)
	local plugin = T.sh("ls /usr/lib/*/mosquitto_dynamic_security.so 2>/dev/null"):match("%S+")
	t:ok(plugin, "mosquitto's dynamic-security plugin is installed")
	local dir = T.tmpdir()
	local f = assert(io.open(dir .. "/dynsec.json", "w"))
	f:write([[{"clients": [], "groups": [{"groupname": "anon", "roles": [{"rolename": "open"}]}],
 "anonymousGroup": "anon",
 "roles": [{"rolename": "open", "acls": [{"acltype": "subscribePattern", "topic": "open/#", "allow": true}]}],
 "defaultACLAccess": {"publishClientSend": false, "publishClientReceive": true, "subscribe": false, "unsubscribe": true}}]])
	f:close()
	return T.broker { config = "plugin " .. plugin .. "\nplugin_opt_config_file " .. dir .. "/dynsec.json", default = false }
end

test("SUBACK reason codes: a filter denied by the broker's ACL is 'Not authorized' (0x87) on v5", function(t)
	local acl = acl_broker(t)
	local v5 = connected(t, "acl-v5", acl)
	local codes = subscribed(t, v5, { { "open/a", 1 }, { "secret/a", 1 } })
	t:eq(names(codes), { "Granted QoS 1", "Not authorized" }, "per filter, in order")
	t:eq({ codes[2].value, codes[2].is_failure, codes[1].is_failure }, { 0x87, true, false }, "0x87, a failure")
	local v3 = connected(t, "acl-v3", acl, mqtt.MQTTv311)
	t:eq(subscribed(t, v3, { { "open/a", 1 }, { "secret/a", 1 } }), { 1, 0x80 }, "v3 VERSION1: granted qos, 0x80 for the refusal")
	local v3b = connected(t, "acl-v3-api2", acl, mqtt.MQTTv311, mqtt.CallbackAPIVersion.VERSION2)
	t:eq(names(subscribed(t, v3b, { { "open/a", 1 }, { "secret/a", 2 } })), { "Granted QoS 1", "Unspecified error" },
		"v3 VERSION2: 0x80 as paho names it")
	v5:disconnect(); v3:disconnect(); v3b:disconnect()
	acl:stop()
end)

---------------------------------------------------------------------------
-- properties

test("a SubscriptionIdentifier arrives in msg.properties; UserProperty on subscribe and unsubscribe", function(t)
	local c = connected(t, "sid")
	local got = {}
	c.on_message = function(_, _, m) got[#got + 1] = { m.topic, m.properties and m.properties.SubscriptionIdentifier } end
	subscribed(t, c, "sid/a/#", 1, nil, { SubscriptionIdentifier = 42, UserProperty = { { "who", "test" } } })
	subscribed(t, c, { { "sid/b", SO(1) } }, nil, nil, { SubscriptionIdentifier = 7 })
	c:publish("sid/a/x", "1", 1)
	c:publish("sid/b", "2", 1)
	t:ok(T.wait_until(function() return #got == 2 end), "two messages")
	table.sort(got, function(x, y) return x[1] < y[1] end)
	t:eq(got, { { "sid/a/x", { 42 } }, { "sid/b", { 7 } } }, "each with its subscription's identifier")
	local unacked
	c.on_unsubscribe = function(_, _, mid) unacked = mid end
	local rc, mid = c:unsubscribe({ "sid/a/#" }, { UserProperty = { { "why", "done" } } })
	t:eq(rc, 0, "unsubscribe with properties")
	t:ok(T.wait_until(function() return unacked == mid end), "UNSUBACK")
	c:disconnect()
end)

test("resubscription after a reconnect without a session keeps options and properties", function(t)
	local pb = T.broker { default = false }
	local port = pb.port
	local c = client("resub-v5")
	c:reconnect_delay_set(0.1, 0.5)
	local connects = 0
	c.on_connect = function() connects = connects + 1 end
	local got = {}
	c.on_message = function(_, _, m) got[#got + 1] = { m.payload, m.properties and m.properties.SubscriptionIdentifier } end
	t:eq(c:connect(pb.host, pb.port), 0, "connect")
	t:ok(T.wait_until(function() return connects == 1 end), "connected")
	subscribed(t, c, "resub/t", SO { qos = 1, no_local = true }, nil, { SubscriptionIdentifier = 9 })
	pb:stop()
	pb = T.broker { port = port, default = false }
	t:ok(T.wait_until(function() return connects == 2 end, 10), "connected again to the fresh broker")
	mqtt.sleep(0.3)   -- the runtime's SUBSCRIBE is acknowledged
	c:publish("resub/t", "own", 1)
	local other = connected(t, "resub-other", pb)
	other:publish("resub/t", "other", 1)
	t:ok(T.wait_until(function() return #got >= 1 end), "a message after the reconnect")
	mqtt.sleep(0.3)
	t:eq(got, { { "other", { 9 } } }, "no_local still holds and the identifier is still sent")
	c:disconnect(); other:disconnect()
	pb:stop()
end)
