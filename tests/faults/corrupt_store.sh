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

# ---- the documented way out (README): move the file away, or save what
# SQLite can still read into a new store with the README's sqlite3 recipe,
# run here as the README spells it (FILE and NEW bound to paths), so that
# the test follows the README; FAULTS_RECIPE='...' tries another recipe
# written the same way ----------------------------------------------------
recipe=${FAULTS_RECIPE:-$(grep -o '`sqlite3 FILE[^`]*`' README.md | head -n 1 | tr -d '`')}
echo "# recovery recipe${FAULTS_RECIPE:+ (from FAULTS_RECIPE, not README.md)}: ${recipe:-none found in README.md}"
if [ -n "$recipe" ] && grep -qw NEW <<<"$recipe"; then
	ok "README.md gives a sqlite3 recipe that saves a damaged store FILE into NEW"
else
	not_ok "README.md gives a sqlite3 recipe that saves a damaged store FILE into NEW" \
		"no \`sqlite3 FILE ... NEW ...\` code span in README.md"
fi
recipe_from="README's"
[ -n "${FAULTS_RECIPE:-}" ] && recipe_from=FAULTS_RECIPE
recipe_sh=$(sed -E 's/\bFILE\b/"$1"/g; s/\bNEW\b/"$2"/g' <<<"$recipe")
for c in truncated random; do
	f=$WORK/$c/store.db
	rm -f "$WORK/$c"/*
	cp "$WORK/$c.pristine" "$f"
	mv "$f" "$f.bad"
	timeout 30 "$MQLUA" --store "$f" "$FAULTS_LIB/use_store.lua" cs-use >"$WORK/$c-moved.out" 2>&1 </dev/null
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q '^publish rc 0$' "$WORK/$c-moved.out" && cmp -s "$f.bad" "$WORK/$c.pristine"; then
		ok "$c store moved away: mqlua starts a new store at the same path, the moved file untouched"
	else
		not_ok "$c store moved away: mqlua starts a new store at the same path, the moved file untouched" \
			"exit $rc
$(cat "$WORK/$c-moved.out")"
	fi

	# what the damaged file still gives to a plain dump (for the log only)
	readable=$(sqlite3 "$f.bad" .dump 2>/dev/null | grep -c '^INSERT INTO outbox ')
	new=$WORK/$c-new.db
	[ -n "$recipe" ] && timeout 60 bash -c "$recipe_sh" recipe "$f.bad" "$new" >"$WORK/$c-recipe.out" 2>&1 </dev/null
	src=$?
	# the queue of cs-pub (a damaged row may have come back with a garbled client)
	rows=$(sqlite3 "$new" "SELECT count(*) FROM outbox WHERE client = 'cs-pub'" 2>&1)
	new_state="$(stat -c %s "$new" 2>/dev/null || echo no) bytes, user_version $(sqlite3 "$new" 'PRAGMA user_version' 2>&1)"
	timeout 30 "$MQLUA" --store "$new" "$FAULTS_LIB/drain.lua" - 0 cs-pub faults/corrupt \
		>"$WORK/$c-recovered.out" 2>&1 </dev/null
	rc=$?
	depth=$(sed -n 's/^found depth=\([0-9]*\) .*/\1/p' "$WORK/$c-recovered.out")
	echo "# $c: the dump has $readable outbox rows; recipe exit $src ($(grep -c . "$WORK/$c-recipe.out") lines of output: $(head -n 2 "$WORK/$c-recipe.out" | tr '\n' ' '))"
	echo "# $c: NEW: $new_state, outbox rows of cs-pub: $rows; mqlua on NEW: exit $rc: $(head -n 3 "$WORK/$c-recovered.out" | tr '\n' ' ')"
	name="$c store saved with the $recipe_from recipe: mqlua opens NEW and queues what survived (queue_depth = sqlite3's count of its outbox rows in NEW, > 0)"
	if [ "$rc" -eq 0 ] && [ -n "$depth" ] && [ "$depth" = "$rows" ] && [ "$depth" -gt 0 ] && [ "$depth" -le 3000 ] &&
		cmp -s "$f.bad" "$WORK/$c.pristine"; then
		ok "$c store saved with the $recipe_from recipe: mqlua opens NEW and finds $depth of 3000 messages queued (sqlite3 counts $rows rows)"
	else
		not_ok "$name" "sqlite3 $(sqlite3 --version | cut -d' ' -f1): recipe exit $src; last lines of its output:
$(tail -n 3 "$WORK/$c-recipe.out")
outbox rows of cs-pub in NEW (sqlite3): $rows; a plain .dump of the file has $readable outbox rows and ends with: $(sqlite3 "$f.bad" .dump 2>/dev/null | tail -n 1)
mqlua on NEW: exit $rc: $(head -c 400 "$WORK/$c-recovered.out")
damaged file unchanged: $(cmp -s "$f.bad" "$WORK/$c.pristine" && echo yes || echo NO)"
	fi
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
