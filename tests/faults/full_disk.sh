# full_disk.sh - fault 5 of the store: the disk under the store fills up.
# The store lives on an 8 MB tmpfs (mount needs root; without it the test
# says it is skipped and why), 5 MB of it taken by a filler file. A
# publisher without a broker (lib/fill.lua) queues 1 KB QoS1 messages, 20
# per loop iteration, keeping every MQTTMessageInfo, until the disk is full.
# What the README promises: the commit fails and is logged (ERROR), the
# messages of that loop turn are reported failed (their info.rc ~= 0 once
# the commit has run, and info:wait_for_publish() raises "message publish
# failed"), later publishes return an error at once until space is back;
# what was committed before stays. So: every message whose info still says
# rc 0 after its commit must reach a subscriber, in order, after a restart
# with the same client_id; none reported failed may; once the filler is
# deleted the same process publishes again with rc 0.
. tests/lib/sh.sh
. tests/faults/lib/faults.sh

AFTER=50
WORK=$(tmpdir) || exit 1
export MQLUA_STORE=$WORK/unused-default.db
D=$WORK/disk
mkdir -p "$D"
echo "# work dir $WORK, mqlua $MQLUA"

if ! out=$(mount -t tmpfs -o size=8m,mode=0755 mqlua-full-disk "$D" 2>&1); then
	ok "full disk: SKIPPED, cannot mount a small tmpfs here ($(id -un): ${out:-mount failed}); no other way to fill a disk from a script"
	finish
fi
trap 'umount "$D" 2>/dev/null || umount -l "$D" 2>/dev/null; faults_cleanup' EXIT
# "space is back" = the filler goes: more than the store itself takes, so
# that SQLite can also checkpoint its WAL into the main file
dd if=/dev/zero of="$D/filler" bs=1024 count=5120 2>/dev/null
echo "# tmpfs on $D: $(df -k "$D" | awk 'NR == 2 { print $2 " KB, " $4 " KB free" }')"

# disk_state: free space and the files on the small disk, on one line.
disk_state() {
	printf '%s KB free; ' "$(df -k "$D" | awk 'NR == 2 { print $4 }')"
	ls -l "$D" | sed -n '2,$p' | awk '{ printf "%s=%s ", $NF, $5 }'
}

spawn fill "$MQLUA" --store "$D/store.db" "$FAULTS_LIB/fill.lua" fd-pub "$WORK/freed" "$AFTER" "$WORK/kept.txt"
pub=$SPAWNED
if ! fwait 90 grep -q '^wait_for_publish' "$WORK/fill.out"; then
	not_ok "the publisher fills the disk" "$(tail_of "$WORK/fill.out" "$WORK/fill.err")"
	finish
fi
echo "# $(grep -v '^failed ' "$WORK/fill.out" | tr '\n' ' ')"
echo "# disk when full: $(disk_state)"
full=$(grep '^full ' "$WORK/fill.out")
again=$(grep '^again ' "$WORK/fill.out")
waited=$(grep '^wait_for_publish ' "$WORK/fill.out")
K=$(field "$full" kept)
rc=$(field "$full" rc)
F=$(($(field "$full" failed_commit || echo 0) + $(field "$full" refused || echo 0)))
failed_commit=$(field "$full" failed_commit)
echo "# failed iteration: $F messages reported failed ($failed_commit by the failed commit, $(field "$full" refused) refused by publish itself), rc $rc:"
echo "#   $(grep ' when=\(commit\|refused\)$' "$WORK/fill.out" | sed 's/^failed //; s/ when=.*//' | head -n 25 | tr '\n' ';')"
echo "# publishes while still full: $(grep ' when=again$' "$WORK/fill.out" | sed 's/^failed //; s/ when=.*//' | tr '\n' ';')"
errors=$(grep 'ERROR' "$WORK/fill.err")
name="on a full disk the failed commit is reported: an ERROR naming the store, and the messages of that loop iteration end with info.rc ~= 0"
if [ -n "$full" ] && [ "$F" -gt 0 ] && [ "$rc" != 0 ] && [ "$rc" != nil ] && grep -qF -- "$D/store.db" <<<"$errors"; then
	ok "$name ($F messages after $K kept, rc $rc)"
else
	not_ok "$name" "$(grep -v '^failed ' "$WORK/fill.out")
errors logged: $(head -n 3 <<<"$errors")
$(tail_of "$WORK/fill.err")"
fi
if [ "$(field "$again" rc_not_0)" = 5 ]; then
	ok "while the disk stays full every publish returns rc ~= 0 at once (5 of 5)"
else
	not_ok "while the disk stays full every publish returns rc ~= 0 at once (5 of 5)" "${again:-no again line}
$(grep 'when=again' "$WORK/fill.out")"
fi
nfailed=$(field "$waited" failed)
if [ "${nfailed:-0}" -gt 0 ] && [ "$(field "$waited" raised)" = "$nfailed" ]; then
	ok "info:wait_for_publish() raises \"message publish failed\" for each of the $nfailed messages reported failed"
else
	not_ok "info:wait_for_publish() raises \"message publish failed\" for each message reported failed" "${waited:-no wait_for_publish line}"
fi

rm -f "$D/filler"
touch "$WORK/freed"
wait_exit "$pub" 60
pub_rc=$EXIT_RC
after=$(grep '^after ' "$WORK/fill.out")
echo "# after freeing the filler: exit $pub_rc: $after"
echo "# disk after the publisher exited: $(disk_state)"
if [ "$pub_rc" = 0 ] && [ -n "$after" ] && [ "$(field "$after" failed)" = 0 ] && [ "$(field "$after" flipped)" = 0 ]; then
	ok "once space is back the same process publishes again ($AFTER more, rc 0 at publish and after the commit), exit 0; no kept message's info turned to rc ~= 0"
