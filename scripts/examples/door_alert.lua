-- door_alert.lua: "the front door has been open for 10 minutes". A contact
-- sensor reports zigbee2mqtt/<door> {"contact": false} while the door is
-- open; after 10 open minutes an alert goes to alerts/<door> (retained), and
-- it is cleared when the door closes.
--
--   mqlua --broker mqtt://broker.local scripts/examples/door_alert.lua
--
-- Settings (environment): DOOR_SENSOR (front_door), DOOR_OPEN_S (600 seconds).
local mqtt = require "mqlua"
local rules = require "mqlua.rules"

local door = os.getenv("DOOR_SENSOR") or "front_door"
local limit = tonumber(os.getenv("DOOR_OPEN_S") or "600")
local alerted = false

local client = mqtt.Client("example-door-alert-" .. door, true)

local function is_open(msg)
  local data = msg:json()
  return data ~= nil and data.contact == false
end

local alert_when_held = rules.held(limit, is_open, function(c)
  alerted = true
  c:publish("alerts/" .. door, mqtt.json.encode({
    alert = door .. " open for " .. math.floor(limit / 60) .. " minutes",
    since = os.time() - limit,
  }), 1, true)
end)

client:message_callback_add("zigbee2mqtt/" .. door, function(c, userdata, msg)
  if alerted and not is_open(msg) then
    alerted = false
    c:publish("alerts/" .. door, "", 1, true)   -- an empty retained message clears it
  end
  alert_when_held(c, userdata, msg)
end)

client.on_connect = function(c, userdata, flags, rc)
  if rc == 0 then c:subscribe("zigbee2mqtt/" .. door, 1) end
end

client.on_subscribe = function()
  io.stderr:write("door_alert: watching zigbee2mqtt/", door, "\n")
end

client:connect()
