# shared_subscription.sh - three mqlua processes share `$share/g/bench/#` at
# QoS 1 on a real mosquitto while a fourth publishes 30,000 QoS 1 messages
# with distinct payloads: every message arrives exactly once across the
# three (none lost, none doubled) and each process gets a share. Bounded:
# the whole exchange must finish within 50 s.
. tests/lib/sh.sh

N=30000
work=$(tmpdir)

# no queue limit: mosquitto drops QoS 1 messages beyond max_queued_messages
# (1000 by default) for a subscriber that falls behind
if ! start_broker 'max_queued_messages 0'; then
	not_ok "a broker for the shared subscription test" "start_broker failed"
	finish
fi

# Writes each payload it gets on its own line to $OUT; stops at bench-done,
# which the broker queues behind every shared message it sent this process.
cat >"$work/sub.lua" <<LUA
local mqtt = require "mqlua"
local out = assert(io.open(os.getenv("OUT"), "w"))
local c = mqtt.Client { client_id = os.getenv("ID"), store = false }   -- it never publishes
c.on_connect = function(client) client:subscribe({ { "\$share/g/bench/#", 1 }, { "bench-done", 1 } }) end
c.on_subscribe = function() io.open(os.getenv("OUT") .. ".ready", "w"):close() end
c.on_message = function(client, _, m)
	if m.topic == "bench-done" then
		out:close()
		client:disconnect()
	else
		out:write(m.payload, "\n")
	end
end
c:connect("127.0.0.1", $BROKER_PORT)
LUA

cat >"$work/pub.lua" <<LUA
local mqtt = require "mqlua"
local c = mqtt.Client { client_id = "bench-pub", store = false }
c:connect("127.0.0.1", $BROKER_PORT)
for i = 1, $N do
	c:publish("bench/" .. (i % 10), "msg-" .. i, 1)
end
assert(mqtt.wait_until(function() return c:queue_depth() == 0 end, 40), "publishing timed out")
c:publish("bench-done", "", 1):wait_for_publish(5)
c:disconnect()
LUA

start_ns=$(date +%s%N)
pids=()
for i in 1 2 3; do
	OUT="$work/got$i" ID="bench-sub$i" timeout 50 "$MQLUA" "$work/sub.lua" 2>"$work/sub$i.err" &
	pids+=($!)
	echo "$!" >>"$SH_STATE/pids"
done
ready() { [ -f "$work/got1.ready" ] && [ -f "$work/got2.ready" ] && [ -f "$work/got3.ready" ]; }
if ! wait_for 10 ready; then
	not_ok "three subscribers subscribed within 10 s" "$(cat "$work"/sub*.err)"
	finish
fi
ok "three mqlua processes subscribed to \$share/g/bench/# at QoS 1"

timeout 50 "$MQLUA" "$work/pub.lua" 2>"$work/pub.err"
pub_rc=$?
failed=0
for pid in "${pids[@]}"; do
	wait "$pid" || failed=$((failed + 1))
done
secs=$(awk -v ns=$(($(date +%s%N) - start_ns)) 'BEGIN { printf "%.1f", ns / 1e9 }')
if [ "$pub_rc" -eq 0 ] && [ "$failed" -eq 0 ]; then
	ok "$N QoS 1 messages published and every subscriber finished within 50 s (${secs} s)"
else
	not_ok "$N QoS 1 messages published and every subscriber finished within 50 s" \
		"publisher exit $pub_rc, $failed subscriber(s) failed
$(tail -n 5 "$work/pub.err" "$work"/sub*.err)"
fi

counts=$(wc -l <"$work/got1"),$(wc -l <"$work/got2"),$(wc -l <"$work/got3")
total=$(cat "$work"/got[123] | wc -l)
doubled=$(cat "$work"/got[123] | sort | uniq -d | wc -l)
seq -f 'msg-%.0f' 1 "$N" | sort >"$work/want"
missing=$(cat "$work"/got[123] | sort -u | comm -23 "$work/want" - | wc -l)
unknown=$(cat "$work"/got[123] | sort -u | comm -13 "$work/want" - | wc -l)
if [ "$total" -eq "$N" ] && [ "$doubled" -eq 0 ] && [ "$missing" -eq 0 ] && [ "$unknown" -eq 0 ]; then
	ok "every message received exactly once across the three (per process: $counts)"
else
	not_ok "every message received exactly once across the three" \
		"received $total of $N ($counts per process), $doubled doubled, $missing missing, $unknown unknown"
fi

share_ok=1
for i in 1 2 3; do
	[ "$(wc -l <"$work/got$i")" -gt 0 ] || share_ok=0
done
if [ "$share_ok" -eq 1 ]; then
	ok "each process got a share ($counts)"
else
	not_ok "each process got a share" "per process: $counts"
fi

finish