else
	not_ok "once space is back the same process publishes again ($AFTER more, rc 0 at publish and after the commit), exit 0; no kept message's info turned to rc ~= 0" \
		"exit $pub_rc
$(tail_of "$WORK/fill.out" "$WORK/fill.err")"
fi
mismatch=$(grep '^depth_mismatch' "$WORK/fill.out")
[ -z "$mismatch" ] && ok "in the publishing process queue_depth() equals the number of kept messages after every commit" ||
	not_ok "in the publishing process queue_depth() equals the number of kept messages after every commit" "$mismatch"
total=$(grep -c . "$WORK/kept.txt" 2>/dev/null)
sed -n 's/^failed number=\([0-9]*\) .*/\1/p' "$WORK/fill.out" >"$WORK/failed.txt"

timeout 60 "$MQLUA" --store "$D/store.db" "$FAULTS_LIB/drain.lua" - 0 fd-pub faults/full \
	>"$WORK/peek.out" 2>"$WORK/peek.err" </dev/null
echo "# restarted, not connecting: $(cat "$WORK/peek.out")"
peek_depth=$(sed -n 's/^found depth=\([0-9]*\) .*/\1/p' "$WORK/peek.out")

PORT=$(free_port) || exit 1
mkdir -p "$WORK/broker"
mosq_conf "$WORK/broker" "$PORT" 'persistence false'
mosq_start "$WORK/broker" "$PORT" || { not_ok "a broker starts" "$(tail_of "$WORK/broker/mosquitto.log")"; finish; }
spawn sub "$MQLUA" "$FAULTS_LIB/sub.lua" 127.0.0.1 "$PORT" fd-sub faults/full 1 "$WORK/sub.txt"
sub=$SPAWNED
fwait 15 test -e "$WORK/sub.txt.ready" || { not_ok "the subscriber subscribes" "$(tail_of "$WORK/sub.err")"; finish; }
timeout 90 "$MQLUA" --store "$D/store.db" "$FAULTS_LIB/drain.lua" 127.0.0.1 "$PORT" fd-pub faults/full \
	>"$WORK/drain.out" 2>"$WORK/drain.err" </dev/null
rc=$?
echo "# drain: exit $rc: $(tr '\n' ' ' <"$WORK/drain.out")"
echo "# disk after the drain: $(disk_state)"
# the drain ended once everything was acknowledged: the subscriber gets
# the last of it at once; a little more time for anything unexpected
has_lines() { [ "$(grep -c . "$1" 2>/dev/null)" -ge "$2" ]; }
fwait 10 has_lines "$WORK/sub.txt" "$total"
sleep 0.5
kill -TERM "$sub" 2>/dev/null
wait_exit "$sub" 10
# Every kept number (rc 0 after its commit) and every number reported
# failed, against what the restarted publisher delivered.
counts=$(awk -v kept_file="$WORK/kept.txt" -v failed_file="$WORK/failed.txt" '
	BEGIN {
		while ((getline k < kept_file) > 0) { want[k + 0] = 1; n++ }
		while ((getline k < failed_file) > 0) { bad[k + 0] = 1; nbad++ }
	}
	/^[0-9]+$/ {
		k = $1 + 0
		if (k in bad) { fd++; if (fd <= 10) fx = fx "," k; next }
		if (!(k in want)) { extra++; next }
		if (k in seen) { dups++; next }
		seen[k] = 1; got++
		if (k < maxk) disorder++
		if (k > maxk) maxk = k
		next
	}
	{ extra++ }
	END {
		for (k in want) if (!(k in seen)) { lost++; if (lost <= 10) lx = lx "," k }
		printf "kept=%d received=%d lost=%d dups=%d reported_failed=%d failed_delivered=%d unexpected=%d out_of_order=%d lost_examples=%s failed_delivered_examples=%s\n",
			n, got, lost, dups, nbad, fd, extra, disorder, (lx == "" ? "-" : substr(lx, 2)), (fx == "" ? "-" : substr(fx, 2))
	}' "$WORK/sub.txt")
echo "# kept and failed messages against the subscriber: $counts"
echo "# duplicates: $(field "$counts" dups)"
name="every message whose info says rc 0 after its commit ($total) is delivered after a restart, in order: nothing committed before the disk filled is lost"
if [ "$rc" -eq 0 ] && [ "${total:-0}" -gt 0 ] && [ "$(field "$counts" lost)" = 0 ] &&
	[ "$(field "$counts" out_of_order)" = 0 ] && [ "$(field "$counts" unexpected)" = 0 ]; then
	ok "$name"
else
	not_ok "$name" "drain exit $rc; $counts
$(grep -v '^failed ' "$WORK/fill.out")
$(grep -E 'ERROR' "$WORK/fill.err" | head -n 5)"
fi
name="none of the $(field "$counts" reported_failed) messages reported failed (info.rc ~= 0) is delivered: they were not stored"
if [ "$(field "$counts" failed_delivered)" = 0 ] && [ "$(field "$counts" reported_failed)" -gt 0 ]; then
	ok "$name"
else
	not_ok "$name" "$counts"
fi
received=$(field "$counts" received)
[ -n "$peek_depth" ] && [ "$peek_depth" = "$total" ] && [ "$peek_depth" = "$received" ] &&
	ok "the restart's queue_depth ($peek_depth) is the number of kept messages and of those delivered" ||
	not_ok "the restart's queue_depth is the number of kept messages and of those delivered" \
		"queue_depth ${peek_depth:-?}, kept ${total:-?}, delivered ${received:-?}"
san=$(sanitizer_report "$WORK"/*.err "$WORK"/*.out)
[ -z "$san" ] && ok "no sanitizer report from any child" || not_ok "no sanitizer report from any child" "$san"
finish
