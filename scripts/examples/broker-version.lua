-- broker-version.lua: connect, subscribe to $SYS/broker/version, print it.
-- Run it with an embedded broker:   mqlua --broker embedded scripts/examples/broker-version.lua
-- or against your own:              mqlua --broker mqtt://broker.local scripts/examples/broker-version.lua
local mqtt = require "mqlua"

local client = mqtt.Client()

client.on_connect = function(c, userdata, flags, rc)
  if rc ~= 0 then
    print("connection refused: " .. mqtt.connack_string(rc))
    return
  end
  c:subscribe("$SYS/broker/version")
end

client.on_message = function(c, userdata, msg)
  print(msg.topic .. " " .. msg.payload)
  c:disconnect()
end

local rc, err = client:connect()   -- the broker given with --broker
if rc ~= mqtt.MQTT_ERR_SUCCESS then
  print("cannot connect: " .. err)
  os.exit(1)
end
