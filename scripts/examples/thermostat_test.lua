-- thermostat_test.lua: the thermostat example's hysteresis, its target from a
-- retained message, and the target remembered across a restart.
-- Run it:   mqlua test scripts/examples/thermostat_test.lua
local mqtt = require "mqlua"
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local url = T.broker().url
local store = T.tmpdir() .. "/thermostat.db"

local function thermostat()
  return T.spawn.start(string.format("env MQLUA_STORE=%s %s --broker %s %s/thermostat.lua",
    store, T.mqlua(), url, dir), "thermostat: living_room")
end

local function reading(c, celsius)
  c:publish("zigbee2mqtt/living_room_sensor", mqtt.json.encode({ temperature = celsius }), 1)
end

local function heater(want)
  return { json = { state = want } }
end

local th = thermostat()

test("the heater switches at target -/+ 0.5, not in between", function(t)
  local c = T.connected(t, "thermo-fixture")
  T.subscribed(t, c, "zigbee2mqtt/living_room_heater/set", 1)
  reading(c, 19.0)
  t:expect_message(c, "zigbee2mqtt/living_room_heater/set", heater("ON"))
  reading(c, 20.2)
  reading(c, 19.8)
  t:no_message(c, "zigbee2mqtt/living_room_heater/set", 0.5)
  reading(c, 20.6)
  t:expect_message(c, "zigbee2mqtt/living_room_heater/set", heater("OFF"))
  reading(c, 20.9)
  t:no_message(c, "zigbee2mqtt/living_room_heater/set", 0.5)   -- already off: nothing sent
  c:disconnect()
end)

test("a retained target moves the band and survives a restart", function(t)
  local c = T.connected(t, "thermo-fixture-2")
  T.subscribed(t, c, "zigbee2mqtt/living_room_heater/set", 1)
  c:publish("thermostat/living_room/target", "22", 1, true)
  mqtt.sleep(0.3)
  reading(c, 21.0)                                       -- below 22 - 0.5
  t:expect_message(c, "zigbee2mqtt/living_room_heater/set", heater("ON"))
  c:publish("thermostat/living_room/target", "", 1, true)   -- no retained target any more
  mqtt.sleep(0.3)
  th:stop()
  th = thermostat()
  reading(c, 21.0)                                       -- still below the remembered 22
  t:expect_message(c, "zigbee2mqtt/living_room_heater/set", heater("ON"))
  c:disconnect()
end)
