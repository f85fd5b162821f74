# no_broker.sh - fault 1 of the store: no broker at all while a script
# publishes. 10,000 QoS1 messages are queued by a process that never
# connects and exits; the broker starts; the same client_id and store come
# back; a subscriber with a persistent session receives every message,
# once, in order, followed by messages published after the restart.
# A second case keeps the publisher alive (connect_async) through an outage
# of a broker with persistence, which keeps the subscriber's session.
. tests/lib/sh.sh
. tests/faults/lib/faults.sh

N=10000
EXTRA=5
WORK=$(tmpdir) || exit 1
STORE=$WORK/store.db
PORT=$(free_port) || exit 1
export MQLUA_STORE=$WORK/unused-default.db   # no child may touch ~/.local/state
echo "# work dir $WORK, broker port $PORT, mqlua $MQLUA"

# ---- case 1: queue with no broker, exit, connect again ----------------------
echo "# publishing $N QoS1 messages with no broker running (client nb-pub, store $STORE)"
timeout 120 "$MQLUA" --store "$STORE" "$FAULTS_LIB/offline_pub.lua" nb-pub "$N" faults/nobroker \
	>"$WORK/offline.out" 2>"$WORK/offline.err" </dev/null
rc=$?
echo "# offline publisher: exit $rc: $(cat "$WORK/offline.out")"
if [ "$rc" -eq 0 ] && [ -s "$STORE" ]; then
	ok "$N publishes with no broker: every rc 0, mids increasing, queue_depth $N, exit 0"
else
	not_ok "$N publishes with no broker: every rc 0, mids increasing, queue_depth $N, exit 0" \
		"exit $rc; store file: $(ls -l "$STORE" 2>&1)
$(tail_of "$WORK/offline.out" "$WORK/offline.err")"
	finish
fi

mode=$(stat -c %a "$STORE")
[ "$mode" = 600 ] && ok "the store file is created with mode 0600" ||
	not_ok "the store file is created with mode 0600" "mode $mode"

timeout 60 "$MQLUA" --store "$STORE" "$FAULTS_LIB/drain.lua" - 0 nb-pub faults/nobroker \
	>"$WORK/peek.out" 2>"$WORK/peek.err" </dev/null
rc=$?
echo "# a new process, same client_id, not connecting: $(cat "$WORK/peek.out")"
if [ "$rc" -eq 0 ] && grep -q "^found depth=$N " "$WORK/peek.out"; then
	ok "a new process with the same client_id and store finds the $N messages queued"
else
	not_ok "a new process with the same client_id and store finds the $N messages queued" \
		"exit $rc
$(tail_of "$WORK/peek.out" "$WORK/peek.err")"
fi

mkdir -p "$WORK/b1"
mosq_conf "$WORK/b1" "$PORT" 'persistence false'
if ! mosq_start "$WORK/b1" "$PORT"; then
	not_ok "a broker starts" "$(tail_of "$WORK/b1/mosquitto.log")"
	finish
fi
echo "# broker started; subscriber nb-sub (clean_session false, QoS1) subscribes first"
spawn sub1 "$MQLUA" "$FAULTS_LIB/sub.lua" 127.0.0.1 "$PORT" nb-sub faults/nobroker 1 "$WORK/sub1.txt" $((N + EXTRA))
sub=$SPAWNED
if ! fwait 15 test -e "$WORK/sub1.txt.ready"; then
	not_ok "the subscriber subscribes" "$(tail_of "$WORK/sub1.out" "$WORK/sub1.err")"
	finish
fi

echo "# the same client_id connects again and publishes $EXTRA more ($((N + 1))..$((N + EXTRA)))"
timeout 120 "$MQLUA" --store "$STORE" "$FAULTS_LIB/drain.lua" 127.0.0.1 "$PORT" nb-pub faults/nobroker \
	"$EXTRA" $((N + 1)) 90 >"$WORK/drain.out" 2>"$WORK/drain.err" </dev/null
rc=$?
echo "# draining publisher: exit $rc: $(tr '\n' ' ' <"$WORK/drain.out")"
if [ "$rc" -eq 0 ] && grep -q '^drained depth=0' "$WORK/drain.out"; then
	ok "the restarted publisher sends its backlog and every message is acknowledged"
else
	not_ok "the restarted publisher sends its backlog and every message is acknowledged" \
		"exit $rc
$(tail_of "$WORK/drain.out" "$WORK/drain.err")"
fi

wait_settled "$WORK/sub1.txt" 10
kill -TERM "$sub" 2>/dev/null
wait_exit "$sub" 10
counts=$(seq_count "$WORK/sub1.txt" $((N + EXTRA)))
echo "# subscriber received: $counts"
if [ "$(field "$counts" missing)" = 0 ] && [ "$(field "$counts" out_of_range)" = 0 ]; then
	ok "the subscriber received all $N queued messages and the $EXTRA new ones"
else
	not_ok "the subscriber received all $N queued messages and the $EXTRA new ones" \
		"$counts
$(tail_of "$WORK/sub1.err" "$WORK/drain.err")"
fi
if [ "$(field "$counts" out_of_order)" = 0 ] && [ "$(field "$counts" dups)" = 0 ]; then
	ok "in publish order, the backlog before the new messages, no duplicates"
