-- thermostat.lua: a heater with hysteresis. The heater goes on when the room
-- falls below target - 0.5 °C and off when it rises above target + 0.5 °C;
-- in between it stays as it is, so it does not switch on every small change.
-- The target is set with a retained message on thermostat/<room>/target and
-- remembered in mqlua.state across restarts.
--
--   mqlua --broker mqtt://broker.local scripts/examples/thermostat.lua
--
-- Topics: zigbee2mqtt/<room>_sensor {"temperature": 19.5} in,
-- zigbee2mqtt/<room>_heater/set {"state": "ON"|"OFF"} out.
-- Settings (environment): THERMOSTAT_ROOM (living_room), THERMOSTAT_TARGET
-- (20, until a target message arrives), THERMOSTAT_BAND (0.5).
local mqtt = require "mqlua"

local room = os.getenv("THERMOSTAT_ROOM") or "living_room"
local band = tonumber(os.getenv("THERMOSTAT_BAND") or "0.5")
local key = "thermostat." .. room .. ".target"
local heater   -- "ON", "OFF", or nil until the first reading

local function target()
  return mqtt.state[key] or tonumber(os.getenv("THERMOSTAT_TARGET") or "20")
end

local client = mqtt.Client("example-thermostat-" .. room, true)

local function set_heater(c, state)
  if heater == state then return end
  heater = state
  c:publish("zigbee2mqtt/" .. room .. "_heater/set", mqtt.json.encode({ state = state }), 1)
end

client:message_callback_add("zigbee2mqtt/" .. room .. "_sensor", function(c, userdata, msg)
  local data = msg:json()
  local t = data and tonumber(data.temperature)
  if not t then return end
  if t < target() - band then
    set_heater(c, "ON")
  elseif t > target() + band then
    set_heater(c, "OFF")
  end
end)

client:message_callback_add("thermostat/" .. room .. "/target", function(c, userdata, msg)
  local t = tonumber(msg.payload)
  if t then mqtt.state[key] = t end
end)

client.on_connect = function(c, userdata, flags, rc)
  if rc == 0 then
    c:subscribe({ { "zigbee2mqtt/" .. room .. "_sensor", 1 }, { "thermostat/" .. room .. "/target", 1 } })
  end
end

client.on_subscribe = function()
  io.stderr:write("thermostat: ", room, " at ", target(), " +/- ", band, " C\n")
end

client:connect()
