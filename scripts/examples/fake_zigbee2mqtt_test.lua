-- fake_zigbee2mqtt_test.lua: the fixture itself behaves like zigbee2mqtt.
-- Run it:   mqlua test scripts/examples/fake_zigbee2mqtt_test.lua
local mqtt = require "mqlua"
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local url = T.broker().url

local fake = T.spawn.start(string.format("%s --broker %s %s/fake_zigbee2mqtt.lua", T.mqlua(), url, dir),
  "online")

test("it announces itself online, retained", function(t)
  local c = T.connected(t, "z2m-fixture")
  T.subscribed(t, c, "zigbee2mqtt/bridge/state", 1)
  local msg = t:expect_message(c, "zigbee2mqtt/bridge/state", { json = { state = "online" } })
  t:eq(msg.retain, true, "retained")
  c:disconnect()
end)

test("a /set is answered with the device's new state, merged and retained", function(t)
  local c = T.connected(t, "z2m-fixture-2")
  T.subscribed(t, c, "zigbee2mqtt/lamp", 1)
  c:publish("zigbee2mqtt/lamp/set", mqtt.json.encode({ state = "ON" }), 1)
  t:expect_message(c, "zigbee2mqtt/lamp", { json = { state = "ON", linkquality = 120 } })
  c:publish("zigbee2mqtt/lamp/set", mqtt.json.encode({ brightness = 40 }), 1)
  t:expect_message(c, "zigbee2mqtt/lamp", { json = { state = "ON", brightness = 40, linkquality = 120 } })
  c:disconnect()
end)

test("fake/<device> plays a sensor report; a payload that is not JSON is refused in words", function(t)
  local c = T.connected(t, "z2m-fixture-3")
  T.subscribed(t, c, "zigbee2mqtt/+", 1)
  c:publish("fake/kitchen_motion", mqtt.json.encode({ occupancy = true }), 1)
  t:expect_message(c, "zigbee2mqtt/kitchen_motion", { json = { occupancy = true, linkquality = 120 } })
  c:publish("fake/kitchen_motion", "not json", 1)
  t:no_message(c, "zigbee2mqtt/kitchen_motion", 0.5)
  t:ok(T.wait_until(function() return fake:log():find("fake/kitchen_motion: not a JSON object", 1, true) end),
    "the refusal is logged: " .. fake:log())
  c:disconnect()
end)

test("killed, it leaves zigbee2mqtt/bridge/state offline (its will)", function(t)
  local c = T.connected(t, "z2m-fixture-4")
  T.subscribed(t, c, "zigbee2mqtt/bridge/state", 1)
  t:expect_message(c, "zigbee2mqtt/bridge/state", { json = { state = "online" } })
  os.execute("kill -9 " .. fake.pid)
  t:expect_message(c, "zigbee2mqtt/bridge/state", { json = { state = "offline" }, timeout = 5 })
  c:disconnect()
end)
