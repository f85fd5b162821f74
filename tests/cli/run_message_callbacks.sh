# run_message_callbacks.sh - `mqlua run DIR` and message_callback_add on a
# client two scripts share (a.lua makes it, b.lua adds a callback to it): a
# reload whose main chunk fails after replacing, removing, re-adding and
# adding message callbacks leaves them exactly as they were, in the same
# dispatch order; a reload that succeeds drops the old version's callbacks
# and keeps the other script's.
. tests/lib/sh.sh

work=$(tmpdir)
rules=$work/rules
mkdir -p "$rules"

if ! start_broker 'log_type subscribe'; then
	not_ok "a broker for the run tests" "start_broker failed"
	finish
fi

# Every callback answers on "out" with TAG:payload (QoS 1, one client: the
# answers keep the order the callbacks ran in).
cat >"$rules/a.lua" <<'LUA'
local mqtt = require "mqlua"
local c = mqtt.Client("run-mcb")
local function answer(tag) return function(cl, _, m) cl:publish("out", tag .. ":" .. m.payload, 1) end end
c.on_connect = function(cl) cl:subscribe("t/#", 1) end
c.on_message = answer("v1-stray")
c:message_callback_add("t/1", answer("a1"))
c:message_callback_add("t/+", answer("a2"))
c:message_callback_add("t/#", answer("a3"))
_G.shared_client = c
c:connect()
LUA
cat >"$rules/b.lua" <<'LUA'
local c = _G.shared_client
c:message_callback_add("+/1", function(cl, _, m) cl:publish("out", "b1:" .. m.payload, 1) end)
LUA

mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" -q 1 -t out >"$work/sub.out" 2>&1 &
echo $! >>"$SH_STATE/pids"
"$MQLUA" run --broker "mqtt://127.0.0.1:$BROKER_PORT" --store "$work/store.db" "$rules" \
	>"$work/run.out" 2>"$work/run.err" </dev/null &
svc=$!
echo "$svc" >>"$SH_STATE/pids"

pub() { mosquitto_pub -h 127.0.0.1 -p "$BROKER_PORT" -q 1 -t "$1" -m "$2"; }
logged() { grep -a -q -E -- "$1" "$work/run.err"; }
# answers PAYLOAD: the tags that answered PAYLOAD, in order, space-separated
answers() { sed -n "s/^\\(.*\\):$1\$/\\1/p" "$work/sub.out" | tr '\n' ' ' | sed 's/ $//'; }
# expect N PAYLOAD: waits for N answers to PAYLOAD, then a little for extra ones
expect() {
	wait_for 5 eval "[ \"\$(answers $2 | wc -w)\" -ge $1 ]"
	sleep 0.4
}
details() { printf -- '--- mqlua log:\n%s\n--- answers:\n%s\n' "$(tail -n 20 "$work/run.err")" "$(tail -n 20 "$work/sub.out")"; }
# answered NAME TOPIC PAYLOAD WANT: publishes PAYLOAD on TOPIC; the case
# passes when the tags that answered it are WANT, in that order
answered() {
	local name=$1 got
	pub "$2" "$3"
	expect "$(wc -w <<<"$4")" "$3"
	got=$(answers "$3")
	if [ "$got" = "$4" ]; then ok "$name"; else not_ok "$name" "got: $got; $(details)"; fi
}

wait_for 10 logged 'mqlua run: 2 of 2 scripts running' && wait_for 5 grep -q 'run-mcb 1 t/#' "$BROKER_DIR/mosquitto.log"
answered "two scripts' callbacks on one client run in the order their filters were added" t/1 m1 "a1 a2 a3 b1"

# v2 replaces t/+, removes and re-adds t/1, removes b.lua's +/1, adds #, then fails
cat >"$rules/a.lua" <<'LUA'
local mqtt = require "mqlua"
local c = mqtt.Client("run-mcb")
local function answer(tag) return function(cl, _, m) cl:publish("out", tag .. ":" .. m.payload, 1) end end
c:message_callback_add("t/+", answer("v2-replaced"))
c:message_callback_remove("t/1")
c:message_callback_add("t/1", answer("v2-readded"))
c:message_callback_remove("+/1")
c:message_callback_add("#", answer("v2-new"))
error("v2 refuses")
LUA
wait_for 5 logged '\[a\.lua\] not loaded: its main chunk failed; the previous version keeps running' ||
	not_ok "the failing version is reported" "$(details)"
answered "a failed reload's message_callback_add/remove are undone exactly, dispatch order too" t/1 m2 "a1 a2 a3 b1"
answered "after the failed reload a message of another topic reaches the old callbacks only" t/2 m3 "a2 a3"

# v3 loads: it keeps only t/1 (its own function, in t/1's place); v1's others go, b.lua's stays
cat >"$rules/a.lua" <<'LUA'
local mqtt = require "mqlua"
local c = mqtt.Client("run-mcb")
local function answer(tag) return function(cl, _, m) cl:publish("out", tag .. ":" .. m.payload, 1) end end
c.on_connect = function(cl) cl:subscribe("t/#", 1) end
c.on_message = answer("v3-stray")
c:message_callback_add("t/1", answer("v3-1"))
_G.shared_client = c
c:connect()
LUA
wait_for 5 logged '\[a\.lua\] reloaded \(version 2\)' || not_ok "the new version is reported" "$(details)"
answered "a reload drops the old version's message callbacks; the other script's on the same client stays" t/1 m4 "v3-1 b1"
answered "a topic only the old version's filters matched goes to the new on_message" t/2 m5 "v3-stray"

kill -TERM "$svc"
finish
