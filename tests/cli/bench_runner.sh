# bench_runner.sh - tests/bench/run's command line (the benchmark itself is
# not part of the suite): --help, --only picking workloads and refusing
# unknown ones, and one quick pass of a single workload end to end.
. tests/lib/sh.sh

BENCH=tests/bench/run

# expect NAME RC TEXT...: the last run exited RC and printed every TEXT.
expect() {
	local name=$1 rc=$2 why="" text
	shift 2
	[ "$RC" -eq "$rc" ] || why="exit status $RC, expected $rc"
	for text in "$@"; do
		grep -qF -- "$text" <<<"$OUT$ERR" || why="${why:+$why; }output lacks: $text"
	done
	if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why
$(tail -n 20 <<<"$OUT$ERR")"; fi
}

run "$BENCH" --help
expect "--help names every option and workload" 0 "--only W,W..." "--quick" "--instructions" "recv-q0" "backlog"

run "$BENCH" --only recv-q0,nope --no-build
expect "--only refuses an unknown workload by name" 1 "unknown workload 'nope'" "one of: recv-q0"

run "$BENCH" --only
expect "--only without names says what it needs" 1 "--only needs workload names"

# the startup workload alone: no broker traffic, a few seconds
MQLUA_BENCH_BIN=$MQLUA run "$BENCH" --quick --no-build --only startup
expect "--quick --only startup runs that workload and prints its row" 0 "round 1  startup  mqlua" "startup ms"
if grep -qE "round 1  (recv-q0|pub-q0|pingpong|filt1|idle) " <<<"$OUT"; then
	not_ok "--only leaves the other workloads out" "$(grep -E 'round 1' <<<"$OUT")"
else
	ok "--only leaves the other workloads out"
fi

finish
