-- porch_test.lua: a test fixture for a rule (here defined in the file itself;
-- usually it is a separate script or a device on the same broker).
-- Run it:   mqlua test scripts/examples/porch_test.lua
local mqtt = require "mqlua"

-- the rule under test: motion on the porch turns the porch light on
local ready = false
local rule = mqtt.Client("porch-rule")
rule.on_connect = function(client) client:subscribe("sensors/porch/motion", 1) end
rule.on_subscribe = function() ready = true end
rule:message_callback_add("sensors/porch/motion", function(client, userdata, msg)
  client:publish("lights/porch/set", '{"state":"ON"}', 1)
end)
rule:connect()   -- no host: the fresh broker `mqlua test` started for this file

test("motion turns the porch light on, and only that one", function(t)
  t:ok(T.wait_until(function() return ready end), "the rule is subscribed")
  local c = T.connected(t, "porch-fixture")
  T.subscribed(t, c, "lights/#", 1)
  c:publish("sensors/porch/motion", "1", 1)
  t:expect_message(c, "lights/porch/set", { json = { state = "ON" } })
  t:no_message(c, "lights/hall/set", 0.5)
end)

test("no motion, no light", function(t)
  local c = T.connected(t, "porch-fixture-2")
  t:no_message(c, "lights/porch/set", 0.5)
end)
