# lifetime.sh - how long `mqlua script.lua` runs: when the main chunk
# returns and nothing keeps the loop alive, mqlua exits 0 at once; a
# connected client keeps it running until it disconnects.
. tests/lib/sh.sh

work=$(tmpdir)

# timed CMD...: runs CMD (output to $work/out, $work/err); sets OUT, ERR,
# RC and MS, the milliseconds it took.
timed() {
	local start end
	start=$(date +%s%N)
	"$@" >"$work/out" 2>"$work/err" </dev/null
	RC=$?
	end=$(date +%s%N)
	MS=$(((end - start) / 1000000))
	OUT=$(cat "$work/out")
	ERR=$(cat "$work/err")
}
show() { printf 'exit %s after %s ms\n--- stdout:\n%s\n--- stderr:\n%s\n' "$RC" "$MS" "$OUT" "$ERR"; }

timed timeout 20 "$MQLUA" -e 'print("done")'
[ "$RC" -eq 0 ] && [ "$MS" -lt 2000 ] && ok "a main chunk with nothing alive: exit 0 at once (${MS} ms)" ||
	not_ok "a main chunk with nothing alive: exit 0 at once" "$(show)"

printf 'local mqtt = require "mqlua"\nclient = mqtt.Client("never-connected")\nprint("created")\n' >"$work/idle.lua"
timed timeout 20 "$MQLUA" "$work/idle.lua"
[ "$RC" -eq 0 ] && [ "$OUT" = created ] && [ "$MS" -lt 2000 ] &&
	ok "a client that never connects does not keep mqlua running (${MS} ms)" ||
	not_ok "a client that never connects does not keep mqlua running" "$(show)"

closed_port=$(free_port)
timed timeout 20 "$MQLUA" -e "local mqtt = require 'mqlua'
local c = mqtt.Client('refused')
print('connect', c:connect('127.0.0.1', $closed_port))"
[ "$RC" -eq 0 ] && grep -qF "connect	$(printf '%d' 14)	Connection refused" <<<"$OUT" && [ "$MS" -lt 2000 ] &&
	ok "connect() to a closed port returns MQTT_ERR_ERRNO and mqlua exits 0 (${MS} ms)" ||
	not_ok "connect() to a closed port returns MQTT_ERR_ERRNO and mqlua exits 0" "$(show)"

if ! start_broker; then
	not_ok "a broker for the lifetime tests" "start_broker failed"
	finish
fi

cat >"$work/oneshot.lua" <<LUA
local mqtt = require "mqlua"
local c = mqtt.Client("oneshot")
c.on_connect = function(cl) cl:publish("cli/oneshot", "bye", 1) end
c.on_publish = function(cl)
	print("published")
	cl:disconnect()
end
c:connect("127.0.0.1", $BROKER_PORT)
LUA
timed timeout 20 "$MQLUA" "$work/oneshot.lua"
[ "$RC" -eq 0 ] && [ "$OUT" = published ] && [ "$MS" -lt 3000 ] &&
	ok "a one-shot script that disconnects simply ends, exit 0 (${MS} ms)" ||
	not_ok "a one-shot script that disconnects simply ends, exit 0" "$(show)"

cat >"$work/service.lua" <<LUA
local mqtt = require "mqlua"
local c = mqtt.Client("service")
c.on_connect = function(cl) cl:subscribe("cli/quit", 1) end
c.on_subscribe = function() print("ready") io.stdout:flush() end
c.on_message = function(cl, _, msg)
	print("quit: " .. msg.payload)
	cl:disconnect()
end
c:connect("127.0.0.1", $BROKER_PORT)
print("main chunk done") io.stdout:flush()
LUA
"$MQLUA" "$work/service.lua" >"$work/svc.out" 2>"$work/svc.err" </dev/null &
svc=$!
echo "$svc" >>"$SH_STATE/pids"
if wait_for 10 grep -q '^ready$' "$work/svc.out"; then
	ok "a connected client: the main chunk returned and the script still handles events"
else
	not_ok "a connected client: the main chunk returned and the script still handles events" "$(cat "$work/svc.out" "$work/svc.err")"
fi
sleep 1.5
if kill -0 "$svc" 2>/dev/null; then
	ok "a connected client keeps mqlua running (still there after 1.5 s)"
else
	not_ok "a connected client keeps mqlua running (still there after 1.5 s)" "$(cat "$work/svc.out" "$work/svc.err")"
fi
mosquitto_pub -p "$BROKER_PORT" -h 127.0.0.1 -q 1 -t cli/quit -m now
if wait_for 5 eval "! kill -0 $svc 2>/dev/null"; then
	wait "$svc"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q '^quit: now$' "$work/svc.out"; then
		ok "once it disconnects, mqlua exits 0"
	else
		not_ok "once it disconnects, mqlua exits 0" "exit $rc; $(cat "$work/svc.out" "$work/svc.err")"
	fi
else
	not_ok "once it disconnects, mqlua exits 0" "still running 5 s after the quit message"
	kill -KILL "$svc" 2>/dev/null
fi

finish
