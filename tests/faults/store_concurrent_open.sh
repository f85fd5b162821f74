# store_concurrent_open.sh - several mqlua processes opening the same new
# default store at the same moment: each one must find a usable store (the
# first creates the schema, the others wait for it and find it done), none
# may fail with "table outbox already exists" or take the half-made file for
# a foreign database. Each process queues one QoS 1 message (no broker), and
# a later process must find all of them.
. tests/lib/sh.sh

work=$(tmpdir)
ROUNDS=8
PROCS=5

# the script every process runs: queue one QoS 1 message in the default store
cat >"$work/open.lua" <<'LUA'
local mqtt = require "mqlua"
local id = "open-" .. arg[1]
local c = mqtt.Client { client_id = id }
local info = c:publish("race/" .. arg[1], "queued by " .. id, 1)
print(id, info.rc, c:queue_depth())
LUA

# the check afterwards: every process's message is in the store
cat >"$work/count.lua" <<'LUA'
local mqtt = require "mqlua"
local n = 0
for i = 1, tonumber(arg[1]) do n = n + mqtt.Client { client_id = "open-" .. i }:queue_depth() end
print("queued " .. n)
LUA

bad_open=""
bad_rows=""
for round in $(seq 1 $ROUNDS); do
	state="$work/state-$round"   # XDG_STATE_HOME: the store and its directory are new
	go="$work/go-$round"
	pids=()
	for i in $(seq 1 $PROCS); do
		(
			while [ ! -e "$go" ]; do sleep 0.005; done
			exec env XDG_STATE_HOME="$state" MQLUA_STORE= "$MQLUA" "$work/open.lua" "$i"
		) >"$work/out-$round-$i" 2>"$work/err-$round-$i" &
		pids+=($!)
	done
	sleep 0.3
	: >"$go"   # all at once
	for i in $(seq 1 $PROCS); do
		wait "${pids[$((i - 1))]}"
		rc=$?
		want=$(printf 'open-%s\t0\t1' "$i")
		if [ "$rc" -ne 0 ] || [ "$(cat "$work/out-$round-$i")" != "$want" ]; then
			bad_open+="round $round process $i: exit $rc, stdout: $(cat "$work/out-$round-$i")
  stderr: $(head -n 3 "$work/err-$round-$i")
"
		fi
	done
	out=$(XDG_STATE_HOME="$state" MQLUA_STORE= "$MQLUA" "$work/count.lua" $PROCS 2>&1)
	[ "$out" = "queued $PROCS" ] || bad_rows+="round $round: $out
"
done

if [ -z "$bad_open" ]; then
	ok "$ROUNDS rounds of $PROCS processes opening one new default store at once: all exit 0"
else
	not_ok "$ROUNDS rounds of $PROCS processes opening one new default store at once: all exit 0" "$bad_open"
fi
if [ -z "$bad_rows" ]; then
	ok "each round's store holds the $PROCS queued messages, one per process"
else
	not_ok "each round's store holds the $PROCS queued messages, one per process" "$bad_rows"
fi
finish
