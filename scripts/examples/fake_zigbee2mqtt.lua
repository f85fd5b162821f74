-- fake_zigbee2mqtt.lua: a stand-in for zigbee2mqtt, for testing rules
-- without radios. It announces itself as zigbee2mqtt does
-- (zigbee2mqtt/bridge/state {"state":"online"}, retained), answers every
-- zigbee2mqtt/<device>/set by publishing the device's new state on
-- zigbee2mqtt/<device> (retained, as zigbee2mqtt reports it), and plays
-- sensors: a message on fake/<device> with a JSON payload is published as
-- that device's report, e.g.
--
--   mosquitto_pub -t fake/hall_motion -m '{"occupancy":true}'
--
--   mqlua --broker mqtt://broker.local scripts/examples/fake_zigbee2mqtt.lua
local mqtt = require "mqlua"

local states = {}   -- device -> its state table

local client = mqtt.Client("fake-zigbee2mqtt", true)
client:will_set("zigbee2mqtt/bridge/state", '{"state":"offline"}', 1, true)

local function report(c, device, fields)
  local state = states[device] or {}
  for k, v in pairs(fields) do state[k] = v end
  state.linkquality = 120
  states[device] = state
  c:publish("zigbee2mqtt/" .. device, mqtt.json.encode(state), 1, true)
end

client:message_callback_add("zigbee2mqtt/+/set", function(c, userdata, msg)
  local device = msg.topic:match("^zigbee2mqtt/([^/]+)/set$")
  local fields = msg:json()
  if device and type(fields) == "table" then report(c, device, fields) end
end)

client:message_callback_add("fake/+", function(c, userdata, msg)
  local device = msg.topic:match("^fake/([^/]+)$")
  local fields, err = msg:json()
  if type(fields) ~= "table" then
    io.stderr:write("fake/", tostring(device), ": not a JSON object (", tostring(err), ")\n")
    return
  end
  report(c, device, fields)
end)

client.on_connect = function(c, userdata, flags, rc)
  if rc ~= 0 then return end
  c:publish("zigbee2mqtt/bridge/state", '{"state":"online"}', 1, true)
  c:subscribe({ { "zigbee2mqtt/+/set", 1 }, { "fake/+", 1 } })
end

client.on_subscribe = function()
  io.stderr:write("fake_zigbee2mqtt: online\n")
end

client:connect()
