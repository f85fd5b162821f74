# sh.sh - helpers for shell tests (tests/faults/*.sh, tests/cli/*.sh).
#
#   . tests/lib/sh.sh
#   check "prints its version" "$MQLUA" --version
#   run "$MQLUA" -e 'error("x")'; [ "$RC" -eq 1 ] && grep -q x <<<"$ERR" && ok ...
#   if [ "$x" = y ]; then ok "x is y"; else not_ok "x is y" "x was $x"; fi
#   finish
#
# Output is the same as the Lua harness: `ok - <file>: <name>` or
# `not ok - <file>: <name>` followed by `# ` detail lines. finish prints a
# summary comment when something failed and exits 0 only if at least one
# case ran and none failed. It also kills what start_broker started and
# removes what tmpdir made (on any exit, through an EXIT trap).
#
# Environment from tests/run: MQLUA (binary under test), MQLUA_BUILD.

SH_FILE=$(basename -- "${BASH_SOURCE[1]:-$0}")
SH_PASSED=0
SH_FAILED=0
: "${MQLUA_BUILD:=build}"
: "${MQLUA:=$MQLUA_BUILD/mqlua}"

# ok NAME: records a passing case.
ok() {
	SH_PASSED=$((SH_PASSED + 1))
	printf 'ok - %s: %s\n' "$SH_FILE" "${1//$'\n'/ }"
}

# not_ok NAME [DETAIL]: records a failing case; DETAIL may span lines.
not_ok() {
	SH_FAILED=$((SH_FAILED + 1))
	printf 'not ok - %s: %s\n' "$SH_FILE" "${1//$'\n'/ }"
	if [ -n "${2-}" ]; then
		printf '%s\n' "$2" | sed 's/^/# /'
	fi
}

# check NAME CMD [ARGS...]: runs CMD; the case passes if it exits 0. On
# failure the exit status and the last 40 lines of its output are shown.
# Returns CMD's status (so do not run tests under `set -e`).
check() {
	local name=$1
	shift
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		not_ok "$name" "command: $*
exit status $rc
$(printf '%s\n' "$out" | tail -n 40)"
	fi
	return "$rc"
}

# finish: prints the summary (if needed) and exits with the result.
finish() {
	if [ "$SH_FAILED" -gt 0 ]; then
		printf '# %d of %d tests failed\n' "$SH_FAILED" $((SH_PASSED + SH_FAILED))
		exit 1
	fi
	if [ "$SH_PASSED" -eq 0 ]; then
		printf '# no tests ran\n'
		exit 1
	fi
	exit 0
}

# run CMD...: runs CMD with stdin from $STDIN (default /dev/null); sets OUT
# (its stdout), ERR (its stderr) and RC (its exit status).
run() {
	"$@" >"$SH_STATE/run.out" 2>"$SH_STATE/run.err" <"${STDIN:-/dev/null}"
	RC=$?
	OUT=$(cat "$SH_STATE/run.out")
	ERR=$(cat "$SH_STATE/run.err")
}

# free_port: prints a TCP port nobody on this machine uses (any state, any
# address), picked at random in 20000-59999 so that parallel tests rarely
# collide. Never 1883 or 8883.
free_port() {
	local port hex tries=0
	while [ $tries -lt 200 ]; do
		tries=$((tries + 1))
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		printf -v hex ':%04X$' "$port"
		if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
			awk '{ print $2 }' | grep -q -- "$hex"; then
			echo "$port"
			return 0
		fi
	done
	echo "free_port: no free port found" >&2
	return 1
}

# tmpdir: prints a new temporary directory (mode 755, readable by a broker
# that dropped root privileges), removed when the test exits. Meant for
# `d=$(tmpdir)`.
tmpdir() {
	local d
	d=$(mktemp -d) || return 1
	chmod 755 "$d"
	printf '%s\n' "$d" >>"$SH_STATE/tmpdirs"
	printf '%s\n' "$d"
}

# wait_for TIMEOUT CMD [ARGS...]: reruns CMD every 0.05 s until it succeeds
# (returns 0) or TIMEOUT seconds pass (returns 1).
wait_for() {
	local timeout=$1
	shift
	local limit_ns start_ns
	limit_ns=$(awk -v t="$timeout" 'BEGIN { printf "%.0f", t * 1e9 }')   # %d stops at 2^31 in mawk
	start_ns=$(date +%s%N)
	until "$@" >/dev/null 2>&1; do
		[ $(($(date +%s%N) - start_ns)) -lt "$limit_ns" ] || return 1
		sleep 0.05
	done
	return 0
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_broker [CONFIG_LINE...]: starts a private mosquitto on a free
# loopback port with the given extra config lines (e.g. TLS settings) and
# waits until it listens. Sets BROKER_PORT, BROKER_PID, BROKER_DIR (config
# and log: $BROKER_DIR/mosquitto.log). Killed when the test exits.
start_broker() {
	for _ in 1 2 3; do
		BROKER_PORT=$(free_port) || return 1
		BROKER_DIR=$(tmpdir) || return 1
		{
			printf 'listener %s 127.0.0.1\n' "$BROKER_PORT"
			printf 'allow_anonymous true\n'
			printf 'persistence false\n'
			printf 'log_dest stderr\n'
			printf 'log_type error\nlog_type warning\nlog_type notice\n'
			printf '%s\n' "$@"
		} >"$BROKER_DIR/mosquitto.conf"
		mosquitto -c "$BROKER_DIR/mosquitto.conf" >"$BROKER_DIR/mosquitto.log" 2>&1 &
		BROKER_PID=$!
		echo "$BROKER_PID" >>"$SH_STATE/pids"
		if wait_for 5 port_open "$BROKER_PORT"; then
			return 0
		fi
		kill "$BROKER_PID" 2>/dev/null
		wait "$BROKER_PID" 2>/dev/null
		# port taken by someone else meanwhile? try another one
	done
	echo "start_broker: mosquitto did not start; last log:" >&2
	cat "$BROKER_DIR/mosquitto.log" >&2
	return 1
}

# stop_broker [PID]: stops a broker (default $BROKER_PID) and waits for it.
stop_broker() {
	local pid=${1:-$BROKER_PID}
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# Bookkeeping lives in files so that helpers called in $(...) subshells
# (tmpdir) still register what they made.
SH_STATE=$(mktemp -d) || exit 1

sh_cleanup() {
	local pid d
	if [ -f "$SH_STATE/pids" ]; then
		while read -r pid; do
			kill "$pid" 2>/dev/null
		done <"$SH_STATE/pids"
		while read -r pid; do
			wait "$pid" 2>/dev/null
		done <"$SH_STATE/pids"
	fi
	if [ -f "$SH_STATE/tmpdirs" ]; then
		while read -r d; do
			[ -n "$d" ] && rm -rf -- "$d"
		done <"$SH_STATE/tmpdirs"
	fi
	rm -rf -- "$SH_STATE"
}
trap sh_cleanup EXIT
