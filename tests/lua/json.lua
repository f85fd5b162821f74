-- json.lua - mqlua.json (lua-cjson) and msg:json(), which returns nil and
-- the reason for a payload that is not JSON instead of raising.
local mqtt = require "mqlua"
local test = T.test

test("mqlua.json encodes and decodes", function(t)
	t:eq(mqtt.json.encode({ state = "ON" }), '{"state":"ON"}', "encode")
	local v = mqtt.json.decode('{"t":21.5,"on":true,"list":[1,2]}')
	t:eq(v.t, 21.5, "number")
	t:eq(v.on, true, "boolean")
	t:eq(#v.list, 2, "array")
	t:raises(function() mqtt.json.decode("{") end, "Expected")
end)

test("msg:json() decodes the payload, or returns nil and the reason", function(t)
	T.broker()
	local c = mqtt.Client("json-client")
	local got = {}
	c.on_connect = function(cl) cl:subscribe("json/#", 0) end
	c.on_subscribe = function(cl)
		cl:publish("json/good", '{"temperature":19.5,"unit":"C"}')
		cl:publish("json/bad", "ON")
		cl:publish("json/empty", nil)
	end
	c.on_message = function(_, _, msg)
		local v, err = msg:json()
		got[msg.topic] = { v = v, err = err }
	end
	t:eq(c:connect(), 0, "connect")
	t:ok(T.wait_until(function() return got["json/empty"] ~= nil end), "three messages")
	t:eq(got["json/good"].v, { temperature = 19.5, unit = "C" }, "decoded")
	t:eq(got["json/bad"].v, nil, "not JSON: nil")
	t:match(got["json/bad"].err, "Expected value", "and the reason")
	t:eq(got["json/empty"].v, nil, "an empty payload is not JSON either")
	t:ok(got["json/empty"].err ~= nil, "with a reason")
	c:disconnect()
end)
