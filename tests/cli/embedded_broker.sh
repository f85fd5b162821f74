# embedded_broker.sh - `mqlua --broker embedded`: the example runs against a
# private mosquitto, which dies with mqlua (normal exit, script error,
# kill -9); a clear error when mosquitto is not installed; --broker URL
# errors (exit 2 with the reason).
. tests/lib/sh.sh

work=$(tmpdir)

show() {
	printf 'exit %s\n--- stdout:\n%s\n--- stderr:\n%s\n' "$RC" "$(tail -n 15 <<<"$OUT")" "$(tail -n 15 <<<"$ERR")"
}

# alive PID: true if PID exists and is not a zombie.
alive() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}
dead() { ! alive "$1"; }

# broker_pid: the embedded broker's pid from -v output in $ERR (or $1).
broker_pid() {
	sed -n 's/.*embedded broker (pid \([0-9][0-9]*\)) listening.*/\1/p' <<<"${1-$ERR}" | head -n 1
}

# ---- the example ----

run timeout 30 "$MQLUA" -v --broker embedded scripts/examples/broker-version.lua
if [ "$RC" -eq 0 ] && grep -qE '^\$SYS/broker/version mosquitto version [0-9]' <<<"$OUT"; then
	ok "--broker embedded runs broker-version.lua: it prints the mosquitto version"
else
	not_ok "--broker embedded runs broker-version.lua: it prints the mosquitto version" "$(show)"
fi
pid=$(broker_pid)
if [ -n "$pid" ] && dead "$pid"; then
	ok "after mqlua exits, its mosquitto (pid $pid) is gone"
else
	not_ok "after mqlua exits, its mosquitto is gone" "pid '${pid}' $(ps -o pid,stat,args -p "${pid:-1}" 2>&1)"
fi
grep -qF 'embedded broker listening on mqtt://127.0.0.1:' <<<"$ERR" &&
	ok "--broker embedded logs where it listens" || not_ok "--broker embedded logs where it listens" "$(show)"

run timeout 30 "$MQLUA" -b embedded -e 'local mqtt = require "mqlua"
local c = mqtt.Client("cli-embedded")
c.on_connect = function(cl, _, _, rc) print("on_connect " .. rc); cl:disconnect() end
c:connect()'
[ "$RC" -eq 0 ] && [ "$OUT" = "on_connect 0" ] && ok "-b embedded: connect() without a host uses it" ||
	not_ok "-b embedded: connect() without a host uses it" "$(show)"

run env MQLUA_BROKER=embedded timeout 30 "$MQLUA" -v -e 'print("env")'
pid=$(broker_pid)
[ "$RC" -eq 0 ] && [ -n "$pid" ] && dead "$pid" && ok "MQLUA_BROKER=embedded starts (and stops) one too" ||
	not_ok "MQLUA_BROKER=embedded starts (and stops) one too" "pid '$pid' $(show)"

run timeout 30 "$MQLUA" -v --broker embedded -e 'error("script failed")'
pid=$(broker_pid)
[ "$RC" -eq 1 ] && [ -n "$pid" ] && dead "$pid" && ok "a script error (exit 1) stops the embedded broker too" ||
	not_ok "a script error (exit 1) stops the embedded broker too" "pid '$pid' $(show)"

# ---- kill -9 leaves no orphan ----

