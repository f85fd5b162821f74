-- motion_light.lua: a motion sensor switches a light on; once the sensor has
-- reported no motion for 5 minutes, the light goes off again.
--
--   mqlua --broker mqtt://broker.local scripts/examples/motion_light.lua
--
-- Topics as zigbee2mqtt uses them: the sensor publishes
-- zigbee2mqtt/<sensor> {"occupancy": true|false}; the light obeys
-- zigbee2mqtt/<light>/set {"state": "ON"|"OFF"}.
-- Settings (environment): MOTION_SENSOR (hall_motion), MOTION_LIGHT
-- (hall_light), MOTION_QUIET_S (300 seconds).
local mqtt = require "mqlua"
local rules = require "mqlua.rules"

local sensor = os.getenv("MOTION_SENSOR") or "hall_motion"
local light = os.getenv("MOTION_LIGHT") or "hall_light"
local quiet = tonumber(os.getenv("MOTION_QUIET_S") or "300")

local client = mqtt.Client("example-motion-light-" .. sensor, true)

local sent   -- the last state we asked for: do not repeat a command

local function switch(c, state)
  if state == sent then return end
  sent = state
  c:publish("zigbee2mqtt/" .. light .. "/set", mqtt.json.encode({ state = state }), 1)
  io.stderr:write(os.date("%H:%M:%S "), light, " ", state, "\n")
end

local function occupancy(msg)
  local data = msg:json()
  return data and data.occupancy
end

-- "no motion" must hold for `quiet` seconds; new motion resets the wait
local off_when_quiet = rules.held(quiet,
  function(msg) return occupancy(msg) == false end,
  function(c) switch(c, "OFF") end)

client:message_callback_add("zigbee2mqtt/" .. sensor, function(c, userdata, msg)
  if occupancy(msg) == true then switch(c, "ON") end
  off_when_quiet(c, userdata, msg)
end)

client.on_connect = function(c, userdata, flags, rc)
  if rc == 0 then c:subscribe("zigbee2mqtt/" .. sensor, 1) end
end

client.on_subscribe = function()
  io.stderr:write("motion_light: watching zigbee2mqtt/", sensor, ", switching ", light, "\n")
end

client:connect()
