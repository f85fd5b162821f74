# kill9_publish.sh - fault 2 of the store: kill -9 of a publishing mqlua.
# A publisher (lib/stream_pub.lua) publishes 1..N, keeping its place in
# mqlua.state.next (committed with the outbox rows of the same loop
# iteration, batches of 200). It is killed with SIGKILL at 10 random points
# spread over its run (over "progress" = published + acknowledged, so kills
# land while it publishes and while it drains its backlog) and restarted
# each time with the same client_id and store, then left to finish. A
# subscriber with a persistent session, up the whole time, must have every
# number at least once; duplicates are allowed, counted and printed.
# QoS 1 with 50,000 messages (publisher with clean_session = false), then
# QoS 2 with 20,000 (clean_session = true, as the README says to publish
# QoS 2: a broker keeping the session would hold the dead process's
# half-finished QoS 2 exchanges, which libmosquitto cannot resume).
# Before those: what mqlua.sleep() committed survives kill -9, and a
# clean_session = false client that finds QoS 2 messages of an earlier
# process in its queue says so (WARN on stderr).
# FAULTS_SEED=N reproduces the kill points of an earlier run;
# FAULTS_KILL9_SESSION2=persistent runs the QoS 2 series with
# clean_session = false (it then loses messages: what the README warns of).
. tests/lib/sh.sh
. tests/faults/lib/faults.sh

KILLS=10
WORK=$(tmpdir) || exit 1
PORT=$(free_port) || exit 1
SEED=${FAULTS_SEED:-$(((RANDOM << 15) | RANDOM))}
RANDOM=$SEED
export MQLUA_STORE=$WORK/unused-default.db
echo "# work dir $WORK, broker port $PORT, seed $SEED (FAULTS_SEED=$SEED to repeat), mqlua $MQLUA"

mkdir -p "$WORK/broker"
mosq_conf "$WORK/broker" "$PORT" 'persistence false'
mosq_start "$WORK/broker" "$PORT" || { not_ok "a broker starts" "$(tail_of "$WORK/broker/mosquitto.log")"; finish; }

# ---- the group commit itself: what mqlua.sleep() committed survives kill -9
for pause in 0 0.01; do
	name="kill -9 right after mqlua.sleep($pause): the 10 messages and state.next published before it survive"
	timeout 30 "$MQLUA" --store "$WORK/commit-$pause.db" "$FAULTS_LIB/commit_kill.lua" k9-commit 10 "$pause" \
		>"$WORK/commit-$pause.out" 2>"$WORK/commit-$pause.err" </dev/null
	rc=$?
	timeout 30 "$MQLUA" --store "$WORK/commit-$pause.db" "$FAULTS_LIB/drain.lua" - 0 k9-commit faults/commit \
		>"$WORK/commit-$pause.peek" 2>&1 </dev/null
	echo "# sleep($pause) then kill -9: exit $rc; restarted: $(cat "$WORK/commit-$pause.peek")"
	if [ "$rc" -eq 137 ] && grep -q '^found depth=10 .* state.next=11$' "$WORK/commit-$pause.peek"; then
		ok "$name"
	else
		not_ok "$name" "exit $rc (137 expected)
$(tail_of "$WORK/commit-$pause.out" "$WORK/commit-$pause.err" "$WORK/commit-$pause.peek")"
	fi
done

# ---- QoS 2 messages of an earlier process, found by clean_session = false -
# (no broker: the rows stay queued). The phrase is the README's promise.
STALE="QoS 2 messages of an earlier process are queued"
Q2=$WORK/qos2-rows.db
# qos2_step NAME SESSION N: runs qos2_queue.lua on $Q2 (client k9-q2rows);
# output in $WORK/NAME.out and .err.
qos2_step() {
	timeout 30 "$MQLUA" --store "$Q2" "$FAULTS_LIB/qos2_queue.lua" k9-q2rows "$2" "$3" \
		>"$WORK/$1.out" 2>"$WORK/$1.err" </dev/null
	echo "# qos2_queue.lua $2 $3: exit $?: $(tr '\n' ' ' <"$WORK/$1.out")| stderr: $(head -c 400 "$WORK/$1.err" | tr '\n' '|')"
}
qos2_step q2rows-first persistent 5
qos2_step q2rows-again persistent 0
qos2_step q2rows-clean clean 0
name="a clean_session = false client finding 5 QoS 2 messages of an earlier process logs a WARN: \"$STALE\""
if grep -q '^found depth=5$' "$WORK/q2rows-again.out" && grep 'WARN' "$WORK/q2rows-again.err" | grep -qF "$STALE"; then
	ok "$name"