else
	not_ok "in publish order, the backlog before the new messages, no duplicates" \
		"$counts; first 20 received: $(head -n 20 "$WORK/sub1.txt" | tr '\n' ' ')"
fi

timeout 60 "$MQLUA" --store "$STORE" "$FAULTS_LIB/drain.lua" - 0 nb-pub faults/nobroker \
	>"$WORK/peek2.out" 2>"$WORK/peek2.err" </dev/null
grep -q '^found depth=0 ' "$WORK/peek2.out" &&
	ok "after the drain the store holds nothing for nb-pub" ||
	not_ok "after the drain the store holds nothing for nb-pub" "$(tail_of "$WORK/peek2.out" "$WORK/peek2.err")"
mosq_kill TERM

# ---- case 2: the publisher stays up through the outage ----------------------
# The broker keeps the subscriber's session in its persistence file (saved
# on SIGTERM), so the subscriber does not need to be there first.
PORT2=$(free_port) || exit 1
mkdir -p "$WORK/b2"
mosq_conf "$WORK/b2" "$PORT2" 'persistence true' "persistence_location $WORK/b2/"
mosq_start "$WORK/b2" "$PORT2" || { not_ok "a broker with persistence starts" "$(tail_of "$WORK/b2/mosquitto.log")"; finish; }
spawn sub2 "$MQLUA" "$FAULTS_LIB/sub.lua" 127.0.0.1 "$PORT2" nb-sub2 faults/nobroker2 1 "$WORK/sub2.txt" "$N"
sub=$SPAWNED
fwait 15 test -e "$WORK/sub2.txt.ready" || { not_ok "subscriber 2 subscribes" "$(tail_of "$WORK/sub2.err")"; finish; }
mosq_kill TERM
echo "# broker stopped (session saved); a publisher starts, publishes $N with connect_async retrying"
spawn pub2 "$MQLUA" --store "$WORK/store2.db" "$FAULTS_LIB/stream_pub.lua" 127.0.0.1 "$PORT2" nb-pub2 1 "$N" \
	faults/nobroker2 "$WORK/pub2.progress"
pub=$SPAWNED
fwait 60 grep -q "^$((N + 1)) $N\$" "$WORK/pub2.progress"
echo "# publisher progress (next depth) while the broker is down: $(cat "$WORK/pub2.progress" 2>&1)"
if grep -q "^$((N + 1)) $N\$" "$WORK/pub2.progress" && kill -0 "$pub" 2>/dev/null; then
	ok "while the broker is down the running publisher queues all $N (queue_depth $N)"
else
	not_ok "while the broker is down the running publisher queues all $N (queue_depth $N)" \
		"$(tail_of "$WORK/pub2.progress" "$WORK/pub2.out" "$WORK/pub2.err")"
fi
sleep 1
mosq_start "$WORK/b2" "$PORT2" || { not_ok "the broker restarts" "$(tail_of "$WORK/b2/mosquitto.log")"; finish; }
wait_exit "$pub" 90
pub_rc=$EXIT_RC
echo "# publisher: exit $pub_rc: $(tr '\n' ' ' <"$WORK/pub2.out")"
wait_settled "$WORK/sub2.txt" 10
kill -TERM "$sub" 2>/dev/null
wait_exit "$sub" 10
counts=$(seq_count "$WORK/sub2.txt" "$N")
echo "# subscriber 2 received: $counts"
if [ "$pub_rc" = 0 ] && [ "$(field "$counts" missing)" = 0 ] &&
	[ "$(field "$counts" out_of_order)" = 0 ] && [ "$(field "$counts" out_of_range)" = 0 ]; then
	ok "publisher alive through the outage: once the broker is back all $N arrive, in order"
else
	not_ok "publisher alive through the outage: once the broker is back all $N arrive, in order" \
		"$counts
$(tail_of "$WORK/pub2.out" "$WORK/pub2.err" "$WORK/sub2.err")"
fi

# connect_async opens one connection: each publisher shows up in its
# broker's log connecting once, and no client's connection is ever taken
# over by a second one of the same client_id
conns1=$(grep -c 'New client connected from .* as nb-pub ' "$WORK/b1/mosquitto.log")
conns2=$(grep -c 'New client connected from .* as nb-pub2 ' "$WORK/b2/mosquitto.log")
taken=$(grep -h 'already connected, closing old connection' "$WORK/b1/mosquitto.log" "$WORK/b2/mosquitto.log")
echo "# connections seen by the brokers: nb-pub $conns1, nb-pub2 $conns2"
if [ "$conns1" = 1 ] && [ "$conns2" = 1 ] && [ -z "$taken" ]; then
	ok "connect_async opens one connection: each publisher connects once, no client_id connects twice"
else
	not_ok "connect_async opens one connection: each publisher connects once, no client_id connects twice" \
		"nb-pub connected $conns1 times, nb-pub2 $conns2 times
$(head -n 5 <<<"$taken")
$(grep -h 'New client connected' "$WORK/b1/mosquitto.log" "$WORK/b2/mosquitto.log" | head -n 10)"
fi

san=$(sanitizer_report "$WORK"/*.err)
[ -z "$san" ] && ok "no sanitizer report from any child" || not_ok "no sanitizer report from any child" "$san"
finish
