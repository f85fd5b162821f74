-- door_alert_test.lua: the door alert example with a limit of 1 s instead of
-- 10 minutes, the door played by the fake zigbee2mqtt.
-- Run it:   mqlua test scripts/examples/door_alert_test.lua
local mqtt = require "mqlua"
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local url = T.broker().url

local function example(name, env, ready)
  return T.spawn.start(string.format("env %s %s --broker %s %s/%s.lua", env or "", T.mqlua(), url, dir, name),
    ready)
end

example("fake_zigbee2mqtt", nil, "online")
example("door_alert", "DOOR_OPEN_S=1", "watching")

test("a door left open raises a retained alert, closing it clears the alert", function(t)
  local c = T.connected(t, "door-fixture")
  T.subscribed(t, c, "alerts/#", 1)
  c:publish("fake/front_door", mqtt.json.encode({ contact = false }), 1)
  t:no_message(c, "alerts/front_door", 0.6)
  local alert = t:expect_message(c, "alerts/front_door", { timeout = 3 })
  t:eq(alert.retain, false, "a live alert (retained for later subscribers)")
  t:match(alert.payload, '"alert":"front_door open for 0 minutes"', "the alert text")
  local late = T.connected(t, "door-late")
  T.subscribed(t, late, "alerts/front_door", 1)
  t:expect_message(late, "alerts/front_door", { match = function(m) return m.retain and #m.payload > 0 end })
  c:publish("fake/front_door", mqtt.json.encode({ contact = true }), 1)
  t:expect_message(c, "alerts/front_door", { payload = "" })
  late:disconnect()
  c:disconnect()
end)

test("a door opened and closed quickly raises nothing", function(t)
  local c = T.connected(t, "door-fixture-2")
  T.subscribed(t, c, "alerts/#", 1)
  c:publish("fake/front_door", mqtt.json.encode({ contact = false }), 1)
  mqtt.sleep(0.3)
  c:publish("fake/front_door", mqtt.json.encode({ contact = true }), 1)
  t:no_message(c, "alerts/front_door", 1.5)
  c:disconnect()
end)