else
	not_ok "$name" "$(tail_of "$WORK/q2rows-first.out" "$WORK/q2rows-first.err" "$WORK/q2rows-again.out" "$WORK/q2rows-again.err")"
fi
name="no such warning when nothing is queued yet, with clean_session = true, or for QoS 1 messages of an earlier process"
quiet=""
for f in q2rows-first.err q2rows-clean.err commit-0.01.peek; do
	grep -qF "$STALE" "$WORK/$f" && quiet+="$f warns; "
done
grep -q '^found depth=0$' "$WORK/q2rows-first.out" || quiet+="the first process found a queue already; "
grep -q '^found depth=5$' "$WORK/q2rows-clean.out" || quiet+="the clean_session = true process did not find the 5 messages; "
grep -q '^found depth=10 ' "$WORK/commit-0.01.peek" || quiet+="the QoS 1 peek did not find its 10 messages; "
san=$(sanitizer_report "$WORK"/q2rows-*.err)
[ -n "$san" ] && quiet+="sanitizer: $san; "
if [ -z "$quiet" ]; then
	ok "$name"
else
	not_ok "$name" "$quiet
$(tail_of "$WORK/q2rows-first.err" "$WORK/q2rows-clean.out" "$WORK/q2rows-clean.err" "$WORK/commit-0.01.peek")"
fi

STALL=15

