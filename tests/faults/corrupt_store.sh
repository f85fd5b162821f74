# corrupt_store.sh - fault 4 of the store: a damaged store file. A store
# truncated to half its size, one with a page of random bytes in the
# middle, and a file that is not SQLite at all: mqlua must exit non-zero
# with a message naming the file, without a crash (no signal, no sanitizer
# report), and leave the file's bytes exactly as they were, whether the file
# comes from --store or from Client{store = PATH}. Then one queue, two
# processes: the second one is refused with a message naming the file and
# the holder's pid, another client_id may share the file, and the claim of
# a process killed with -9 does not outlive it.
. tests/lib/sh.sh
. tests/faults/lib/faults.sh

WORK=$(tmpdir) || exit 1
export MQLUA_STORE=$WORK/unused-default.db
echo "# work dir $WORK, mqlua $MQLUA"

# ---- a good store to damage -------------------------------------------------
timeout 60 "$MQLUA" --store "$WORK/good.db" "$FAULTS_LIB/offline_pub.lua" cs-pub 3000 faults/corrupt \
	>"$WORK/good.out" 2>"$WORK/good.err" </dev/null
rc=$?
# fold a WAL left behind into the file (with the sqlite3 tool, on our own
# template) so that each damaged copy is one self-contained file
[ -s "$WORK/good.db-wal" ] && sqlite3 "$WORK/good.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
size=$(stat -c %s "$WORK/good.db" 2>/dev/null || echo 0)
check_db=$(cp "$WORK/good.db" "$WORK/probe.db" && sqlite3 "$WORK/probe.db" 'PRAGMA quick_check;' 2>&1)
echo "# template: exit $rc, $(cat "$WORK/good.out"), $size bytes, quick_check: $check_db"
if [ "$rc" -ne 0 ] || [ "$size" -lt 16384 ] || [ "$check_db" != ok ]; then
	not_ok "a good store with 3000 queued messages to damage" "exit $rc, $size bytes, quick_check $check_db
$(tail_of "$WORK/good.out" "$WORK/good.err")"
	finish
fi

# the damaged copies, each alone in its own directory
page=$(od -An -tu1 -j16 -N2 "$WORK/good.db" | awk '{ p = $1 * 256 + $2; print (p == 1 ? 65536 : p) }')
pages=$((size / page))
mkdir -p "$WORK/truncated" "$WORK/random" "$WORK/foreign"
cp "$WORK/good.db" "$WORK/truncated/store.db"
truncate -s $((size / 2)) "$WORK/truncated/store.db"
cp "$WORK/good.db" "$WORK/random/store.db"
# page pages/2 (counted from 0) overwritten with seeded random bytes
"$MQLUA" -e "
local f = assert(io.open('$WORK/random/store.db', 'r+b'))
math.randomseed(20261125)
local t = {}
for i = 1, $page do t[i] = string.char(math.random(0, 255)) end
f:seek('set', $((pages / 2 * page)))
f:write(table.concat(t))
f:close()"
for i in $(seq 1 300); do echo "this is not an SQLite database, line $i"; done >"$WORK/foreign/store.db"
for c in truncated random foreign; do cp "$WORK/$c/store.db" "$WORK/$c.pristine"; done
echo "# page size $page, $pages pages; truncated to $((size / 2)) bytes; random bytes over page $((pages / 2))"

for c in truncated random; do
	rm -f "$WORK/probe.db"*
	cp "$WORK/$c/store.db" "$WORK/probe.db"
	q=$(sqlite3 "$WORK/probe.db" 'PRAGMA quick_check;' 2>&1 | head -n 3 | tr '\n' ' ')
	if [ "$q" = "ok " ]; then
		not_ok "the $c copy is damaged as SQLite sees it" "sqlite3 quick_check says ok: the fixture proves nothing"
	else
		ok "the $c copy is damaged as SQLite sees it (quick_check: ${q:0:80})"
	fi
done

