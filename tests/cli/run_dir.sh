# run_dir.sh - `mqlua run DIR` against a real mosquitto: two scripts, each
# with a client and a timer; errors logged and counted under the script's
# name; reloads on a file change (inotify) and on SIGHUP that swap handlers,
# timers and subscriptions while the connection stays and no QoS 1 message is
# lost; a version that fails to load keeps the previous one; new and deleted
# files; the systemd unit's commands.
. tests/lib/sh.sh

work=$(tmpdir)
rules=$work/rules
mkdir -p "$rules" "$work/other"

# ---- the command line ----

out=$("$MQLUA" run --help 2>&1)
[ $? -eq 0 ] && grep -q '^usage: mqlua run \[options\] DIR' <<<"$out" && grep -q 'SIGHUP' <<<"$out" &&
	ok "mqlua run --help" || not_ok "mqlua run --help" "$out"

out=$("$MQLUA" run "$work/missing" 2>&1)
rc=$?
[ $rc -eq 1 ] && [ "$out" = "mqlua run: $work/missing: No such file or directory" ] &&
	ok "a missing directory: a clear error, exit 1" || not_ok "a missing directory: a clear error, exit 1" "exit $rc: $out"

mkdir "$work/empty"
touch "$work/empty/notes.txt"
out=$("$MQLUA" run "$work/empty" 2>&1)
rc=$?
[ $rc -eq 1 ] && [ "$out" = "mqlua run: $work/empty: no *.lua files in it" ] &&
	ok "a directory without scripts: a clear error, exit 1" ||
	not_ok "a directory without scripts: a clear error, exit 1" "exit $rc: $out"

out=$("$MQLUA" run 2>&1)
[ $? -eq 2 ] && grep -q '^mqlua run: a directory of scripts is needed' <<<"$out" &&
	ok "no directory: a usage error" || not_ok "no directory: a usage error" "$out"

# ---- a running service ----

if ! start_broker 'log_type subscribe' 'log_type unsubscribe'; then
	not_ok "a broker for the run tests" "start_broker failed"
	finish
fi
blog=$BROKER_DIR/mosquitto.log

# a_src VERSION [EXTRA]: prints an a.lua that answers a/in with a/out
# "VERSION:payload" and ticks VERSION on a/tick every 0.2 s; v1 also
# subscribes a/old. EXTRA ends its main chunk. write_a: into $rules/a.lua.
a_src() {
	cat <<LUA
local mqtt = require "mqlua"
local c = mqtt.Client("run-a")
c.on_connect = function(cl, _, flags)
	print("$1 on_connect session_present=" .. tostring(flags.session_present))
	cl:subscribe("a/in", 1)
	$([ "$1" = v1 ] && echo 'cl:subscribe("a/old", 1)')
end
c:message_callback_add("a/in", function(cl, _, m) cl:publish("a/out", "$1:" .. m.payload, 1) end)
$([ "$1" = v1 ] && echo 'c:message_callback_add("a/old", function(cl, _, m) cl:publish("a/out", "old:" .. m.payload, 1) end)')
c.on_message = function(cl, _, m) cl:publish("a/out", "stray:" .. m.topic, 1) end
mqtt.every(0.2, function() c:publish("a/tick", "$1", 0) end)
c:connect()
$2
LUA
}
write_a() { a_src "$@" >"$rules/a.lua"; }

write_a v1
cat >"$rules/b.lua" <<'LUA'
local mqtt = require "mqlua"
local c = mqtt.Client("run-b")
c.on_connect = function(cl) cl:subscribe("b/in", 1) end
c.on_message = function(cl, _, m)
	if m.payload == "boom" then error("b exploded") end
	cl:publish("b/out", "b:" .. m.payload, 1)
end
local n = 0
mqtt.every(0.5, function() n = n + 1 end)
c:connect()
LUA

mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" -v -t 'a/#' -t 'b/out' -t 'c/out' >"$work/sub.out" 2>&1 &
echo $! >>"$SH_STATE/pids"
"$MQLUA" run --broker "mqtt://127.0.0.1:$BROKER_PORT" --store "$work/store.db" "$rules" \
	>"$work/run.out" 2>"$work/run.err" </dev/null &
svc=$!
echo "$svc" >>"$SH_STATE/pids"