# run_case QOS N SESSION: one whole kill series and its verdicts; SESSION is
# the publisher's: persistent (clean_session = false) or clean (true).
run_case() {
	local qos=$1 n=$2 session=$3 tag=q$1 label
	[ "$session" = clean ] && label="QoS $qos (clean_session = true)" || label="QoS $qos (clean_session = false)"
	local store=$WORK/$tag.db prog=$WORK/$tag.progress sub pid k target p rc
	local targets=() landed=0 log="" started ended
	started=$(date +%s)

	spawn "sub-$tag" "$MQLUA" "$FAULTS_LIB/sub.lua" 127.0.0.1 "$PORT" "k9-sub-$tag" "faults/kill9/$tag" "$qos" \
		"$WORK/sub-$tag.txt" "$n"
	sub=$SPAWNED
	if ! fwait 15 test -e "$WORK/sub-$tag.txt.ready"; then
		not_ok "$label: the subscriber subscribes" "$(tail_of "$WORK/sub-$tag.err")"
		return
	fi

	# 10 kill points spread over the progress range: one at random in each
	# of 10 equal slices
	# (the last tenth of the range is left out: the publisher may finish
	# between two looks at its progress)
	mapfile -t targets < <(spread_points "$KILLS" 0 $((2 * n * 9 / 10)))
	echo "# $label, $n messages: kill points (progress out of $((2 * n))): ${targets[*]}"

	for ((k = 0; k < KILLS; k++)); do
		target=${targets[$k]}
		rm -f "$prog"
		spawn "pub-$tag-$k" "$MQLUA" --store "$store" "$FAULTS_LIB/stream_pub.lua" 127.0.0.1 "$PORT" \
			"k9-pub-$tag" "$qos" "$n" "faults/kill9/$tag" "$prog" 200 "$session"
		pid=$SPAWNED
		# a restart may begin past this kill point already (its progress is
		# recomputed from the store): then it must move on a little first,
		# so that no two kills land on the same startup
		fwait 15 progress "$prog"
		p=$(progress "$prog") || p=0
		[ "$p" -ge "$target" ] && target=$((p + 1 + RANDOM % (n / 50 + 1)))
		if ! wait_progress "$prog" "$target" "$pid"; then
			not_ok "$label: run $((k + 1)) reaches progress $target (stalled at $(progress "$prog") for $STALL s)" \
				"progress file: $(cat "$prog" 2>&1)
$(tail_of "$WORK/pub-$tag-$k.out" "$WORK/pub-$tag-$k.err")"
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			break
		fi
		sleep "0.0$((RANDOM % 10))"
		p=$(cat "$prog" 2>/dev/null)
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rc=$?
		if [ "$rc" -eq 137 ]; then
			landed=$((landed + 1))
			log+="kill $((k + 1)) at next/depth ${p:-?}; "
		else
			log+="run $((k + 1)) ended by itself (exit $rc) before its kill; "
			if [ "$rc" -ne 0 ]; then
				not_ok "$label: run $((k + 1)) ends only by the kill" \
					"exit $rc
$(tail_of "$WORK/pub-$tag-$k.out" "$WORK/pub-$tag-$k.err")"
			fi
			break
		fi
	done
	echo "# $label: $log"

	# the last run: to the end
	rm -f "$prog"
	spawn "pub-$tag-last" "$MQLUA" --store "$store" "$FAULTS_LIB/stream_pub.lua" 127.0.0.1 "$PORT" \
		"k9-pub-$tag" "$qos" "$n" "faults/kill9/$tag" "$prog" 200 "$session"
	pid=$SPAWNED
	wait_progress "$prog" $((2 * n + 1)) "$pid"
	wait_exit "$pid" 5
	rc=$EXIT_RC
	echo "# $label: final run: exit $rc: $(tr '\n' ' ' <"$WORK/pub-$tag-last.out")"
	if [ "$rc" = 0 ] && grep -q "^done next=$((n + 1)) depth=0" "$WORK/pub-$tag-last.out"; then
		ok "$label: after $landed kills -9 the restarted publisher completes (state.next = $((n + 1)), queue empty)"
	else
		not_ok "$label: after $landed kills -9 the restarted publisher completes (state.next = $((n + 1)), queue empty)" \
			"exit $rc
$(tail_of "$WORK/pub-$tag-last.out" "$WORK/pub-$tag-last.err")"
	fi
	[ "$landed" -eq "$KILLS" ] && ok "$label: all $KILLS kills -9 landed on a running publisher" ||
		not_ok "$label: all $KILLS kills -9 landed on a running publisher" "$log"

	wait_settled "$WORK/sub-$tag.txt" 10
	kill -TERM "$sub" 2>/dev/null
	wait_exit "$sub" 10
	local counts
	counts=$(seq_count "$WORK/sub-$tag.txt" "$n")
	ended=$(date +%s)
	echo "# $label: subscriber received: $counts ($((ended - started)) s)"
	echo "# $label: duplicates: $(field "$counts" dups)"
	if [ "$(field "$counts" missing)" = 0 ] && [ "$(field "$counts" out_of_range)" = 0 ]; then
		ok "$label: the subscriber has every number 1..$n ($(field "$counts" dups) duplicates after $landed kills)"
	else
		not_ok "$label: the subscriber has every number 1..$n ($(field "$counts" dups) duplicates after $landed kills)" \
			"$counts
kills: $log
$(tail_of "$WORK/sub-$tag.err")"
	fi
	local san
	san=$(sanitizer_report "$WORK"/pub-"$tag"-*.err "$WORK/sub-$tag.err")
	[ -z "$san" ] && ok "$label: no sanitizer report from any publisher or the subscriber" ||
		not_ok "$label: no sanitizer report from any publisher or the subscriber" "$san"
}

run_case 1 "${FAULTS_KILL9_N1:-50000}" persistent
run_case 2 "${FAULTS_KILL9_N2:-20000}" "${FAULTS_KILL9_SESSION2:-clean}"
finish
