# test_mode.sh - `mqlua test` as a fixture writer sees it: result lines,
# the summary line and exit status; an assertion failure with file:line and
# expected/actual; a file that does not load; a hanging test stopped by
# --timeout while the run goes on; expect_message/no_message on the fresh
# embedded broker (payload, json, match, a message that arrived before the
# call); --broker; a directory argument; --filter; --help.
. tests/lib/sh.sh

work=$(tmpdir)

# expect NAME RC TEXT...: the last run exited RC and its stdout contains
# every TEXT (plain strings) in that order, each on or after the line of
# the one before.
expect() {
	local name=$1 rc=$2 why="" rest=$OUT t
	shift 2
	[ "$RC" -eq "$rc" ] || why="exit status $RC, expected $rc"
	for t in "$@"; do
		if [[ $rest == *"$t"* ]]; then
			rest=${rest#*"$t"}
		else
			why="${why:+$why; }stdout lacks (in order): $t"
			break
		fi
	done
	if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why
--- stdout:
$OUT
--- stderr:
$(tail -n 15 <<<"$ERR")"; fi
}

mkdir -p "$work/suite/sub"
cat >"$work/suite/pass_test.lua" <<'LUA'
test("adds", function(t) t:eq(1 + 1, 2, "sum") end)
test("is true", function(t) t:ok("yes", "a string") end)
test("arg[0] is the file", function(t) t:match(arg[0], "pass_test%.lua$", "arg[0]") end)
LUA
cat >"$work/suite/sub/fail_test.lua" <<'LUA'
test("passes first", function(t) t:ok(true) end)
test("tables differ", function(t)
	local got = { state = "ON", level = { 1, 2 } }
	t:eq(got, { state = "ON", level = { 1, 3 } }, "the light")
end)
test("still runs after a failure", function(t) t:ok(true) end)
LUA
printf 'test("x", function(t)\n\tt:ok(true)\nend\nlocal = 3\n' >"$work/broken.lua"
cat >"$work/hang.lua" <<'LUA'
local mqtt = require "mqlua"
test("waits forever", function(t) mqtt.sleep(1000) end)
test("spins forever", function(t) while true do end end)
test("runs after the hangs", function(t) t:ok(true) end)
LUA

# ---- passing, failing, the summary ----

run "$MQLUA" test "$work/suite/pass_test.lua"
expect "a passing file: ok lines, summary, exit 0" 0 "ok - $work/suite/pass_test.lua: adds" \
	"ok - $work/suite/pass_test.lua: is true" "ok - $work/suite/pass_test.lua: arg[0] is the file" "3 passed, 0 failed"
[ "$(tail -n 1 <<<"$OUT")" = "3 passed, 0 failed" ] && ok "the summary is the last line" ||
	not_ok "the summary is the last line" "$OUT"

run "$MQLUA" test -v "$work/suite/pass_test.lua"
grep -qE '^# [0-9]+\.[0-9]{3} s$' <<<"$OUT" && [ "$RC" -eq 0 ] && ok "-v: how long each test took" ||
	not_ok "-v: how long each test took" "exit $RC: $OUT"

run "$MQLUA" test "$work/suite/sub/fail_test.lua"
f=$work/suite/sub/fail_test.lua
want="ok - $f: passes first
not ok - $f: tables differ
# the light: not equal
#   expected: {level = {1, 3}, state = \"ON\"}
#   actual:   {level = {1, 2}, state = \"ON\"}
#   first difference at .level[2]: expected 3, got 2
# at $f:4
ok - $f: still runs after a failure
2 passed, 1 failed"
[ "$RC" -eq 1 ] && [ "$OUT" = "$want" ] && ok "a failed assertion: exact output with expected, actual and file:line; exit 1" ||
	not_ok "a failed assertion: exact output with expected, actual and file:line; exit 1" "exit $RC
--- want:
$want
--- got:
$OUT"

run "$MQLUA" test "$work/broken.lua"
expect "a file that does not load is a failure with its error" 1 \
	"not ok - $work/broken.lua: the file does not load" "# $work/broken.lua:4:" "0 passed, 1 failed"

run "$MQLUA" test "$work/no-such_test.lua"
expect "a missing file is a failure naming it" 1 "not ok - $work/no-such_test.lua: the file does not load" \
	"cannot open $work/no-such_test.lua" "0 passed, 1 failed"

cat >"$work/outside.lua" <<'LUA'
test("before", function(t) t:ok(true) end)
local x = nil
print(x.field)
LUA
run "$MQLUA" test "$work/outside.lua"
expect "an error outside a test: a failure with its traceback" 1 "ok - $work/outside.lua: before" \
	"not ok - $work/outside.lua: an error outside a test" "# $work/outside.lua:3: attempt to index a nil value" \
	"# stack traceback:" "1 passed, 1 failed"

cat >"$work/err.lua" <<'LUA'
local function helper(v) return v.missing.deeper end
test("errors", function(t) helper({}) end)
LUA
run "$MQLUA" test "$work/err.lua"
expect "an error in a test: message and traceback with both frames" 1 "not ok - $work/err.lua: errors" \
	"# $work/err.lua:1: attempt to index a nil value (field 'missing')" "# stack traceback:" \
	"$work/err.lua:1: in " "$work/err.lua:2: in function" "0 passed, 1 failed"

# ---- a hang hits --timeout; the run goes on ----

start=$(date +%s%N)
run "$MQLUA" test --timeout 1 "$work/hang.lua" "$work/suite/pass_test.lua"
ms=$((($(date +%s%N) - start) / 1000000))
expect "--timeout: a waiting and a spinning test fail, the rest still runs" 1 \
	"not ok - $work/hang.lua: waits forever" "# timed out after 1 s" "in function 'mqlua.sleep'" \
	"not ok - $work/hang.lua: spins forever" "# timed out after 1 s" \
	"ok - $work/hang.lua: runs after the hangs" "ok - $work/suite/pass_test.lua: adds" "4 passed, 2 failed"
[ "$ms" -lt 10000 ] && ok "--timeout 1: two hangs cost about 2 s (${ms} ms)" || not_ok "--timeout 1: two hangs cost about 2 s" "${ms} ms"

printf 'test("blocked in C", function(t) os.execute("sleep 60") end)\ntest("never", function(t) end)\n' >"$work/block.lua"
run "$MQLUA" test --timeout 1 "$work/block.lua" "$work/suite/pass_test.lua"
expect "a test stuck in a blocking call: the file is killed, the next file runs" 1 \
	"not ok - $work/block.lua: blocked in C" "# timed out after 1 s and did not stop" \
	"ok - $work/suite/pass_test.lua: adds" "3 passed, 1 failed"
! grep -q "never" <<<"$OUT" && ok "the killed file's later tests did not run" || not_ok "the killed file's later tests did not run" "$OUT"

# ---- messages on the fresh embedded broker ----

cat >"$work/messages_test.lua" <<'LUA'
local mqtt = require "mqlua"
test("the file's broker is fresh and the default", function(t)
	t:match(t.broker.url, "^mqtt://127%.0%.0%.1:%d+$", "t.broker.url")
	t:eq(T.broker(), t.broker, "T.broker() is t.broker")
	print("# broker " .. t.broker.url)
end)
test("expect_message: payload, json, match; earlier messages count", function(t)
	local fixture = T.connected(t, "fixture")
	local device = T.connected(t, "device")
	T.subscribed(t, fixture, "lights/#", 1)
	device:publish("lights/a/set", "OFF", 1)
	device:publish("lights/b/set", '{"state":"ON","level":[1,2]}', 1)
	device:publish("lights/c/set", "42", 1)
	mqtt.sleep(0.3)   -- all three arrived before the calls below
	local m = t:expect_message(fixture, "lights/+/set", { json = { state = "ON", level = { 1, 2 } } })
	t:eq({ m.topic, m.qos }, { "lights/b/set", 1 }, "the json match")
	t:eq(t:expect_message(fixture, "lights/+/set", { payload = "OFF" }).topic, "lights/a/set", "payload")
	t:eq(t:expect_message(fixture, "lights/#", { match = function(msg) return tonumber(msg.payload) end }).payload,
		"42", "match function")
	t:no_message(fixture, "lights/#", 0.3)   -- all three were taken
end)
test("expect_message subscribes itself when nothing covers the filter", function(t)
	local fixture = T.connected(t, "fixture2")
	local device = T.connected(t, "device2")
	device:publish("door/state", "open", 1, true)   -- retained: seen on subscribe
	t:eq(t:expect_message(fixture, "door/state").payload, "open", "retained payload")
	device:publish("door/state", "closed", 1)
	t:eq(t:expect_message(fixture, "door/state", { payload = "closed" }).retain, false, "a live message")
	device:publish("door/state", "", 1, true)
end)
test("expect_message fails with what did arrive", function(t)
	local fixture = T.connected(t, "fixture3")
	local device = T.connected(t, "device3")
	T.subscribed(t, fixture, "lights/#")
	device:publish("lights/a/set", "OFF")
	device:publish("lights/b/set", "DIM")
	t:expect_message(fixture, "lights/+/set", { payload = "ON", timeout = 0.5 })
end)
test("expect_message fails: nothing on the filter", function(t)
	local fixture = T.connected(t, "fixture4")
	t:expect_message(fixture, "nobody/home", { json = { a = 1 }, timeout = 0.3 })
end)
test("no_message fails when one arrives", function(t)
	local fixture = T.connected(t, "fixture5")
	local device = T.connected(t, "device5")
	T.subscribed(t, fixture, "alarm/#")
	mqtt.after(0.2, function() device:publish("alarm/kitchen", "smoke") end)
	t:no_message(fixture, "alarm/#", 1)
end)
test("on_message and message_callback_add still get every message", function(t)
	local fixture = T.connected(t, "fixture6")
	local device = T.connected(t, "device6")
	local seen, cb = {}, {}
	fixture.on_message = function(_, _, msg) seen[#seen + 1] = msg.payload end
	t:eq(type(fixture.on_message), "function", "on_message reads back")
	fixture:message_callback_add("cb/special", function(_, _, msg) cb[#cb + 1] = msg.payload end)
	T.subscribed(t, fixture, "cb/#", 1)
	device:publish("cb/plain", "p", 1)
	device:publish("cb/special", "s", 1)
	t:eq(t:expect_message(fixture, "cb/special").payload, "s", "a message_callback_add message is seen")
	t:eq(t:expect_message(fixture, "cb/plain").payload, "p", "an on_message message is seen")
	t:eq({ seen, cb }, { { "p" }, { "s" } }, "the script's callbacks ran once each")
end)
LUA
run "$MQLUA" test "$work/messages_test.lua"
m=$work/messages_test.lua
expect "expect_message and no_message against the embedded broker" 1 \
	"ok - $m: the file's broker is fresh and the default" \
	"ok - $m: expect_message: payload, json, match; earlier messages count" \
	"ok - $m: expect_message subscribes itself when nothing covers the filter" \
	"not ok - $m: expect_message fails with what did arrive" \
	"# expected a message on lights/+/set with payload \"ON\" within 0.5 s; got 2 other messages: lights/a/set \"OFF\", lights/b/set \"DIM\"" \
	"# at $m:37" \
	"not ok - $m: expect_message fails: nothing on the filter" \
	"# expected a message on nobody/home with JSON {a = 1} within 0.3 s; got no message on nobody/home" \
	"# at $m:41" \
	"not ok - $m: no_message fails when one arrives" \
	"# expected no message on alarm/# within 1 s; got 1 message: alarm/kitchen \"smoke\"" "# at $m:48" \
	"ok - $m: on_message and message_callback_add still get every message" "4 passed, 3 failed"
b1=$(sed -n 's/^# broker //p' <<<"$OUT")
run "$MQLUA" test --filter "fresh" "$m" "$m"
b2=$(sed -n 's/^# broker //p' <<<"$OUT" | sort -u | wc -l)
[ -n "$b1" ] && [ "$b2" -eq 2 ] && ok "each file gets its own broker" || not_ok "each file gets its own broker" "$OUT"
expect "--filter runs only the tests whose name contains it" 0 "ok - $m: the file's broker is fresh and the default" \
	"ok - $m: the file's broker is fresh and the default" "2 passed, 0 failed"
run "$MQLUA" test --filter "nothing matches this" "$m"
expect "--filter matching nothing: exit 1" 1 "0 passed, 0 failed"

# ---- --broker: every file uses that broker ----

start_broker
cat >"$work/given_test.lua" <<LUA
test("connects to the given broker", function(t)
	t:eq(t.broker.url, "mqtt://127.0.0.1:$BROKER_PORT", "t.broker.url")
	t:eq(t.broker.port, $BROKER_PORT, "t.broker.port")
	local c = T.connected(t, "given")
	T.subscribed(t, c, "given/#")
	t:eq(t:expect_message(c, "given/#", { payload = "from outside" }).topic, "given/x", "a message from mosquitto_pub")
end)
LUA
( sleep 1.5; mosquitto_pub -p "$BROKER_PORT" -t given/x -m "from outside" ) &
pub=$!
run "$MQLUA" test --broker "mqtt://127.0.0.1:$BROKER_PORT" "$work/given_test.lua"
wait "$pub"
expect "--broker URL: the file connects there and sees mosquitto_pub's message" 0 \
	"ok - $work/given_test.lua: connects to the given broker" "1 passed, 0 failed"
run "$MQLUA" test --broker "ftp://x" "$work/given_test.lua"
[ "$RC" -eq 2 ] && grep -q "mqlua test: --broker:" <<<"$ERR" && ok "--broker with a bad URL: exit 2" ||
	not_ok "--broker with a bad URL: exit 2" "exit $RC: $ERR"

# ---- directories and no argument ----

mq=$(realpath "$MQLUA")
run "$MQLUA" test "$work/suite/"
expect "a directory: its *_test.lua files, sorted, recursively" 1 "ok - $work/suite/pass_test.lua: adds" \
	"not ok - $work/suite/sub/fail_test.lua: tables differ" "5 passed, 1 failed"
grep -q "//" <<<"$OUT" && not_ok "a directory with a trailing slash: clean paths" "$OUT" ||
	ok "a directory with a trailing slash: clean paths"
(cd "$work/suite" && "$mq" test) >"$work/out" 2>&1
RC=$? OUT=$(cat "$work/out")
expect "no argument: the *_test.lua files under the current directory" 1 "ok - pass_test.lua: adds" \
	"not ok - sub/fail_test.lua: tables differ" "5 passed, 1 failed"
(cd "$work/suite/sub" && mv fail_test.lua fail.lua && "$mq" test) >"$work/out" 2>&1
RC=$? OUT=$(cat "$work/out")
expect "no argument and no test file: says so, exit 1" 1 "# no test files found" "0 passed, 0 failed"

# ---- the store of the processes a test starts ----

cat >"$work/store_test.lua" <<'LUA'
test("a child's default store is fresh for the file and kept between its children", function(t)
	local dir = T.tmpdir()
	local child = [[
		local mqtt = require "mqlua"
		local c = mqtt.Client{client_id = "tm-store"}
		if arg[1] == "queue" then
			c:connect_async("127.0.0.1", 1)   -- nobody listens: the message waits in the store
			c:publish("tm/q", "x", 1)
			mqtt.sleep(0.1)
		end
		print("depth " .. c:queue_depth())
		os.exit(0)
	]]
	t:match(T.run_script(dir .. "/child.lua", child, "queue"), "depth 1\n$", "the first child queued one")
	t:match(T.run_script(dir .. "/child.lua", child, "look"), "^depth 1\n$", "the second child sees it")
end)
LUA
mkdir -p "$work/home"
for round in 1 2; do
	run env -u MQLUA_STORE -u XDG_STATE_HOME HOME="$work/home" "$MQLUA" test "$work/store_test.lua"
	expect "processes a test starts get a fresh default store (run $round)" 0 "1 passed, 0 failed"
done
if [ -e "$work/home/.local/state/mqlua/store.db" ]; then
	not_ok "the user's own store is not touched" "$(ls -la "$work/home/.local/state/mqlua")"
else
	ok "the user's own store is not touched"
fi

# ---- help ----

run "$MQLUA" test --help
expect "mqlua test --help" 0 "usage: mqlua test [options] [files or directories]" "files named *_test.lua or" \
	"--broker URL" "--filter PATTERN" "--timeout S"
run "$MQLUA" --help
expect "mqlua --help mentions mqlua test" 0 "mqlua test [options] [files or directories]"
run "$MQLUA" test --bogus
[ "$RC" -eq 2 ] && grep -q "unrecognized option '--bogus'" <<<"$ERR" && ok "mqlua test --bogus: exit 2" ||
	not_ok "mqlua test --bogus: exit 2" "exit $RC: $ERR"
run "$MQLUA" test --timeout 0 x.lua
[ "$RC" -eq 2 ] && grep -q "positive number" <<<"$ERR" && ok "--timeout 0: exit 2" || not_ok "--timeout 0: exit 2" "exit $RC: $ERR"

finish