pub() { mosquitto_pub -h 127.0.0.1 -p "$BROKER_PORT" -q 1 -t "$1" -m "$2"; }
# count PATTERN FILE: lines matching the extended regex
count() { grep -a -c -E -- "$1" "$2"; }
got() { [ "$(count "$1" "$work/sub.out")" -ge 1 ]; }
logged() { grep -a -q -E -- "$1" "$work/run.err"; }
connections() { count "New client connected from .* as $1 " "$blog"; }
details() { printf -- '--- mqlua log:\n%s\n--- messages:\n%s\n' "$(tail -n 30 "$work/run.err")" "$(grep -av tick "$work/sub.out" | tail -n 20)"; }

wait_for 10 logged 'mqlua run: 2 of 2 scripts running' &&
	wait_for 5 eval 'got "^a/tick v1$"' && wait_for 5 eval '[ "$(grep -c "run-[ab] 1 [ab]/in" "$blog")" -eq 2 ]'
pub a/in x1
pub b/in y1
if wait_for 5 got '^a/out v1:x1$' && wait_for 5 got '^b/out b:y1$' &&
	logged '\[a\.lua\] loaded \(version 1\)' && logged '\[b\.lua\] loaded \(version 1\)'; then
	ok "two scripts load, each with its client, handler and timer"
else
	not_ok "two scripts load, each with its client, handler and timer" "$(details)"
fi

pub b/in boom
pub b/in y2
pub a/in x2
if wait_for 5 got '^b/out b:y2$' && wait_for 5 got '^a/out v1:x2$' &&
	logged "ERROR \[b\.lua\] error in on_message \(b/in\): $rules/b\.lua:5: b exploded"; then
	ok "an error in one script is logged under its name; both scripts go on"
else
	not_ok "an error in one script is logged under its name; both scripts go on" "$(details)"
fi

# ---- reload on a change: v2 ----
ticks_v1=$(count '^a/tick v1$' "$work/sub.out")
write_a v2
if wait_for 5 logged '\[a\.lua\] reloaded \(version 2\)'; then
	ok "editing a.lua reloads it (inotify)"
else
	not_ok "editing a.lua reloads it (inotify)" "$(details)"
fi
pub a/in x3
wait_for 5 got '^a/out v2:x3$'
sleep 0.5
[ "$(count '^a/out v2:x3$' "$work/sub.out")" -eq 1 ] && [ "$(count '^a/out v1:x3$' "$work/sub.out")" -eq 0 ] &&
	ok "after the reload a message is handled once, by the new handler" ||
	not_ok "after the reload a message is handled once, by the new handler" "$(details)"

ticks_v1_after=$(count '^a/tick v1$' "$work/sub.out")
sleep 0.6
[ "$(count '^a/tick v1$' "$work/sub.out")" -eq "$ticks_v1_after" ] && [ "$ticks_v1_after" -le $((ticks_v1 + 4)) ] &&
	got '^a/tick v2$' &&
	ok "the old timer is cancelled, the new one runs" ||
	not_ok "the old timer is cancelled, the new one runs" "v1 ticks: $ticks_v1 at the edit, $ticks_v1_after after; $(details)"

[ "$(connections run-a)" -eq 1 ] && [ "$(connections run-b)" -eq 1 ] &&
	[ "$(grep -c '^v2 on_connect session_present=true$' "$work/run.out")" -eq 1 ] &&
	ok "the connection stays (one CONNECT each); the new on_connect ran once with session_present = true" ||
	not_ok "the connection stays (one CONNECT each); the new on_connect ran once with session_present = true" \
		"connects: $(grep 'New client' "$blog"); stdout: $(cat "$work/run.out")"

pub a/old o1
sleep 0.7
! got 'a/out (old|stray):' && grep -q 'run-a a/old$' "$blog" &&
	ok "a filter only the old version subscribed is unsubscribed" ||
	not_ok "a filter only the old version subscribed is unsubscribed" "$(details)"

pub b/in y3
wait_for 5 got '^b/out b:y3$' && ok "the other script is untouched by the reload" ||
	not_ok "the other script is untouched by the reload" "$(details)"

# ---- QoS 1 messages flowing across a reload: v3 ----
(for i in $(seq 1 30); do pub a/in "q$i"; sleep 0.04; done) &
burst=$!
sleep 0.4
write_a v3
wait "$burst"
wait_for 5 eval '[ "$(count "^a/out v[23]:q[0-9]+$" "$work/sub.out")" -ge 30 ]'
sleep 0.3
missing=""
for i in $(seq 1 30); do
	[ "$(count "^a/out v[23]:q$i\$" "$work/sub.out")" -eq 1 ] || missing="$missing q$i"
