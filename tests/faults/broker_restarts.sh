# broker_restarts.sh - fault 3 of the store: the broker dies (SIGKILL) and
# comes back on the same port 5 times while one mqlua process publishes a
# 50,000-message QoS1 stream; the publisher must lose nothing.
#
# What makes the count sound: the claim is about the PUBLISHER. The broker
# keeps the subscriber's session (subscription and queued messages) across
# its restarts in its persistence file, saved after every change
# (autosave_on_changes, autosave_interval 1), and the subscriber
# (clean_session false, QoS1) reconnects by itself. mosquitto can still lose
# a message it had already acknowledged when it is SIGKILLed before saving
# it: that loss is the broker's, not the publisher's. So each message goes
# to its own topic faults/br/<n>, the broker logs at debug level, and a
# number the subscriber never got is blamed on the broker only if the log
# shows the broker received it and sent its PUBACK in a life that ended by
# our SIGKILL; any other missing number fails the test. Broker losses are
# counted and printed (and fail the test if they exceed 1% of the stream,
# which would make it meaningless).
. tests/lib/sh.sh
. tests/faults/lib/faults.sh

N=${FAULTS_BROKER_N:-50000}
RESTARTS=5
WORK=$(tmpdir) || exit 1
PORT=$(free_port) || exit 1
SEED=${FAULTS_SEED:-$(((RANDOM << 15) | RANDOM))}
RANDOM=$SEED
export MQLUA_STORE=$WORK/unused-default.db
B=$WORK/broker
mkdir -p "$B"
echo "# work dir $WORK, broker port $PORT, seed $SEED (FAULTS_SEED=$SEED to repeat), mqlua $MQLUA"

# the broker saves its whole state after every change: keep that file in
# memory (/dev/shm) when we can, the disk's fsyncs make it 5 times slower
P=$B
if [ -d /dev/shm ] && [ -w /dev/shm ] && P=$(mktemp -d /dev/shm/mqlua-faults.XXXXXX); then
	printf '%s\n' "$P" >>"$SH_STATE/tmpdirs"
	chmod 777 "$P"
else
	P=$B
fi
mosq_conf "$B" "$PORT" 'persistence true' "persistence_location $P/" \
	'autosave_interval 1' "autosave_on_changes ${FAULTS_AUTOSAVE_ON_CHANGES:-true}" 'log_type debug'
mosq_start "$B" "$PORT" || { not_ok "a broker starts" "$(tail_of "$B/mosquitto.log")"; finish; }

spawn sub "$MQLUA" "$FAULTS_LIB/sub.lua" 127.0.0.1 "$PORT" br-sub 'faults/br/#' 1 "$WORK/sub.txt" "$N"
sub=$SPAWNED
fwait 15 test -e "$WORK/sub.txt.ready" || { not_ok "the subscriber subscribes" "$(tail_of "$WORK/sub.err")"; finish; }


mapfile -t targets < <(spread_points "$RESTARTS" $((N / 10)) $((2 * N * 9 / 10)))
echo "# $RESTARTS broker kills at publisher progress (published + acknowledged, out of $((2 * N))): ${targets[*]}"

started=$(date +%s)
spawn pub "$MQLUA" --store "$WORK/store.db" "$FAULTS_LIB/stream_pub.lua" 127.0.0.1 "$PORT" br-pub 1 "$N" \
	'faults/br/%d' "$WORK/pub.progress" 200
pub=$SPAWNED
log="" kills=0
for target in "${targets[@]}"; do
	if ! wait_progress "$WORK/pub.progress" "$target" "$pub"; then
		not_ok "the publisher reaches progress $target" "stalled for ${STALL:-15} s at next/depth $(cat "$WORK/pub.progress" 2>&1)
$(tail_of "$WORK/pub.out" "$WORK/pub.err")"
		break
	fi
	gone "$pub" && break
	mosq_kill KILL
	kills=$((kills + 1))
	down=0.$((2 + RANDOM % 8))
	log+="kill $kills at next/depth $(cat "$WORK/pub.progress"), down ${down}s; "
	sleep "$down"
	mosq_start "$B" "$PORT" || { not_ok "the broker restarts on port $PORT" "$(tail_of "$B/mosquitto.log")"; finish; }
