# full_disk.sh - fault 5 of the store: the disk under the store fills up.
# The store lives on a 4 MB tmpfs (mount needs root; without it the test
# says it is skipped and why), 1 MB of it taken by a filler file. A
# publisher without a broker queues 1 KB QoS1 messages until a publish does
# not return rc 0: that must be an error code (info.rc ~= 0). Every message
# accepted before (rc 0) must survive; once the filler is deleted the same
# process publishes again with rc 0; a restart with the same client_id
# finds every accepted message and delivers them all, in order, to a
# subscriber.
. tests/lib/sh.sh
. tests/faults/lib/faults.sh

AFTER=50
WORK=$(tmpdir) || exit 1
export MQLUA_STORE=$WORK/unused-default.db
D=$WORK/disk
mkdir -p "$D"
echo "# work dir $WORK, mqlua $MQLUA"

if ! out=$(mount -t tmpfs -o size=4m,mode=0755 mqlua-full-disk "$D" 2>&1); then
	ok "full disk: SKIPPED, cannot mount a small tmpfs here ($(id -un): ${out:-mount failed}); no other way to fill a disk from a script"
	finish
fi
trap 'umount "$D" 2>/dev/null || umount -l "$D" 2>/dev/null; faults_cleanup' EXIT
dd if=/dev/zero of="$D/filler" bs=1024 count=1024 2>/dev/null
echo "# tmpfs on $D: $(df -k "$D" | awk 'NR == 2 { print $2 " KB, " $4 " KB free" }')"

# disk_state: free space and the files on the small disk, on one line.
disk_state() {
	printf '%s KB free; ' "$(df -k "$D" | awk 'NR == 2 { print $4 }')"
	ls -l "$D" | sed -n '2,$p' | awk '{ printf "%s=%s ", $NF, $5 }'
}

spawn fill "$MQLUA" --store "$D/store.db" "$FAULTS_LIB/fill.lua" fd-pub "$WORK/freed" "$AFTER" "$WORK/accepted.txt"
pub=$SPAWNED
if ! fwait 90 grep -q '^again' "$WORK/fill.out"; then
	not_ok "the publisher fills the disk" "$(tail_of "$WORK/fill.out" "$WORK/fill.err")"
	finish
fi
echo "# $(tr '\n' ' ' <"$WORK/fill.out")"
echo "# disk when full: $(disk_state)"
full=$(grep '^full ' "$WORK/fill.out")
K=$(field "$full" accepted)
rc=$(field "$full" rc)
if [ -n "$full" ] && [ "$rc" != nil ] && [ "$rc" != 0 ]; then
	ok "on a full disk publish returns an error code (rc $rc after $K accepted 1 KB messages)"
else
	not_ok "on a full disk publish returns an error code (info.rc ~= 0, not a raised error, not rc 0)" \
		"$(cat "$WORK/fill.out")
$(tail_of "$WORK/fill.err")"
fi

rm -f "$D/filler"
touch "$WORK/freed"
wait_exit "$pub" 60
pub_rc=$EXIT_RC
echo "# after freeing the filler: exit $pub_rc: $(grep -E '^after' "$WORK/fill.out" | tr '\n' ' ')"
echo "# disk after the publisher exited: $(disk_state)"
after=$(grep '^after accepted' "$WORK/fill.out")
if [ "$pub_rc" = 0 ] && [ "$(field "$after" failed)" = 0 ]; then
	ok "once space is back the same process publishes again ($AFTER more, all rc 0), exit 0"
else
	not_ok "once space is back the same process publishes again ($AFTER more, all rc 0), exit 0" \
		"exit $pub_rc
$(tail_of "$WORK/fill.out" "$WORK/fill.err")"
fi
total=$(grep -c . "$WORK/accepted.txt" 2>/dev/null || echo 0)
window=$(field "$full" window)
again=$(grep '^again ' "$WORK/fill.out")
again_n=$(field "$again" accepted)

timeout 60 "$MQLUA" --store "$D/store.db" "$FAULTS_LIB/drain.lua" - 0 fd-pub faults/full \
	>"$WORK/peek.out" 2>"$WORK/peek.err" </dev/null
echo "# restarted, not connecting: $(cat "$WORK/peek.out")"
peek_depth=$(sed -n 's/^found depth=\([0-9]*\) .*/\1/p' "$WORK/peek.out")