done
[ -z "$missing" ] && got '^a/out v2:q' && got '^a/out v3:q' && logged '\[a\.lua\] reloaded \(version 3\)' &&
	[ "$(connections run-a)" -eq 1 ] &&
	ok "30 QoS 1 messages across a reload: each answered exactly once, by v2 then v3" ||
	not_ok "30 QoS 1 messages across a reload: each answered exactly once, by v2 then v3" "not once:$missing; $(details)"

# ---- versions that fail to load ----
printf 'this is not lua (\n' >>"$rules/a.lua"
wait_for 5 logged "ERROR \[a\.lua\] not loaded: $rules/a\.lua:[0-9]+: .*; the previous version keeps running"
pub a/in z1
wait_for 5 got '^a/out v3:z1$' &&
	logged "ERROR \[a\.lua\] not loaded: $rules/a\.lua:[0-9]+: .*; the previous version keeps running" &&
	ok "a syntax error on reload is logged; the previous version keeps running" ||
	not_ok "a syntax error on reload is logged; the previous version keeps running" "$(details)"

write_a v4 'error("v4 refuses")'
wait_for 5 logged '\[a\.lua\] not loaded: its main chunk failed; the previous version keeps running'
pub a/in z2
wait_for 5 got '^a/out v3:z2$'
sleep 0.5
logged "ERROR \[a\.lua\] error in main chunk: $rules/a\.lua:[0-9]+: v4 refuses" && ! got 'v4' &&
	[ "$(count '^a/out v3:z2$' "$work/sub.out")" -eq 1 ] && [ "$(connections run-a)" -eq 1 ] &&
	ok "an error in the new main chunk: its handlers and timers are undone, the previous version goes on" ||
	not_ok "an error in the new main chunk: its handlers and timers are undone, the previous version goes on" "$(details)"

# ---- SIGHUP: a change inotify does not see (written through a hard link elsewhere) ----
ln "$rules/a.lua" "$work/other/a.lua"
a_src v5 >"$work/other/a.lua"   # the same inode, changed in place from another directory
sleep 0.8
if logged '\[a\.lua\] reloaded \(version 4\)'; then
	not_ok "SIGHUP reloads a changed file" "reloaded before SIGHUP: $(details)"
else
	kill -HUP "$svc"
	wait_for 5 logged '\[a\.lua\] reloaded \(version 4\)'
	pub a/in s1
	wait_for 5 got '^a/out v5:s1$' && logged '\[a\.lua\] reloaded \(version 4\)' &&
		ok "SIGHUP reloads a changed file" || not_ok "SIGHUP reloads a changed file" "$(details)"
fi
wait_for 5 logged 'INFO  \[b\.lua\] version 1 running, 1 error so far' &&
	logged 'INFO  \[a\.lua\] version 4 running, 2 errors so far' &&
	ok "SIGHUP logs each script's version and error count" ||
	not_ok "SIGHUP logs each script's version and error count" "$(details)"

# ---- a new file, a deleted file ----
cat >"$work/c.tmp" <<'LUA'
local mqtt = require "mqlua"
local c = mqtt.Client("run-c")
c.on_connect = function(cl) cl:subscribe("c/in", 1) end
c.on_message = function(cl, _, m) cl:publish("c/out", "c:" .. m.payload .. ":" .. tostring(rawget(_G, "answer")), 1) end
answer = 42   -- a global of c.lua's own environment
c:connect()
LUA
mv "$work/c.tmp" "$rules/c.lua"
wait_for 5 logged '\[c\.lua\] loaded \(version 1\)' && wait_for 5 eval '[ "$(connections run-c)" -eq 1 ]'
wait_for 5 grep -q 'run-c 1 c/in' "$blog"
pub c/in n1
wait_for 5 got '^c/out c:n1:nil$' && ok "a new file is loaded, with globals of its own" ||
	not_ok "a new file is loaded, with globals of its own" "$(details)"

rm "$rules/b.lua"
wait_for 5 logged '\[b\.lua\] unloaded: the file is gone \(1 error\)'
wait_for 5 grep -q 'Client run-b disconnected' "$blog"
pub b/in y4
sleep 0.7
logged '\[b\.lua\] unloaded' && grep -q 'Client run-b disconnected' "$blog" && ! got '^b/out b:y4$' &&
	ok "a deleted file is unloaded: its client disconnects, its handler is gone" ||
	not_ok "a deleted file is unloaded: its client disconnects, its handler is gone" "$(details)"

