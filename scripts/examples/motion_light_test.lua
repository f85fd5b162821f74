-- motion_light_test.lua: the motion light example against the fake
-- zigbee2mqtt, with a quiet time of 1 s instead of 5 minutes.
-- Run it:   mqlua test scripts/examples/motion_light_test.lua
local mqtt = require "mqlua"
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local url = T.broker().url

-- Starts an example script against this file's broker, waiting for its ready line.
local function example(name, env, ready)
  return T.spawn.start(string.format("env %s %s --broker %s %s/%s.lua", env or "", T.mqlua(), url, dir, name),
    ready)
end

example("fake_zigbee2mqtt", nil, "online")
example("motion_light", "MOTION_QUIET_S=1", "watching")
example("motion_light", "MOTION_QUIET_S=1 MOTION_SENSOR=porch_motion MOTION_LIGHT=porch_light", "watching")

local function state(want)
  return { match = function(msg) local d = msg:json(); return d and d.state == want end, timeout = 3 }
end

test("motion switches the light on, quiet switches it off after the quiet time", function(t)
  local c = T.connected(t, "motion-fixture")
  T.subscribed(t, c, "zigbee2mqtt/hall_light", 1)
  c:publish("fake/hall_motion", mqtt.json.encode({ occupancy = true }), 1)
  t:expect_message(c, "zigbee2mqtt/hall_light", state("ON"))
  c:publish("fake/hall_motion", mqtt.json.encode({ occupancy = false }), 1)
  t:no_message(c, "zigbee2mqtt/hall_light", 0.6)          -- not before the quiet time
  t:expect_message(c, "zigbee2mqtt/hall_light", state("OFF"))
  c:disconnect()
end)

test("new motion within the quiet time keeps the light on", function(t)
  local c = T.connected(t, "motion-fixture-2")
  T.subscribed(t, c, "zigbee2mqtt/porch_light", 1)
  c:publish("fake/porch_motion", mqtt.json.encode({ occupancy = true }), 1)
  t:expect_message(c, "zigbee2mqtt/porch_light", state("ON"))
  c:publish("fake/porch_motion", mqtt.json.encode({ occupancy = false }), 1)
  mqtt.sleep(0.5)
  c:publish("fake/porch_motion", mqtt.json.encode({ occupancy = true }), 1)
  t:no_message(c, "zigbee2mqtt/porch_light", 1.5)          -- no OFF, and no second ON
  c:publish("fake/porch_motion", mqtt.json.encode({ occupancy = false }), 1)
  t:expect_message(c, "zigbee2mqtt/porch_light", state("OFF"))
  c:disconnect()
end)
