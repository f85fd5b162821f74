# readme_commands.sh - every command in README.md is run (or, for the test
# command itself, checked to be what .ci/run runs), so the README stays true.
#
# The first command installs packages with apt-get: here apt-get and sudo are
# stand-ins on PATH that record what they were asked and check that each
# package is in fact installed (the test may not touch the machine's
# packages); the rest of the command (ninja, the demo) runs for real.
. tests/lib/sh.sh

blocks=$(tmpdir)
# the fenced ```sh blocks of README.md, one file each
awk -v dir="$blocks" '
	/^```sh$/ { n++; inblock = 1; next }
	/^```$/   { inblock = 0; next }
	inblock   { print > (dir "/" n) }
' README.md

if [ -s "$blocks/1" ] && [ -s "$blocks/2" ]; then
	ok "README has a setup command and a test command"
else
	not_ok "README has a setup command and a test command" "blocks found: $(ls "$blocks")"
fi

# --- 1: install, build, demo ---
shims=$(tmpdir)
cat > "$shims/sudo" <<'SH'
#!/bin/sh
exec "$@"
SH
cat > "$shims/apt-get" <<'SH'
#!/bin/sh
echo "apt-get $*" >> "$APT_LOG"
[ "$1" = update ] && exit 0
for p in "$@"; do
	case $p in -*|install) continue ;; esac
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || { echo "not installed: $p" >&2; exit 1; }
done
SH
# npm: recorded, and `npm ci` only checks that the lockfile's packages are there
# (installing them again here would pull them from under a test running beside)
cat > "$shims/npm" <<'SH'
#!/bin/sh
echo "npm $* in $(pwd)" >> "$APT_LOG"
[ "$1" = ci ] && [ -f package-lock.json ] && [ -d node_modules/aedes ] && [ -d node_modules/ws ] && exit 0
echo "npm shim: expected 'npm ci' beside package-lock.json with node_modules installed" >&2
exit 1
SH
chmod +x "$shims/sudo" "$shims/apt-get" "$shims/npm"
export APT_LOG="$shims/apt.log"
out=$(PATH="$shims:$(dirname "$MQLUA"):$PATH" timeout 120 bash -e "$blocks/1" 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q 'mosquitto version'; then
	ok "README command 1 builds and the demo prints the broker version"
else
	not_ok "README command 1 builds and the demo prints the broker version" "exit $rc
$(printf '%s\n' "$out" | tail -20)"
fi
if grep -q '^apt-get install' "$APT_LOG" 2>/dev/null; then
	ok "README command 1 installs packages with apt-get"
else
	not_ok "README command 1 installs packages with apt-get" "$(cat "$APT_LOG" 2>/dev/null)"
fi

if grep -q '^npm ci .* in .*/tests/lib$' "$APT_LOG" 2>/dev/null; then
	ok "README command 1 installs the test broker's npm packages from the lockfile"
else
	not_ok "README command 1 installs the test broker's npm packages from the lockfile" "$(cat "$APT_LOG" 2>/dev/null)"
fi

# The README and CI install the same packages.
readme_pkgs=$(grep -o 'apt-get install -y [^&]*' "$blocks/1" | head -1 | sed 's/apt-get install -y //' | tr ' ' '\n' | grep -v '^$' | sort)
ci_pkgs=$(sed -n '/^packages=(/,/^)/p' .ci/run | sed '1d;$d' | tr ' \t' '\n\n' | grep -v '^$' | sort)
if [ -n "$readme_pkgs" ] && [ "$readme_pkgs" = "$ci_pkgs" ]; then
	ok "README and .ci/run install the same packages"
else
	not_ok "README and .ci/run install the same packages" "$(diff <(echo "$readme_pkgs") <(echo "$ci_pkgs"))"
fi

# --- 2: the test command is what CI runs (running it here would recurse) ---
cmd2=$(grep -v '^$' "$blocks/2")
if [ "$cmd2" = "tests/run" ] && grep -q '^tests/run' .ci/run; then
	ok "README command 2 is the test command .ci/run runs"
else
	not_ok "README command 2 is the test command .ci/run runs" "README: $cmd2"
fi

# --- 3: plain Lua loads build/mqlua.so (the release module only: an ASan .so cannot load in lua5.4) ---
if [ -s "$blocks/3" ]; then
	if [ "$(basename "$MQLUA_BUILD")" = build ]; then
		out=$(bash -e "$blocks/3" 2>&1)
		if printf '%s' "$out" | grep -q '^table:'; then
			ok "README: require \"mqlua\" from plain lua5.4"
		else
			not_ok "README: require \"mqlua\" from plain lua5.4" "$out"
		fi
	else
		ok "README: require \"mqlua\" from plain lua5.4 (checked in the release pass)"
	fi
fi

# --- 4: the mqlua test example ---
if [ -s "$blocks/4" ]; then
	out=$(PATH="$(dirname "$MQLUA"):$PATH" timeout 60 bash -e "$blocks/4" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | tail -n 1)" = "2 passed, 0 failed" ]; then
		ok "README: the mqlua test example passes"
	else
		not_ok "README: the mqlua test example passes" "exit $rc
$out"
	fi
else
	not_ok "README: the mqlua test example passes" "no fourth sh block in README.md"
fi

# --- 5: the examples and their fixture tests ---
if [ -s "$blocks/5" ]; then
	out=$(timeout 120 bash -e "$blocks/5" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && printf '%s\n' "$out" | tail -n 1 | grep -Eq '^[1-9][0-9]* passed, 0 failed$'; then
		ok "README: the examples' tests pass ($(printf '%s\n' "$out" | tail -n 1))"
	else
		not_ok "README: the examples' tests pass" "exit $rc
$out"
	fi
else
	not_ok "README: the examples' tests pass" "no fifth sh block in README.md"
fi

finish
