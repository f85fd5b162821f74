# repl_exit.sh - history survives a restart (without credential lines, in a
# 0600 file); Ctrl-D at an empty prompt disconnects every client cleanly
# (the broker sees DISCONNECT, so a will is not published) and exits 0.
. tests/lib/sh.sh
. tests/lib/repl.sh

if ! start_broker; then
	not_ok "a broker for the REPL" "start_broker failed"
	finish
fi
if ! repl_start -q --broker "mqtt://127.0.0.1:$BROKER_PORT"; then
	not_ok "the prompt opens" "$(repl_show)"
	finish
fi

repl_type 'remembered_line = 1'
repl_type 'x = 1 -- c:username_pw_set("me", "secret1")'
repl_type 'y = "mqtt://me:secret2@host"'
repl_type 'w = mqtt.Client("repl-willer")'
repl_type 'w:will_set("repl/will", "died", 0, false)'
repl_type 'w:connect()'
repl_type 'mqtt.wait_until(function() return w:is_connected() end, 5)'
repl_wait_for_line 'true' 10 || not_ok "the client with a will connects" "$(repl_show)"
mosquitto_sub -p "$BROKER_PORT" -t repl/will -W 4 >"$REPL_DIR/will" 2>/dev/null &
echo $! >>"$SH_STATE/pids"
sub_pid=$!
sleep 0.5
repl_keys C-d
rc=$(repl_wait_exit 10)
[ "$rc" = 0 ] && ok "Ctrl-D at an empty prompt exits 0" || not_ok "Ctrl-D at an empty prompt exits 0" "rc=$rc $(repl_show)"
wait "$sub_pid" 2>/dev/null
grep -q 'Client repl-willer disconnected\.' "$BROKER_DIR/mosquitto.log" &&
	ok "the broker saw a clean DISCONNECT" ||
	not_ok "the broker saw a clean DISCONNECT" "$(cat "$BROKER_DIR/mosquitto.log")"
[ ! -s "$REPL_DIR/will" ] && ok "the will was not published" ||
	not_ok "the will was not published" "received: $(cat "$REPL_DIR/will")"
repl_stop

hist=$REPL_STATE/mqlua/history
[ "$(stat -c %a "$hist" 2>/dev/null)" = 600 ] && ok "history is kept in \$XDG_STATE_HOME/mqlua/history, mode 0600" ||
	not_ok "history is kept in \$XDG_STATE_HOME/mqlua/history, mode 0600" "$(ls -la "$REPL_STATE/mqlua" 2>&1)"
grep -qxF 'remembered_line = 1' "$hist" && ok "a typed line is written to history" ||
	not_ok "a typed line is written to history" "$(cat "$hist" 2>&1)"
! grep -q 'secret' "$hist" && ok "username_pw_set lines and URLs with credentials are not" ||
	not_ok "username_pw_set lines and URLs with credentials are not" "$(cat "$hist")"

if ! repl_start -q; then
	not_ok "the prompt opens again" "$(repl_show)"
	finish
fi
repl_keys Up Up Up Up Up Up
sleep 0.3
repl_keys Up
repl_wait_last '> remembered_line = 1' && ok "history is loaded after a restart (Up recalls a line)" ||
	not_ok "history is loaded after a restart (Up recalls a line)" "$(repl_show)"
repl_keys C-u
repl_type 'while true do end'
sleep 0.3
repl_keys C-c
repl_type '"alive"'
repl_wait_for_line 'alive' && ok "with a history loaded, Ctrl-C still stops only the statement" ||
	not_ok "with a history loaded, Ctrl-C still stops only the statement" "$(repl_show)"
repl_type 'os.exit()'
rc=$(repl_wait_exit 10)
[ "$rc" = 0 ] && ok "os.exit() exits 0" || not_ok "os.exit() exits 0" "rc=$rc $(repl_show)"
repl_stop
finish
