-- mqtt5_callbacks.lua - paho's ReasonCode values and the callback forms
-- selected by protocol and callback_api_version, against a real mosquitto:
-- MQTTv5 with VERSION1 (paho 1.6's v5 forms), VERSION2 on v3 (reason codes
-- made up from the v3 return values, as paho 2.x does) and on v5 (the
-- broker's own reason codes and properties).
--
-- Comparing a ReasonCode: Lua calls __eq only when both operands are tables
-- or userdata, so `rc == 0` is always false. Write `rc.value == 0`,
-- `not rc.is_failure`, or compare with a constructed ReasonCode:
-- `rc == mqtt.ReasonCode(mqtt.PacketTypes.CONNACK, "Success")`.
local mqtt = require "mqlua"
local test = T.test

local b = T.broker()
local PT = mqtt.PacketTypes
local V2 = mqtt.CallbackAPIVersion.VERSION2

-- A client of the given protocol and callback API, connected, or fails the test.
local function connected(t, id, protocol, api, broker)
	broker = broker or b
	local c = mqtt.Client { client_id = id, protocol = protocol, callback_api_version = api }
	local args
	c.on_connect = function(...) args = table.pack(...) end
	t:eq(c:connect(broker.host, broker.port), 0, id .. ": connect rc")
	t:ok(T.wait_until(function() return args ~= nil end), id .. ": on_connect within 5 s")
	c.on_connect = nil
	return c, args
end

-- Waits until list has n entries.
local function wait_n(t, list, n, what)
	t:ok(T.wait_until(function() return #list >= n end), what .. " (got " .. #list .. ")")
end

---------------------------------------------------------------------------
-- ReasonCode

test("ReasonCode: names by packet type, value, getName, is_failure, json", function(t)
	t:eq(PT.CONNACK, 2, "PacketTypes.CONNACK")
	local names = {}
	for _, pt in ipairs { PT.CONNACK, PT.DISCONNECT, PT.SUBACK, PT.PUBACK, PT.UNSUBACK } do
		names[#names + 1] = tostring(mqtt.ReasonCode(pt, 0))
	end
	t:eq(names, { "Success", "Normal disconnection", "Granted QoS 0", "Success", "Success" }, "0 by packet type")
	local g1 = mqtt.ReasonCode(PT.SUBACK, 1)
	t:eq({ tostring(g1), g1.value, g1:getName(), g1.is_failure, g1.packetType, g1:json() },
		{ "Granted QoS 1", 1, "Granted QoS 1", false, PT.SUBACK, "Granted QoS 1" }, "Granted QoS 1")
	local na = mqtt.ReasonCode(PT.SUBACK, "Not authorized")
	t:eq({ na.value, na.is_failure }, { 135, true }, "by name: 0x87, a failure")
	t:eq(tostring(mqtt.ReasonCode(PT.DISCONNECT)), "Normal disconnection", "DISCONNECT's default name")
	t:eq(tostring(mqtt.ReasonCode(PT.DISCONNECT, "Success")), "Normal disconnection", "Success means normal there")
	t:eq(tostring(mqtt.ReasonCodes(PT.PUBACK, 16)), "No matching subscribers", "paho 1.x's ReasonCodes name")
	t:eq(mqtt.ReasonCode { packetType = PT.CONNACK, identifier = 136 }:getName(), "Server unavailable", "named form")
end)

test("ReasonCode: == between ReasonCodes, < and <= against numbers", function(t)
	local ok = mqtt.ReasonCode(PT.CONNACK, "Success")
	t:ok(ok == mqtt.ReasonCode(PT.CONNACK, 0), "== another ReasonCode of the same value")
	t:ok(ok ~= mqtt.ReasonCode(PT.CONNACK, 135), "~= one of another value")
	t:ok(ok == mqtt.ReasonCode(PT.SUBACK, 0), "equal by value, as paho's __eq__")
	t:eq(ok == 0, false, "== a number is never true in Lua (use rc.value == 0)")
	t:eq(ok.value == 0, true, "the idiom")
	local na = mqtt.ReasonCode(PT.SUBACK, 135)
	t:eq({ na < 0x80, na >= 0x80, na <= 135, 135 <= na, 1 < na, na > 134, ok < na }, { false, true, true, true, true, true, true },
		"ordering against numbers and ReasonCodes")
	t:raises(function() return na < "x" end, "attempt to compare a ReasonCode with a string")
end)

test("ReasonCode: names and values the packet type does not have raise, naming the argument", function(t)
	t:raises(function() mqtt.ReasonCode(PT.SUBACK, "Banned") end,
		"bad argument #2 to '.-ReasonCode' %('Banned' is not a reason code name of packet type 9%)")
	t:raises(function() mqtt.ReasonCode(PT.CONNACK, 1) end, "1 is not a reason code of packet type 2")
	t:raises(function() mqtt.ReasonCode(99, 0) end, "bad argument #1 .*packet_type must be one of mqtt.PacketTypes")
end)

test("CallbackAPIVersion: values, the positional paho 2.x form, errors", function(t)
	t:eq(tostring(mqtt.CallbackAPIVersion.VERSION1), "CallbackAPIVersion.VERSION1", "tostring")
	t:eq(mqtt.CallbackAPIVersion.VERSION2.value, 2, "value")
	local c = mqtt.Client(V2, "cb-positional", false)
	t:eq({ c.client_id, c.clean_session }, { "cb-positional", false }, "client_id and clean_session after the version")
	local d = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1)
	t:match(d.client_id, "^mqlua%x+$", "VERSION1 alone: a generated id")
	t:ok(rawequal(c.callback_api_version, V2), "c.callback_api_version is CallbackAPIVersion.VERSION2")
	t:ok(rawequal(mqtt.Client("cb-default").callback_api_version, mqtt.CallbackAPIVersion.VERSION1),
		"VERSION1 when not given")
	t:ok(rawequal(mqtt.Client { client_id = "cb-kw", callback_api_version = V2 }.callback_api_version, V2),
		"keyword form")
	t:raises(function() c.callback_api_version = mqtt.CallbackAPIVersion.VERSION1 end,
		"callback_api_version is read%-only: use Client%(callback_api_version, %.%.%.%)")
	t:raises(function() mqtt.Client { client_id = "x", callback_api_version = 2 } end,
		"callback_api_version must be mqtt.CallbackAPIVersion.VERSION1 or VERSION2")
end)

---------------------------------------------------------------------------
-- MQTTv5 with VERSION1: paho 1.6's v5 forms

test("v5 VERSION1: on_connect(client, userdata, flags, reason_code, properties) with the CONNACK's properties", function(t)
	local pb = T.broker { config = "max_inflight_messages 7", default = false }
	local c, args = connected(t, "cb5-connect", mqtt.MQTTv5, nil, pb)
	t:eq(args.n, 5, "five arguments")
	t:ok(rawequal(args[1], c), "client")
	t:eq(args[3].session_present, false, "flags.session_present")
	t:eq({ tostring(args[4]), args[4].value }, { "Success", 0 }, "reason_code")
	t:ok(args[4] == mqtt.ReasonCode(PT.CONNACK, "Success"), "== a constructed ReasonCode")
	t:eq(args[5].ReceiveMaximum, 7, "the broker's Receive Maximum from its CONNACK")
	c:disconnect()
end)

test("v5 VERSION1: on_subscribe(mid, reason_codes, properties), on_unsubscribe(mid, properties, reason_codes)", function(t)
	local c = connected(t, "cb5-sub", mqtt.MQTTv5)
	local subs, unsubs = {}, {}
	c.on_subscribe = function(...) subs[#subs + 1] = table.pack(...) end
	c.on_unsubscribe = function(...) unsubs[#unsubs + 1] = table.pack(...) end
	local _, mid = c:subscribe({ { "cb5/a", 1 }, { "cb5/b", 2 }, { "cb5/c", 0 } })
	wait_n(t, subs, 1, "on_subscribe")
	local a = subs[1]
	t:eq({ a.n, a[3], type(a[4]), type(a[5]) }, { 5, mid, "table", "table" }, "(client, userdata, mid, list, properties)")
	local names = {}
	for i, rc in ipairs(a[4]) do names[i] = tostring(rc) end
	t:eq(names, { "Granted QoS 1", "Granted QoS 2", "Granted QoS 0" }, "a ReasonCode per filter, in list order")
	local _, umid = c:unsubscribe("cb5/a")
	wait_n(t, unsubs, 1, "on_unsubscribe")
	local u = unsubs[1]
	t:eq({ u.n, u[3], type(u[4]), type(u[5]) }, { 5, umid, "table", "table" }, "(client, userdata, mid, properties, reason_codes)")
	c:disconnect()
end)

-- A DISCONNECT the broker sends: mosquitto 2.0.11 answers a Topic Alias above
-- its maximum (10) with DISCONNECT 148. (It sends none on a session takeover: the
-- socket just closes.) libmosquitto 2.0.11 drops the DISCONNECT's properties, so
-- properties come empty.
local function provoke_disconnect(c)
	c:publish("cb/alias", "x", 0, false, { TopicAlias = 50 })
end

test("v5 VERSION1: on_disconnect(ReasonCode, properties) for the broker's DISCONNECT", function(t)
	local c = connected(t, "cb5-disc", mqtt.MQTTv5)
	local got = {}
	c.on_disconnect = function(client, _, rc, props)
		got[#got + 1] = { tostring(rc), type(rc) ~= "number" and rc.value, type(props) }
		client:disconnect()   -- no reconnect
	end
	provoke_disconnect(c)
	wait_n(t, got, 1, "on_disconnect")
	t:eq(got[1], { "Topic alias invalid", 148, "table" }, "the broker's DISCONNECT reason")
	t:match(c:last_error(), "the broker disconnected the client: Topic alias invalid", "last_error says why")
end)

test("v5 VERSION1: on_disconnect(rc, nil) for a lost connection and for disconnect()", function(t)
	local c = connected(t, "cb5-takeover", mqtt.MQTTv5)
	local got = {}
	c.on_disconnect = function(client, _, rc, props)
		got[#got + 1] = { rc, props }
		client:disconnect()   -- no reconnect: it would take the session back
	end
	local thief = connected(t, "cb5-takeover", mqtt.MQTTv5)   -- the same client id: the first loses its socket
	wait_n(t, got, 1, "on_disconnect of the first client")
	t:eq(got[1], { mqtt.MQTT_ERR_CONN_LOST }, "(MQTT_ERR_CONN_LOST, nil)")
	local own = {}
	thief.on_disconnect = function(...) own[#own + 1] = table.pack(...) end
	thief:disconnect()
	wait_n(t, own, 1, "on_disconnect after disconnect()")
	t:eq({ own[1].n, own[1][3], own[1][4] }, { 4, 0, nil }, "(client, userdata, 0, nil)")
end)

test("v5 VERSION1: on_publish(client, userdata, mid) is unchanged", function(t)
	local c = connected(t, "cb5-pub", mqtt.MQTTv5)
	local got = {}
	c.on_publish = function(...) got[#got + 1] = table.pack(...) end
	local info = c:publish("cb5/pub", "x", 1)
	wait_n(t, got, 1, "on_publish")
	t:eq({ got[1].n, got[1][3] }, { 3, info.mid }, "three arguments, the mid")
	c:disconnect()
end)

---------------------------------------------------------------------------
-- VERSION2 on MQTT v3.1.1: paho 2.x's forms with made-up reason codes

test("VERSION2 on v3: every callback in the paho 2.x form", function(t)
	local c, args = connected(t, "cb2v3", mqtt.MQTTv311, V2)
	t:eq({ args.n, args[3].session_present, tostring(args[4]), args[4].value, args[5] },
		{ 5, false, "Success", 0, {} }, "on_connect(client, userdata, flags, Success, {})")
	local ev = {}
	c.on_subscribe = function(_, _, mid, rcs, props)
		ev[#ev + 1] = { "sub", mid, tostring(rcs[1]), tostring(rcs[2]), props }
	end
	c.on_publish = function(_, _, mid, rc, props) ev[#ev + 1] = { "pub", mid, tostring(rc), props } end
	c.on_unsubscribe = function(_, _, mid, rcs, props) ev[#ev + 1] = { "unsub", mid, rcs, props } end
	c.on_disconnect = function(_, _, flags, rc, props)
		ev[#ev + 1] = { "disc", flags.is_disconnect_packet_from_server, tostring(rc), rc.value, props }
	end
	local _, smid = c:subscribe({ { "cb2v3/a", 1 }, { "cb2v3/b", 2 } })
	wait_n(t, ev, 1, "on_subscribe")
	local info = c:publish("cb2v3/a", "x", 1)
	wait_n(t, ev, 2, "on_publish")
	local _, umid = c:unsubscribe("cb2v3/a")
	wait_n(t, ev, 3, "on_unsubscribe")
	c:disconnect()
	wait_n(t, ev, 4, "on_disconnect")
	t:eq(ev, {
		{ "sub", smid, "Granted QoS 1", "Granted QoS 2", {} },
		{ "pub", info.mid, "Success", {} },
		{ "unsub", umid, {}, {} },
		{ "disc", false, "Normal disconnection", 0, {} },
	}, "reason codes made up from the v3 packets, empty properties")
end)

test("VERSION2 on v3: a refused CONNACK (5) becomes the v5 reason 'Not authorized'; v1 keeps the number", function(t)
	local closed = T.broker { allow_anonymous = false, default = false }
	local got = {}
	for _, api in ipairs { V2, mqtt.CallbackAPIVersion.VERSION1 } do
		local c = mqtt.Client { client_id = "cb2v3-refused", callback_api_version = api }
		c.on_connect = function(client, _, _, rc)
			got[#got + 1] = type(rc) == "number" and rc or tostring(rc) .. "/" .. rc.value
			client:disconnect()
		end
		c:connect(closed.host, closed.port)
		t:ok(T.wait_until(function() return #got == (api == V2 and 1 or 2) end), "on_connect")
	end
	t:eq(got, { "Not authorized/135", 5 }, "VERSION2: ReasonCode 135; VERSION1: CONNACK_REFUSED_NOT_AUTHORIZED")
	closed:stop()
end)

---------------------------------------------------------------------------
-- VERSION2 on MQTT v5: the broker's reason codes and properties

test("VERSION2 on v5: on_publish gets the PUBACK's reason (No matching subscribers)", function(t)
	local c = connected(t, "cb2v5-pub", mqtt.MQTTv5, V2)
	local got = {}
	c.on_publish = function(_, _, mid, rc, props) got[#got + 1] = { mid, tostring(rc), rc.value, rc.is_failure, type(props) } end
	local info = c:publish("cb2v5/nobody/listens", "x", 1)
	wait_n(t, got, 1, "on_publish")
	t:eq(got[1], { info.mid, "No matching subscribers", 16, false, "table" }, "(mid, reason_code, properties)")
	c:disconnect()
end)

test("VERSION2 on v5: on_disconnect(flags, reason_code, properties): the broker's, a lost connection, our own", function(t)
	local got = {}
	local function record(client, _, flags, rc, props)
		got[#got + 1] = { flags.is_disconnect_packet_from_server, tostring(rc), rc.value, props }
		client:disconnect()
	end
	local c = connected(t, "cb2v5-disc", mqtt.MQTTv5, V2)
	c.on_disconnect = record
	provoke_disconnect(c)
	wait_n(t, got, 1, "on_disconnect")
	t:eq(got[1], { true, "Topic alias invalid", 148, {} }, "a DISCONNECT from the broker")
	local first = connected(t, "cb2v5-takeover", mqtt.MQTTv5, V2)
	first.on_disconnect = record
	local thief = connected(t, "cb2v5-takeover", mqtt.MQTTv5, V2)
	wait_n(t, got, 2, "on_disconnect of the taken-over client")
	t:eq(got[2], { false, "Unspecified error", 128, {} }, "a lost connection, as paho reports MQTT_ERR_CONN_LOST")
	thief.on_disconnect = record
	thief:disconnect()
	wait_n(t, got, 3, "on_disconnect after disconnect()")
	t:eq(got[3], { false, "Normal disconnection", 0, {} }, "our own disconnect")
end)