kill -TERM "$svc"
if wait_for 5 eval "! kill -0 $svc 2>/dev/null"; then
	wait "$svc"
	rc=$?
	[ $rc -eq 0 ] && logged 'SIGTERM: disconnecting every client' && ! grep -q 'Client run-a closed its connection\|exceeded timeout' "$blog" &&
		ok "SIGTERM: every client disconnects cleanly, exit 0" ||
		not_ok "SIGTERM: every client disconnects cleanly, exit 0" "exit $rc; $(details)"
else
	not_ok "SIGTERM: every client disconnects cleanly, exit 0" "still running"
fi

# ---- a durable timer registered again by the new version keeps its due time ----
mkdir "$work/durable"
d_src() { printf 'local t = mqlua_timer or require("mqlua").every(3600, "d-hourly", function() end)\nprint(string.format("%s due %%.3f", t.next))\n' "$1"; }
d_src v1 >"$work/durable/d.lua"
"$MQLUA" run --store "$work/durable.db" "$work/durable" >"$work/d.out" 2>"$work/d.err" </dev/null &
dpid=$!
echo "$dpid" >>"$SH_STATE/pids"
wait_for 10 grep -q '^v1 due' "$work/d.out"
sleep 1.1
d_src v2 >"$work/durable/d.lua"
wait_for 5 grep -q '^v2 due' "$work/d.out"
due1=$(sed -n 's/^v1 due //p' "$work/d.out")
due2=$(sed -n 's/^v2 due //p' "$work/d.out")
[ -n "$due1" ] && [ "$due1" = "$due2" ] && grep -q '\[d\.lua\] reloaded (version 2)' "$work/d.err" &&
	ok "a durable timer registered again after a reload keeps its due time" ||
	not_ok "a durable timer registered again after a reload keeps its due time" "$(cat "$work/d.out" "$work/d.err")"
kill "$dpid"
wait "$dpid" 2>/dev/null
row=$(sqlite3 "$work/durable.db" "SELECT printf('%.3f', due) FROM timers WHERE name = 'd-hourly'")
[ -n "$due1" ] && [ "$row" = "$due1" ] &&
	ok "its row in the store outlives the old version (due $row)" ||
	not_ok "its row in the store outlives the old version" "row: '$row', due: '$due1'"

# ---- the systemd unit ----
unit=scripts/mqlua.service
start=$(sed -n 's/^ExecStart=//p' "$unit")
reload=$(sed -n 's/^ExecReload=//p' "$unit")
[ "$start" = "/usr/bin/mqlua run /etc/mqlua/rules" ] && [ "$reload" = '/bin/kill -HUP $MAINPID' ] &&
	grep -q '^Type=simple$' "$unit" && grep -q '^Restart=on-failure$' "$unit" && grep -q '^StateDirectory=mqlua$' "$unit" &&
	grep -q '^Environment=MQLUA_STORE=/var/lib/mqlua/store.db$' "$unit" &&
	ok "the unit runs mqlua run /etc/mqlua/rules, reloads with SIGHUP, keeps the store in its StateDirectory" ||
	not_ok "the unit runs mqlua run /etc/mqlua/rules, reloads with SIGHUP, keeps the store in its StateDirectory" "$(cat "$unit")"

# its two commands, literally, with this build and a rules directory of our own
write_a v1
rm -f "$rules/c.lua"
cmd=${start/\/usr\/bin\/mqlua/$(realpath "$MQLUA")}
cmd=${cmd/\/etc\/mqlua\/rules/$rules}
MQLUA_STORE=$work/unit.db MQLUA_BROKER=mqtt://127.0.0.1:$BROKER_PORT $cmd >"$work/run.out" 2>"$work/run.err" </dev/null &
MAINPID=$!
echo "$MAINPID" >>"$SH_STATE/pids"
wait_for 10 logged 'mqlua run: 1 of 1 script running'
a_src v6 >"$work/other/a.lua"   # the same inode: no inotify event in $rules
eval "${reload//\$MAINPID/$MAINPID}"
wait_for 5 logged '\[a\.lua\] reloaded \(version 2\)'
pub a/in u1
wait_for 5 got '^a/out v6:u1$' && [ -s "$work/unit.db" ] &&
	ok "the unit's ExecStart and ExecReload commands work as written" ||
	not_ok "the unit's ExecStart and ExecReload commands work as written" "$(details)"
kill "$MAINPID"

if command -v systemd-analyze >/dev/null; then
	sed "s#/usr/bin/mqlua#$(realpath "$MQLUA")#" "$unit" >"$work/mqlua.service"
	check "systemd-analyze verify accepts the unit" systemd-analyze verify "$work/mqlua.service"
fi

finish