done
echo "# $log"
wait_progress "$WORK/pub.progress" $((2 * N + 1)) "$pub"
wait_exit "$pub" 5
pub_rc=$EXIT_RC
echo "# publisher: exit $pub_rc: $(tr '\n' ' ' <"$WORK/pub.out") ($(($(date +%s) - started)) s)"
if [ "$pub_rc" = 0 ] && grep -q "^done next=$((N + 1)) depth=0" "$WORK/pub.out"; then
	ok "the publisher rides out $kills broker kills and ends with every message acknowledged"
else
	not_ok "the publisher rides out $kills broker kills and ends with every message acknowledged" \
		"exit $pub_rc
$(tail_of "$WORK/pub.out" "$WORK/pub.err")"
fi
[ "$kills" -eq "$RESTARTS" ] && ok "the broker was SIGKILLed and restarted $RESTARTS times during the stream" ||
	not_ok "the broker was SIGKILLed and restarted $RESTARTS times during the stream" "$log"

wait_settled "$WORK/sub.txt" 10
kill -TERM "$sub" 2>/dev/null
wait_exit "$sub" 10
counts=$(seq_count "$WORK/sub.txt" "$N")
echo "# subscriber received: $counts"
echo "# duplicates: $(field "$counts" dups)"

# The numbers the subscriber never got, each with the broker's last word
# on it: "acked" (received and PUBACK sent in a life that ended by SIGKILL:
# the broker lost it), else "publisher" (the broker never acknowledged it
# before a kill: lost on the publisher's side).
awk -v n="$N" '/^[0-9]+$/ { got[$1 + 0] = 1 } END { for (i = 1; i <= n; i++) if (!(i in got)) print i }' \
	"$WORK/sub.txt" >"$WORK/missing.txt"
awk -v pub=br-pub -v missing_file="$WORK/missing.txt" '
	BEGIN { while ((getline m < missing_file) > 0) missing[m] = 1 }
	/^=== life/ { life++; delete topic_of; next }
	index($0, "Received PUBLISH from " pub " (") {
		if (match($0, /, m[0-9]+, /)) mid = substr($0, RSTART + 3, RLENGTH - 5)
		if (match($0, /faults\/br\/[0-9]+/)) topic_of[mid] = substr($0, RSTART + 10, RLENGTH - 10)
		next
	}
	index($0, "Sending PUBACK to " pub " (") {
		if (match($0, /\(m[0-9]+,/)) {
			mid = substr($0, RSTART + 2, RLENGTH - 3)
			if (mid in topic_of) acked[topic_of[mid]] = life
		}
	}
	END {
		for (m in missing) {
			if ((m in acked) && acked[m] < life) { broker++; if (broker <= 10) bl = bl " " m }
			else { publisher++; if (publisher <= 10) pl = pl " " m }
		}
		printf "broker_lost=%d publisher_lost=%d broker_examples=%s publisher_examples=%s lives=%d\n",
			broker, publisher, (bl == "" ? "-" : bl), (pl == "" ? "-" : pl), life
	}' "$B/mosquitto.log" | tr -s ' ' >"$WORK/blame.txt"
blame=$(cat "$WORK/blame.txt")
echo "# missing numbers by who lost them: $blame"
broker_lost=$(field "$blame" broker_lost)
publisher_lost=$(field "$blame" publisher_lost)
if [ "$(field "$counts" out_of_range)" = 0 ] && [ "${publisher_lost:-x}" = 0 ]; then
	ok "nothing lost by the publisher: all $N numbers reached the subscriber ($broker_lost lost by the SIGKILLed broker after acknowledging them)"
else
	not_ok "nothing lost by the publisher: all $N numbers reached the subscriber ($broker_lost lost by the SIGKILLed broker after acknowledging them)" \
		"$counts
$blame
kills: $log
$(tail_of "$WORK/pub.err" "$WORK/sub.err")"
fi
if [ "${broker_lost:-x}" != x ] && [ "$broker_lost" -le $((N / 100)) ]; then
	ok "the broker's own losses stay small enough for the count to mean something ($broker_lost <= $((N / 100)))"
else
	not_ok "the broker's own losses stay small enough for the count to mean something" "$blame"
fi
san=$(sanitizer_report "$WORK"/*.err)
[ -z "$san" ] && ok "no sanitizer report from the publisher or the subscriber" ||
	not_ok "no sanitizer report from the publisher or the subscriber" "$san"
finish
