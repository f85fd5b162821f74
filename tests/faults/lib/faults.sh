# faults.sh - shared helpers of tests/faults/*.sh, sourced after
# tests/lib/sh.sh:
#
#   . tests/lib/sh.sh
#   . tests/faults/lib/faults.sh
#
# Children are always $MQLUA (the binary under test) running one of the
# scripts in tests/faults/lib/. Every process started here is registered in
# sh.sh's pid list, so sh.sh's EXIT trap kills what a failed test left.

FAULTS_LIB=tests/faults/lib

# faults_cleanup: sh.sh's cleanup, after copying $WORK to $FAULTS_KEEP (if
# set: a directory that must not exist yet) for a post-mortem.
faults_cleanup() {
	if [ -n "${FAULTS_KEEP:-}" ] && [ -n "${WORK:-}" ]; then
		cp -a "$WORK" "$FAULTS_KEEP" 2>/dev/null && echo "# kept $WORK as $FAULTS_KEEP"
	fi
	sh_cleanup
}
trap faults_cleanup EXIT

# fwait TIMEOUT CMD [ARGS...]: reruns CMD every 0.05 s until it succeeds
# (0) or TIMEOUT seconds pass (1). sh.sh's wait_for computes its limit with
# awk's printf "%d", which mawk (Debian's awk) caps at 2147483647 ns: every
# wait_for there ends after 2.1 s at most. This one uses "%.0f".
fwait() {
	local limit_ns start_ns
	limit_ns=$(awk -v t="$1" 'BEGIN { printf "%.0f", t * 1e9 }')
	shift
	start_ns=$(date +%s%N)
	until "$@" >/dev/null 2>&1; do
		[ $(($(date +%s%N) - start_ns)) -lt "$limit_ns" ] || return 1
		sleep 0.05
	done
	return 0
}

# wait_settled OUT SECONDS: waits until sub.lua's OUT.done exists (0), or
# OUT has not grown for SECONDS (1): the subscriber got all it will get.
wait_settled() {
	local out=$1 secs=$2 size last=-1 since
	since=$(date +%s)
	while [ ! -e "$out.done" ]; do
		size=$(stat -c %s "$out" 2>/dev/null || echo 0)
		if [ "$size" -ne "$last" ]; then
			last=$size since=$(date +%s)
		elif [ $(($(date +%s) - since)) -ge "$secs" ]; then
			return 1
		fi
		sleep 0.1
	done
	return 0
}

# progress FILE: prints published + acknowledged (0 .. 2N) from a
# stream_pub progress file ("next depth"), or fails if not there yet.
progress() {
	local nx dp
	[ -r "$1" ] && read -r nx dp <"$1" 2>/dev/null || return 1
	[ -n "$dp" ] || return 1
	echo $((2 * (nx - 1) - dp))
}

# wait_progress FILE TARGET PID: waits until the progress in FILE reaches
# TARGET or PID ends (0), or the progress has not moved for $STALL seconds
# (default 15) (1).
wait_progress() {
	local file=$1 target=$2 pid=$3 p last=-1 since
	since=$(date +%s)
	while :; do
		p=$(progress "$file") || p=-1
		[ "$p" -ge "$target" ] && return 0
		gone "$pid" && return 0
		if [ "$p" -ne "$last" ]; then
			last=$p since=$(date +%s)
		elif [ $(($(date +%s) - since)) -ge "${STALL:-15}" ]; then
			return 1
		fi
		sleep 0.02
	done
}

# spawn NAME CMD [ARGS...]: starts CMD in the background, stdout to
# $WORK/NAME.out, stderr to $WORK/NAME.err; sets SPAWNED (its pid).
spawn() {
	local name=$1
	shift
	"$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
	SPAWNED=$!
	echo "$SPAWNED" >>"$SH_STATE/pids"
}

# gone PID: true once PID has ended (no such process, or a zombie not yet
# reaped: kill -0 would still succeed on those).
gone() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}

# wait_exit PID SECONDS: waits for PID (a child of this shell) to end;
# sets EXIT_RC (its status, 128+N for a signal) and returns 0, or kills it
# after SECONDS and returns 1 (EXIT_RC=timeout).
wait_exit() {
	local pid=$1 secs=$2
	if fwait "$secs" gone "$pid"; then
		wait "$pid" 2>/dev/null
		EXIT_RC=$?
		return 0
	fi
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	EXIT_RC=timeout
	return 1
}