"$MQLUA" -v --broker embedded -e 'require("mqlua").sleep(60)' >"$work/k.out" 2>"$work/k.err" </dev/null &
mqlua_pid=$!
echo "$mqlua_pid" >>"$SH_STATE/pids"
wait_for 10 grep -q 'embedded broker (pid' "$work/k.err"
pid=$(broker_pid "$(cat "$work/k.err")")
if [ -n "$pid" ] && alive "$pid"; then
	ok "the embedded broker runs while mqlua runs"
	kill -KILL "$mqlua_pid"
	wait "$mqlua_pid" 2>/dev/null
	if wait_for 2 dead "$pid"; then
		ok "kill -9 of mqlua: its mosquitto ends within 2 s"
	else
		not_ok "kill -9 of mqlua: its mosquitto ends within 2 s" "$(ps -o pid,ppid,stat,args -p "$pid")"
		kill -KILL "$pid" 2>/dev/null
	fi
	port=$(sed -n 's/.*listening on mqtt:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/k.err" | head -n 1)
	if [ -n "$port" ] && wait_for 2 eval "! port_open $port"; then
		ok "kill -9 of mqlua: nothing listens on the broker's port any more"
	else
		not_ok "kill -9 of mqlua: nothing listens on the broker's port any more" "port '$port'"
	fi
else
	not_ok "the embedded broker runs while mqlua runs" "$(cat "$work/k.err")"
	kill -KILL "$mqlua_pid" 2>/dev/null
fi

# ---- mosquitto not installed ----

# mqlua also looks in /usr/sbin and /sbin (Debian's place, not in a user's
# PATH): so a PATH without mosquitto still works...
sbin_free_path=/usr/bin:/bin
if PATH=$sbin_free_path command -v mosquitto >/dev/null; then
	ok "PATH without sbin still finds mosquitto # skip: mosquitto is in $sbin_free_path"
else
	run env PATH=$sbin_free_path timeout 30 "$MQLUA" --broker embedded -e 'print("found")'
	[ "$RC" -eq 0 ] && [ "$OUT" = found ] && ok "PATH without sbin still finds mosquitto in /usr/sbin" ||
		not_ok "PATH without sbin still finds mosquitto in /usr/sbin" "$(show)"
fi
# ... and "not installed" is simulated by hiding every mosquitto binary in a
# private mount namespace.
hide=""
for f in /usr/sbin/mosquitto /usr/local/sbin/mosquitto /usr/bin/mosquitto /usr/local/bin/mosquitto; do
	[ -e "$f" ] && hide="$hide mount --bind /dev/null $f &&"
done
if unshare --mount true 2>/dev/null; then
	run unshare --mount sh -c "$hide PATH=$sbin_free_path exec timeout 30 '$MQLUA' --broker embedded -e 'print(\"ran\")'"
	if [ "$RC" -eq 1 ] && grep -qF '`mosquitto` is not installed' <<<"$ERR" && [ -z "$OUT" ]; then
		ok "mosquitto not installed: exit 1, says so, the script does not run"
	else
		not_ok "mosquitto not installed: exit 1, says so, the script does not run" "$(show)"
	fi
	grep -qF 'apt-get install mosquitto' <<<"$ERR" && ok "mosquitto not installed: says how to install it" ||
		not_ok "mosquitto not installed: says how to install it" "$(show)"
else
	ok "mosquitto not installed: exit 1, says so # skip: unshare --mount is not permitted here"
fi

# ---- bad --broker URLs ----

for url in 'http://h' 'mqtt://h:99999' 'mqtt://' 'mqtt://h/topic' 'mqtt://h:+1'; do
	run "$MQLUA" --broker "$url" -e 'print("ran")'
	case $url in
	http*) why="unsupported URL scheme" ;;
	*99999 | *+1) why="bad port" ;;
	mqtt://) why="no host" ;;
	*/topic) why="no path" ;;
	esac
	if [ "$RC" -eq 2 ] && grep -qF -- "--broker: " <<<"$ERR" && grep -qF "$why" <<<"$ERR" && [ -z "$OUT" ]; then
		ok "--broker '$url': exit 2, $why"
	else
		not_ok "--broker '$url': exit 2, $why" "$(show)"
	fi
done
run "$MQLUA" --broker=ftp://x -e 1
[ "$RC" -eq 2 ] && grep -qF "unsupported URL scheme in 'ftp://'" <<<"$ERR" && ok "--broker=URL form checked too" ||
	not_ok "--broker=URL form checked too" "$(show)"
run env MQLUA_BROKER='mqtt://h:0' "$MQLUA" -e 1
[ "$RC" -eq 2 ] && grep -qF "bad port" <<<"$ERR" && ok "a bad MQLUA_BROKER: exit 2" || not_ok "a bad MQLUA_BROKER: exit 2" "$(show)"

finish
