# lua_module.sh - build/mqlua.so is a plain Lua C module: `require "mqlua"`
# works under lua5.4, and there nothing runs unless the host calls loop*().
# Only the release build makes mqlua.so (an ASan-instrumented module cannot
# be loaded by an uninstrumented lua5.4), so under build-asan/ the cases are
# reported as skipped.
. tests/lib/sh.sh

work=$(tmpdir)
so=$MQLUA_BUILD/mqlua.so

if [ "$(basename -- "$MQLUA_BUILD")" = build-asan ]; then
	ok "lua5.4 can require mqlua.so # skip: build-asan has no mqlua.so (ASan cannot be loaded into lua5.4)"
	finish
fi
if ! command -v lua5.4 >/dev/null; then
	not_ok "lua5.4 is installed" "lua5.4 not found in PATH"
	finish
fi
if [ ! -f "$so" ]; then
	not_ok "$so exists" "build it with ninja"
	finish
fi

cpath="package.cpath = '$MQLUA_BUILD/?.so;' .. package.cpath"

out=$(lua5.4 -e "$cpath; print(require'mqlua')" 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q '^table: 0x' <<<"$out" && ok "lua5.4 -e 'print(require\"mqlua\")' prints the module table" ||
	not_ok "lua5.4 -e 'print(require\"mqlua\")' prints the module table" "exit $rc: $out"

out=$(lua5.4 -e "$cpath; local m = require 'mqlua'
print(m.VERSION, m.MQTTv311, m.MQTT_ERR_NO_CONN, type(m.Client), m.topic_matches_sub('a/#', 'a/b'))
print(package.loaded.mqlua == m, package.searchpath('mqlua', package.cpath))" 2>&1)
rc=$?
want="0.1.0	4	4	function	true
true	$MQLUA_BUILD/mqlua.so"
[ $rc -eq 0 ] && [ "$out" = "$want" ] && ok "under lua5.4: constants, Client, topic helpers, loaded from $so" ||
	not_ok "under lua5.4: constants, Client, topic helpers, loaded from $so" "want:
$want
got (exit $rc):
$out"

out=$(lua5.4 -e "$cpath; local m = require 'mqlua'
local c = m.Client('so-client')
print(c:publish('t', 'x', 0).rc == m.MQTT_ERR_NO_CONN, c:loop(0.01) == m.MQTT_ERR_NO_CONN)" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$out" = "true	true" ] && ok "under lua5.4: an unconnected client says MQTT_ERR_NO_CONN" ||
	not_ok "under lua5.4: an unconnected client says MQTT_ERR_NO_CONN" "exit $rc: $out"

# A round trip driven by the host's own loop_forever(), as with paho.
if start_broker; then
	cat >"$work/roundtrip.lua" <<LUA
$cpath
local mqtt = require "mqlua"
local c = mqtt.Client("so-roundtrip")
c.on_connect = function(cl, _, _, rc) print("on_connect " .. rc); cl:subscribe("so/echo", 1) end
c.on_subscribe = function(cl) cl:publish("so/echo", "hello from lua5.4", 1) end
c.on_message = function(cl, _, msg) print(msg.topic .. " " .. msg.payload); cl:disconnect() end
print("connect " .. c:connect("127.0.0.1", $BROKER_PORT))
print("loop_forever " .. c:loop_forever())
LUA
	out=$(timeout 20 lua5.4 "$work/roundtrip.lua" 2>&1)
	rc=$?
	want="connect 0
on_connect 0
so/echo hello from lua5.4
loop_forever 0"
	[ $rc -eq 0 ] && [ "$out" = "$want" ] && ok "under lua5.4: connect, subscribe, publish, receive with loop_forever()" ||
		not_ok "under lua5.4: connect, subscribe, publish, receive with loop_forever()" "want:
$want
got (exit $rc):
$out"

	# A host with its own loop: only socket(), want_write(), loop_read(),
	# loop_write() and loop_misc() drive the client (plain Lua has no poll(),
	# so this host polls by calling loop_read, which returns at once).
	cat >"$work/hostloop.lua" <<LUA
$cpath
local mqtt = require "mqlua"
local c = mqtt.Client{client_id = "so-hostloop", store = false}
local events = {}
local function log(s) if events[#events] ~= s then events[#events + 1] = s end end
c.on_connect = function(cl, _, _, rc) log("on_connect " .. rc); cl:subscribe("so/host", 1) end
c.on_subscribe = function(cl) log("on_subscribe"); local i = cl:publish("so/host", "driven by the host", 1); log("publish rc " .. i.rc) end
local acked, received = false, false
c.on_publish = function(cl) log("on_publish"); acked = true; if received then cl:disconnect() end end
c.on_message = function(cl, _, msg) log(msg.topic .. " " .. msg.payload .. " qos " .. msg.qos); received = true; if acked then cl:disconnect() end end
c.on_disconnect = function(_, _, rc) log("on_disconnect " .. rc) end
log("before connect: socket " .. tostring(c:socket()) .. ", loop_read " .. c:loop_read() .. ", loop_write " .. c:loop_write() .. ", loop_misc " .. c:loop_misc())
log("connect " .. c:connect("127.0.0.1", $BROKER_PORT))
log("socket is a number: " .. tostring(math.type(c:socket()) == "integer" and c:socket() > 2))
local deadline, last_misc = os.time() + 10, os.time()
while c:socket() and os.time() < deadline do
	if c:loop_read(10) ~= 0 then break end
	if c:want_write() then c:loop_write() end
	if os.time() ~= last_misc then last_misc = os.time(); c:loop_misc() end
end
log("after: socket " .. tostring(c:socket()) .. ", loop_read " .. c:loop_read())
print(table.concat(events, "\n"))
LUA
	out=$(timeout 20 lua5.4 "$work/hostloop.lua" 2>&1)
	rc=$?
	want="before connect: socket nil, loop_read 4, loop_write 4, loop_misc 4
connect 0
socket is a number: true
on_connect 0
on_subscribe
publish rc 0
so/host driven by the host qos 1
on_publish
on_disconnect 0
after: socket nil, loop_read 4"
	[ $rc -eq 0 ] && [ "$out" = "$want" ] && ok "under lua5.4: a host loop of socket/want_write/loop_read/loop_write/loop_misc connects, subscribes, publishes QoS 1, receives" ||
		not_ok "under lua5.4: a host loop of socket/want_write/loop_read/loop_write/loop_misc connects, subscribes, publishes QoS 1, receives" "want:
$want
got (exit $rc):
$out"

	# as paho: on_connect_fail when loop_forever's connection attempts fail
	closed=$(lua5.4 -e "$cpath; print(require('mqlua').broker.free_port())")
	out=$(timeout 20 lua5.4 -e "$cpath; local m = require 'mqlua'
local c = m.Client('so-connect-fail')
local fails = 0
c:reconnect_delay_set(0.05, 0.1)
c.on_connect_fail = function(cl) fails = fails + 1; if fails == 2 then cl:disconnect() end end
print('connect_async', c:connect_async('127.0.0.1', $closed))
print('loop_forever', c:loop_forever(), 'fails', fails)" 2>/dev/null)
	rc=$?
	want="connect_async	14	Connection refused
loop_forever	0	fails	2"
	[ $rc -eq 0 ] && [ "$out" = "$want" ] && ok "under lua5.4: on_connect_fail for each failed attempt of loop_forever, as paho" ||
		not_ok "under lua5.4: on_connect_fail for each failed attempt of loop_forever, as paho" "want:
$want
got (exit $rc):
$out"

	# without loop*() nothing happens: the script ends, the CONNECT was sent, no callback ran
	out=$(timeout 20 lua5.4 -e "$cpath; local m = require 'mqlua'
local c = m.Client('so-noloop')
c.on_connect = function() print('on_connect ran') end
print('connect ' .. c:connect('127.0.0.1', $BROKER_PORT))" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && [ "$out" = "connect 0" ] && ok "under lua5.4: without loop*() no callback runs and lua exits" ||
		not_ok "under lua5.4: without loop*() no callback runs and lua exits" "exit $rc: $out"
else
	not_ok "a broker for the lua5.4 round trip" "start_broker failed"
fi

finish