# try_damaged CASE HOW: runs use_store.lua on $WORK/CASE/store.db, the path
# given by HOW (cli: --store, client: Client{store=}), and checks the result.
try_damaged() {
	local c=$1 how=$2 f=$WORK/$1/store.db out rc name
	rm -f "$WORK/$c"/*
	cp "$WORK/$c.pristine" "$f"
	if [ "$how" = cli ]; then
		timeout 30 "$MQLUA" --store "$f" "$FAULTS_LIB/use_store.lua" cs-use >"$WORK/$c-$how.out" 2>&1 </dev/null
	else
		timeout 30 "$MQLUA" "$FAULTS_LIB/use_store.lua" cs-use "$f" >"$WORK/$c-$how.out" 2>&1 </dev/null
	fi
	rc=$?
	out=$(cat "$WORK/$c-$how.out")
	echo "# $c store via $how: exit $rc; output: $(head -c 600 "$WORK/$c-$how.out" | tr '\n' '|')"
	name="$c store via $how"
	[ "$how" = cli ] && name="$name (--store)" || name="$name (Client{store=})"
	if [ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] && grep -qF -- "$f" <<<"$out"; then
		ok "$name: exit $rc, the error names the file"
	else
		not_ok "$name: exits non-zero (no signal, no timeout) with an error naming the file" \
			"exit $rc (0 = accepted the damaged store; >= 124 = timeout or signal)
$out"
	fi
	if cmp -s "$f" "$WORK/$c.pristine"; then
		ok "$name: the file's bytes are unchanged"
	else
		not_ok "$name: the file's bytes are unchanged" "$(cmp "$f" "$WORK/$c.pristine" 2>&1 | head -n 2); now $(stat -c %s "$f") bytes, was $(stat -c %s "$WORK/$c.pristine")"
	fi
	local san
	san=$(sanitizer_report "$WORK/$c-$how.out")
	[ -z "$san" ] && ok "$name: no sanitizer report" || not_ok "$name: no sanitizer report" "$san"
	ls -la "$WORK/$c" | sed -n '2,$p' | sed 's/^/# /'
}

for c in truncated random foreign; do
	try_damaged "$c" cli
	try_damaged "$c" client
done

# ---- one queue, two processes -----------------------------------------------
S=$WORK/shared.db
spawn hold "$MQLUA" --store "$S" "$FAULTS_LIB/claim.lua" cs-two hold
holder=$SPAWNED
if ! fwait 15 grep -q '^holding' "$WORK/hold.out"; then
	not_ok "a first process claims client cs-two" "$(tail_of "$WORK/hold.out" "$WORK/hold.err")"
	finish
fi
echo "# process $holder holds cs-two in $S: $(cat "$WORK/hold.out")"

for how in cli client; do
	if [ "$how" = cli ]; then
		timeout 30 "$MQLUA" --store "$S" "$FAULTS_LIB/claim.lua" cs-two try >"$WORK/second-$how.out" 2>&1 </dev/null
	else
		timeout 30 "$MQLUA" "$FAULTS_LIB/claim.lua" cs-two try "$S" >"$WORK/second-$how.out" 2>&1 </dev/null
	fi
	rc=$?
	out=$(cat "$WORK/second-$how.out")
	echo "# second process (store via $how): exit $rc: $(tr '\n' '|' <<<"$out" | head -c 600)"
	if [ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] && grep -qF -- "$S" <<<"$out" && grep -qw -- "$holder" <<<"$out"; then
		ok "same store and client_id in a second process (via $how): refused, naming the file and holder pid $holder"
	else
		not_ok "same store and client_id in a second process (via $how): refused, naming the file and holder pid $holder" \
			"exit $rc
$out"
	fi
done

timeout 30 "$MQLUA" --store "$S" "$FAULTS_LIB/claim.lua" cs-other try >"$WORK/other.out" 2>&1 </dev/null
rc=$?
[ "$rc" -eq 0 ] && grep -q '^ok depth=1$' "$WORK/other.out" &&
	ok "another client_id shares the same store file meanwhile" ||
	not_ok "another client_id shares the same store file meanwhile" "exit $rc
$(cat "$WORK/other.out")"

kill -KILL "$holder"
wait "$holder" 2>/dev/null
timeout 30 "$MQLUA" --store "$S" "$FAULTS_LIB/claim.lua" cs-two try >"$WORK/after.out" 2>&1 </dev/null
rc=$?
[ "$rc" -eq 0 ] && grep -q '^ok depth=2$' "$WORK/after.out" &&
	ok "after kill -9 of the holder the queue can be claimed again and still holds its message (depth 2)" ||
	not_ok "after kill -9 of the holder the queue can be claimed again and still holds its message (depth 2)" \
		"exit $rc
$(cat "$WORK/after.out")"

san=$(sanitizer_report "$WORK"/*.out "$WORK"/*.err)
[ -z "$san" ] && ok "no sanitizer report from the claim processes" || not_ok "no sanitizer report from the claim processes" "$san"
finish