# sanitizer_report FILE...: prints the first sanitizer report line found in
# the files, if any (the runner only sees what reaches our own output).
sanitizer_report() {
	grep -ahE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$@" 2>/dev/null | head -n 3
}

# tail_of FILE...: the last lines of each file, for failure details.
tail_of() {
	local f
	for f in "$@"; do
		printf -- '--- %s:\n' "$f"
		tail -n "${TAIL_LINES:-15}" -- "$f" 2>/dev/null
	done
}

# mosq_conf DIR PORT [LINE...]: writes DIR/mosquitto.conf for a broker on
# 127.0.0.1:PORT that queues without limit for offline persistent sessions
# (max_queued_messages 0: mosquitto's default of 1000 would drop messages
# for the wrong reason), plus the extra lines.
mosq_conf() {
	local dir=$1 port=$2
	shift 2
	# mosquitto started as root drops to its own user: let it write its
	# persistence file here
	chmod 777 "$dir"
	{
		printf 'listener %s 127.0.0.1\n' "$port"
		printf 'allow_anonymous true\n'
		printf 'max_queued_messages 0\n'
		printf 'log_dest stderr\n'
		printf 'log_type error\nlog_type warning\nlog_type notice\n'
		printf '%s\n' "$@"
	} >"$dir/mosquitto.conf"
}

# mosq_start DIR PORT: starts mosquitto with DIR/mosquitto.conf, log
# appended to DIR/mosquitto.log (each life begins with a "=== life" line),
# and waits until PORT accepts connections. Sets MOSQ_PID.
mosq_start() {
	local dir=$1 port=$2
	printf '=== life %s\n' "$(date +%s.%N)" >>"$dir/mosquitto.log"
	mosquitto -c "$dir/mosquitto.conf" >>"$dir/mosquitto.log" 2>&1 </dev/null &
	MOSQ_PID=$!
	echo "$MOSQ_PID" >>"$SH_STATE/pids"
	if fwait 10 port_open "$port"; then
		return 0
	fi
	echo "mosquitto did not start on port $port:" >&2
	tail -n 20 "$dir/mosquitto.log" >&2
	return 1
}

# mosq_kill [SIGNAL]: kills MOSQ_PID (default SIGKILL) and reaps it.
mosq_kill() {
	kill "-${1:-KILL}" "$MOSQ_PID" 2>/dev/null
	wait "$MOSQ_PID" 2>/dev/null
	return 0
}

# seq_count FILE N: counts the numbers in FILE (one per line, as sub.lua
# writes them) against 1..N. Prints one line of key=value words:
#   lines distinct missing dups out_of_range out_of_order first_missing
# out_of_order counts first arrivals smaller than an earlier first arrival.
seq_count() {
	awk -v n="$2" '
		/^[0-9]+$/ && $1 + 0 >= 1 && $1 + 0 <= n {
			k = $1 + 0
			if (k in seen) { dups++ } else {
				seen[k] = 1; distinct++
				if (k < maxk) disorder++
				if (k > maxk) maxk = k
			}
			lines++
			next
		}
		{ lines++; odd++ }
		END {
			missing = 0; first = ""
			for (i = 1; i <= n; i++) if (!(i in seen)) {
				missing++
				if (missing <= 10) first = first (first == "" ? "" : ",") i
			}
			printf "lines=%d distinct=%d missing=%d dups=%d out_of_range=%d out_of_order=%d first_missing=%s\n",
				lines, distinct, missing, dups, odd, disorder, (first == "" ? "-" : first)
		}' "$1"
}

# field LINE KEY: the value of KEY=... in a seq_count line.
field() {
	local w
	for w in $1; do
		[ "${w%%=*}" = "$2" ] && { printf '%s\n' "${w#*=}"; return 0; }
	done
	return 1
}

# spread_points K LO HI: K random integers in [LO, HI), one in each of K
# equal slices, in increasing order (uses $RANDOM: seed it to repeat).
spread_points() {
	local k=$1 lo=$2 hi=$3 i w
	w=$(((hi - lo) / k))
	for ((i = 0; i < k; i++)); do
		echo $((lo + i * w + ((RANDOM << 15) | RANDOM) % (w > 0 ? w : 1)))
	done
}
