#!/usr/bin/env bash
# runaway.sh - a handler stuck in an endless loop. At the prompt, Ctrl-C
# stops that handler only: its error is logged, the connections and the
# other subscriptions survive, the prompt answers. Under `mqlua script.lua`
# the first SIGINT stops the runaway code and shuts down cleanly (every
# client sends its DISCONNECT, so no will is published; exit 0).
. tests/lib/sh.sh
. tests/lib/repl.sh

start_broker || { not_ok "a broker" "start_broker failed"; finish; }

if repl_start --broker "mqtt://127.0.0.1:$BROKER_PORT"; then
	repl_type 'spin = mqtt.Client("runaway-spin"); spin.on_message = function() while true do end end'
	repl_type 'spin.on_connect = function(c) c:subscribe("runaway/spin") end; spin:connect()'
	repl_type 'sub("runaway/other")'
	sleep 1
	mosquitto_pub -p "$BROKER_PORT" -t runaway/spin -m go
	sleep 1
	repl_keys C-c
	repl_wait_for_re '.*ERROR +\[main\] error in on_message \(runaway/spin\): interrupted' 5 &&
		ok "Ctrl-C at the prompt stops the runaway handler, and says so" ||
		not_ok "Ctrl-C at the prompt stops the runaway handler, and says so" "$(repl_show)"
	repl_type 'print("connected", spin:is_connected())'
	repl_wait_for_re 'connected +true' 5 && ok "the prompt answers and the connection survived" ||
		not_ok "the prompt answers and the connection survived" "$(repl_show)"
	mosquitto_pub -p "$BROKER_PORT" -t runaway/other -m 'still here'
	repl_wait_for_line 'runaway/other 0 still here' 5 && ok "the other subscription still delivers" ||
		not_ok "the other subscription still delivers" "$(repl_show)"
	repl_stop
else
	not_ok "the prompt opens" "$(repl_show)"
fi

d=$(tmpdir)
cat >"$d/spin.lua" <<EOF
local mqtt = require "mqlua"
local c = mqtt.Client("runaway-script")
c:will_set("runaway/will", "died", 0, false)
c.on_connect = function(cl) cl:subscribe("runaway/script") end
c.on_subscribe = function() print("ready") io.stdout:flush() end
c.on_message = function() print("spinning") io.stdout:flush() while true do end end
c:connect("127.0.0.1", $BROKER_PORT)
EOF
timeout 10 mosquitto_sub -p "$BROKER_PORT" -t runaway/will -C 1 -W 8 >"$d/will" 2>/dev/null &
will_pid=$!
"$MQLUA" "$d/spin.lua" >"$d/out" 2>"$d/err" &
pid=$!
echo "$pid" >>"$SH_STATE/pids"
wait_for 5 grep -q ready "$d/out"
mosquitto_pub -p "$BROKER_PORT" -t runaway/script -m go
wait_for 5 grep -q spinning "$d/out"
kill -INT "$pid"
wait_for 5 bash -c "! kill -0 $pid 2>/dev/null"
wait "$pid"
rc=$?
wait "$will_pid"
if [ "$rc" = 0 ] && grep -q 'SIGINT: disconnecting every client and exiting' "$d/err" && [ ! -s "$d/will" ]; then
	ok "mqlua script.lua: SIGINT stops a runaway handler and exits 0 cleanly (no will)"
else
	not_ok "mqlua script.lua: SIGINT stops a runaway handler and exits 0 cleanly (no will)" \
		"rc=$rc will='$(cat "$d/will")' $(cat "$d/err")"
fi
finish