PORT=$(free_port) || exit 1
mkdir -p "$WORK/broker"
mosq_conf "$WORK/broker" "$PORT" 'persistence false'
mosq_start "$WORK/broker" "$PORT" || { not_ok "a broker starts" "$(tail_of "$WORK/broker/mosquitto.log")"; finish; }
spawn sub "$MQLUA" "$FAULTS_LIB/sub.lua" 127.0.0.1 "$PORT" fd-sub faults/full 1 "$WORK/sub.txt" "$total"
sub=$SPAWNED
fwait 15 test -e "$WORK/sub.txt.ready" || { not_ok "the subscriber subscribes" "$(tail_of "$WORK/sub.err")"; finish; }
timeout 90 "$MQLUA" --store "$D/store.db" "$FAULTS_LIB/drain.lua" 127.0.0.1 "$PORT" fd-pub faults/full \
	>"$WORK/drain.out" 2>"$WORK/drain.err" </dev/null
rc=$?
echo "# drain: exit $rc: $(tr '\n' ' ' <"$WORK/drain.out")"
echo "# disk after the drain: $(disk_state)"
wait_settled "$WORK/sub.txt" 10
kill -TERM "$sub" 2>/dev/null
wait_exit "$sub" 10
# Every accepted number (rc 0) against what the restarted publisher
# delivered. lost_early: lost although published before the last two loop
# iterations before the first error, so committed before the disk filled.
counts=$(awk -v accepted_file="$WORK/accepted.txt" -v window="${window:-0}" -v again="${again_n:-0}" '
	BEGIN { while ((getline k < accepted_file) > 0) { want[k + 0] = 1; n++ } }
	/^[0-9]+$/ {
		k = $1 + 0
		if (!(k in want)) { extra++; next }
		if (k in seen) { dups++; next }
		seen[k] = 1; got++
		if (k < maxk) disorder++
		if (k > maxk) maxk = k
	}
	END {
		for (k in want) if (!(k in seen)) {
			lost++
			if (k <= window || k > again) { early++; if (early <= 10) ex = ex "," k }
			else if (lost - early <= 10) wx = wx "," k
		}
		printf "accepted=%d received=%d lost=%d lost_early=%d dups=%d unexpected=%d out_of_order=%d early_examples=%s window_examples=%s\n",
			n, got, lost, early, dups, extra, disorder, (ex == "" ? "-" : substr(ex, 2)), (wx == "" ? "-" : substr(wx, 2))
	}' "$WORK/sub.txt")
echo "# every accepted message against the subscriber: $counts"
echo "# (numbers ${window:-?}+1..${again_n:-?} were published in the loop iterations around the first error)"
if [ "$rc" -eq 0 ] && [ "$total" -gt 0 ] && [ "$(field "$counts" lost_early)" = 0 ] &&
	[ "$(field "$counts" out_of_order)" = 0 ]; then
	ok "the restarted publisher delivers, in order, every message committed before the disk filled and every one published after space came back"
else
	not_ok "the restarted publisher delivers, in order, every message committed before the disk filled and every one published after space came back" \
		"drain exit $rc; $counts
$(grep -E '^(full|again|after|depth_fell)' "$WORK/fill.out")
$(grep -E 'ERROR' "$WORK/fill.err" | head -n 5)"
fi
if [ "$(field "$counts" lost)" = 0 ]; then
	ok "no message whose publish returned rc 0 was lost, not even in the iteration whose commit failed"
else
	not_ok "no message whose publish returned rc 0 was lost, not even in the iteration whose commit failed" \
		"$(field "$counts" lost) messages accepted with rc 0 never arrived; the script was told only by the log:
$(grep -E 'ERROR' "$WORK/fill.err" | head -n 5)"
fi
received=$(field "$counts" received)
[ -n "$peek_depth" ] && [ "$peek_depth" = "$received" ] &&
	ok "the restart's queue_depth ($peek_depth) matches what it delivered" ||
	not_ok "the restart's queue_depth matches what it delivered" "queue_depth ${peek_depth:-?}, delivered ${received:-?}"
san=$(sanitizer_report "$WORK"/*.err "$WORK"/*.out)
[ -z "$san" ] && ok "no sanitizer report from any child" || not_ok "no sanitizer report from any child" "$san"
finish
