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
trap 'umount "$D" 2>/dev/null || umount -l "$D" 2>/dev/null; sh_cleanup' EXIT
dd if=/dev/zero of="$D/filler" bs=1024 count=1024 2>/dev/null
echo "# tmpfs on $D: $(df -k "$D" | awk 'NR == 2 { print $2 " KB, " $4 " KB free" }')"

spawn fill "$MQLUA" --store "$D/store.db" "$FAULTS_LIB/fill.lua" fd-pub "$WORK/freed" "$AFTER"
pub=$SPAWNED
if ! wait_for 90 grep -qE '^(again|never_full)' "$WORK/fill.out"; then
	not_ok "the publisher fills the disk" "$(tail_of "$WORK/fill.out" "$WORK/fill.err")"
	finish
fi
echo "# $(tr '\n' ' ' <"$WORK/fill.out")"
echo "# disk now: $(df -k "$D" | awk 'NR == 2 { print $4 " KB free" }'); $(ls -l "$D" | sed -n '2,$p' | awk '{ print $NF "=" $5 }' | tr '\n' ' ')"
full=$(grep '^full ' "$WORK/fill.out")
K=$(field "$full" accepted)
rc=$(field "$full" rc)
if [ -n "$full" ] && [ "$rc" != nil ] && [ "$rc" != 0 ]; then
	ok "on a full disk publish returns an error code (rc $rc after $K accepted 1 KB messages)"
else
	not_ok "on a full disk publish returns an error code" \
		"$(cat "$WORK/fill.out")
$(tail_of "$WORK/fill.err")"
fi
if [ -n "$full" ] && ! grep -q '^depth_mismatch' "$WORK/fill.out" && [ "$(field "$full" depth)" = "$K" ]; then
	ok "queue_depth equals the number of accepted publishes when the disk is full ($K)"
else
	not_ok "queue_depth equals the number of accepted publishes when the disk is full" \
		"$(cat "$WORK/fill.out")"
fi

rm -f "$D/filler"
touch "$WORK/freed"
wait_exit "$pub" 60
pub_rc=$EXIT_RC
echo "# after freeing 1 MB: exit $pub_rc: $(grep -E '^after' "$WORK/fill.out" | tr '\n' ' ')"
after=$(grep '^after accepted' "$WORK/fill.out")
total=$(field "$after" accepted)
if [ "$pub_rc" = 0 ] && [ "$(field "$after" failed)" = 0 ] && [ "$total" = $((K + AFTER)) ]; then
	ok "once space is back the same process publishes again ($AFTER more, all rc 0), exit 0"
else
	not_ok "once space is back the same process publishes again ($AFTER more, all rc 0), exit 0" \
		"exit $pub_rc
$(tail_of "$WORK/fill.out" "$WORK/fill.err")"
fi
total=${total:-$K}

timeout 60 "$MQLUA" --store "$D/store.db" "$FAULTS_LIB/drain.lua" - 0 fd-pub faults/full \
	>"$WORK/peek.out" 2>"$WORK/peek.err" </dev/null
echo "# restarted, not connecting: $(cat "$WORK/peek.out")"
grep -q "^found depth=$total " "$WORK/peek.out" &&
	ok "a new process with the same client_id finds all $total accepted messages" ||
	not_ok "a new process with the same client_id finds all $total accepted messages" \
		"$(tail_of "$WORK/peek.out" "$WORK/peek.err")"

PORT=$(free_port) || exit 1
mkdir -p "$WORK/broker"
mosq_conf "$WORK/broker" "$PORT" 'persistence false'
mosq_start "$WORK/broker" "$PORT" || { not_ok "a broker starts" "$(tail_of "$WORK/broker/mosquitto.log")"; finish; }
spawn sub "$MQLUA" "$FAULTS_LIB/sub.lua" 127.0.0.1 "$PORT" fd-sub faults/full 1 "$WORK/sub.txt" "$total"
sub=$SPAWNED
wait_for 15 test -e "$WORK/sub.txt.ready" || { not_ok "the subscriber subscribes" "$(tail_of "$WORK/sub.err")"; finish; }
timeout 90 "$MQLUA" --store "$D/store.db" "$FAULTS_LIB/drain.lua" 127.0.0.1 "$PORT" fd-pub faults/full \
	>"$WORK/drain.out" 2>"$WORK/drain.err" </dev/null
rc=$?
echo "# drain: exit $rc: $(tr '\n' ' ' <"$WORK/drain.out")"
wait_for 30 test -e "$WORK/sub.txt.done"
kill -TERM "$sub" 2>/dev/null
wait_exit "$sub" 10
counts=$(seq_count "$WORK/sub.txt" "$total")
echo "# subscriber received: $counts"
if [ "$rc" -eq 0 ] && [ "$(field "$counts" missing)" = 0 ] && [ "$(field "$counts" out_of_range)" = 0 ] &&
	[ "$(field "$counts" out_of_order)" = 0 ]; then
	ok "the restarted publisher delivers all $total accepted messages, in order (before and after the full disk)"
else
	not_ok "the restarted publisher delivers all $total accepted messages, in order (before and after the full disk)" \
		"drain exit $rc; $counts
$(tail_of "$WORK/drain.out" "$WORK/drain.err" "$WORK/sub.err")"
fi
san=$(sanitizer_report "$WORK"/*.err "$WORK"/*.out)
[ -z "$san" ] && ok "no sanitizer report from any child" || not_ok "no sanitizer report from any child" "$san"
finish
