# options.sh - the mqlua command line as lua(1) users expect it: --help,
# --version, option errors (exit 2), -e, -l, the global `arg` table, scripts
# from standard input, and how script errors are reported (exit 1).
. tests/lib/sh.sh

work=$(tmpdir)

# expect NAME RC [STDOUT_TEXT [STDERR_TEXT]]: checks the last run; texts
# are plain strings the output must contain ("" = not checked).
expect() {
	local name=$1 rc=$2 out=${3-} err=${4-} why=""
	[ "$RC" -eq "$rc" ] || why="exit status $RC, expected $rc"
	if [ -n "$out" ] && ! grep -qF -- "$out" <<<"$OUT"; then
		why="${why:+$why; }stdout lacks: $out"
	fi
	if [ -n "$err" ] && ! grep -qF -- "$err" <<<"$ERR"; then
		why="${why:+$why; }stderr lacks: $err"
	fi
	if [ -z "$why" ]; then
		ok "$name"
	else
		not_ok "$name" "$why
--- stdout:
$(tail -n 15 <<<"$OUT")
--- stderr:
$(tail -n 15 <<<"$ERR")"
	fi
}

# ---- help, version, option errors ----

run "$MQLUA" --help
expect "--help exits 0 and mentions --broker" 0 "--broker"
[ -z "$ERR" ] && grep -q '^usage: mqlua' <<<"$OUT" && ok "--help: usage on stdout, nothing on stderr" ||
	not_ok "--help: usage on stdout, nothing on stderr" "stderr: $ERR"
run "$MQLUA" -h
expect "-h is --help" 0 "usage: mqlua [options] [script [args]]"

run "$MQLUA" --version
expect "--version names mqlua, Lua and libmosquitto" 0 "mqlua 0.1.0 (Lua 5.4"
grep -qE '^mqlua [0-9]+\.[0-9]+\.[0-9]+ \(Lua 5\.4\.[0-9]+, libmosquitto 2\.0\.[0-9]+\)$' <<<"$OUT" &&
	ok "--version is one line" || not_ok "--version is one line" "$OUT"

run "$MQLUA" --bogus
expect "unknown option: exit 2 with a message" 2 "" "mqlua: unrecognized option '--bogus'"
expect "unknown option: points at --help" 2 "" "Try 'mqlua --help'"
run "$MQLUA" -x script.lua
expect "unknown short option: exit 2" 2 "" "unrecognized option '-x'"
run "$MQLUA" -e
expect "-e without code: exit 2" 2 "" "'-e' needs an argument"
run "$MQLUA" -l
expect "-l without a name: exit 2" 2 "" "'-l' needs an argument"
run "$MQLUA" --broker
expect "--broker without a URL: exit 2" 2 "" "'--broker' needs a URL or 'embedded'"

# ---- -e, -l ----

run "$MQLUA" -e 'print(1+1)'
expect "-e 'print(1+1)' prints 2" 0 "2"
[ "$OUT" = 2 ] && ok "-e: exactly its output" || not_ok "-e: exactly its output" "stdout: $OUT"

run "$MQLUA" -e 'x = 20' -e 'print(x + 1)'
expect "-e twice, in order" 0 "21"
run "$MQLUA" -e'print("glued")'
expect "-eCODE without a space" 0 "glued"
run "$MQLUA" -e 'local mqtt = require "mqlua"; print(mqtt.VERSION, type(mqtt.Client))'
expect "-e can require mqlua" 0 "0.1.0	function"

mkdir -p "$work/lib"
printf 'return { answer = 42, loaded_as = ... }\n' >"$work/lib/mymod.lua"
run env LUA_PATH="$work/lib/?.lua;;" "$MQLUA" -l mymod -e 'print(mymod.answer, mymod.loaded_as)'
expect "-l NAME requires NAME into the global NAME" 0 "42	mymod"
run env LUA_PATH="$work/lib/?.lua;;" "$MQLUA" -lmymod -e 'print(mymod.answer)'
expect "-lNAME without a space" 0 "42"
run "$MQLUA" -l string -e 'print(string.rep("ab", 2))'
expect "-l a standard library" 0 "abab"
run "$MQLUA" -l no_such_module_here -e 'print("ran")'
expect "-l a missing module: exit 1 naming it, nothing else runs" 1 "" "module 'no_such_module_here' not found"
[ -z "$OUT" ] && ok "-l failure stops before -e" || not_ok "-l failure stops before -e" "stdout: $OUT"

# ---- the global arg table, like lua ----

cat >"$work/args.lua" <<'LUA'
local lo = 0
while arg[lo - 1] ~= nil do lo = lo - 1 end
local parts = {}
for i = lo, #arg do parts[#parts + 1] = i .. "=" .. arg[i] end
print(table.concat(parts, " "))
print("varargs " .. select("#", ...) .. ": " .. table.concat({ ... }, ","))
LUA
run "$MQLUA" -e 'x = 1' "$work/args.lua" a 'b c' ''
want="-3=$MQLUA -2=-e -1=x = 1 0=$work/args.lua 1=a 2=b c 3="
[ "$RC" -eq 0 ] && [ "$(head -n 1 <<<"$OUT")" = "$want" ] && ok "arg: script at 0, options negative, arguments positive" ||
	not_ok "arg: script at 0, options negative, arguments positive" "want: $want
got:  $(head -n 1 <<<"$OUT") (exit $RC) $ERR"
expect "arg: the arguments are also the main chunk's ..." 0 "varargs 3: a,b c,"
run "$MQLUA" -- "$work/args.lua" -x --y
expect "arg: -- ends the options; later ones go to the script" 0 "-2=$MQLUA -1=-- 0=$work/args.lua 1=-x 2=--y"
run "$MQLUA" "$work/args.lua" -e 'print(1)'
expect "arg: options after the script belong to the script" 0 "1=-e 2=print(1)"
if command -v lua5.4 >/dev/null; then
	run lua5.4 -e 'x = 1' "$work/args.lua" a 'b c' ''
	lua_out=$(sed "s|^-3=lua5.4 |-3=$MQLUA |" <<<"$OUT")
	run "$MQLUA" -e 'x = 1' "$work/args.lua" a 'b c' ''
	[ "$OUT" = "$lua_out" ] && ok "arg: the same table as lua5.4 builds" ||
		not_ok "arg: the same table as lua5.4 builds" "lua5.4: $lua_out
mqlua:  $OUT"
else
	ok "arg: the same table as lua5.4 builds # skip: no lua5.4"
fi

# ---- scripts from standard input ----

printf 'print("from stdin", ...)\n' >"$work/stdin.lua"
STDIN=$work/stdin.lua run "$MQLUA" - one two
expect "'-' reads the script from stdin, with arguments" 0 "from stdin	one	two"
STDIN=$work/stdin.lua run "$MQLUA" - 
expect "'-' alone" 0 "from stdin"
STDIN=$work/args.lua run "$MQLUA" - p
expect "'-': arg[0] is '-'" 0 "-1=$MQLUA 0=- 1=p"
STDIN=$work/stdin.lua run "$MQLUA"
expect "mqlua < file runs the file" 0 "from stdin"
STDIN=$work/stdin.lua run "$MQLUA" -e 'print("e first")'
[ "$RC" -eq 0 ] && [ "$OUT" = "e first" ] && ok "-e without a script does not read stdin" ||
	not_ok "-e without a script does not read stdin" "exit $RC, stdout: $OUT"

# ---- errors ----

printf 'local x = 1\n\nerror("boom " .. x)\n' >"$work/fail.lua"
run "$MQLUA" "$work/fail.lua"
expect "a script error: exit 1 with file:line: message" 1 "" "$work/fail.lua:3: boom 1"
expect "a script error: with a stack traceback" 1 "" "stack traceback:"
grep -qF "$work/fail.lua:3: in main chunk" <<<"$ERR" && ok "a script error: the traceback names the line" ||
	not_ok "a script error: the traceback names the line" "$ERR"

printf 'local function f(t)\n  return t.field\nend\nf(nil)\n' >"$work/index.lua"
run "$MQLUA" "$work/index.lua"
expect "an error inside a function: file:line and the function in the traceback" 1 "" \
	"$work/index.lua:2: attempt to index a nil value (local 't')"
grep -qF "in local 'f'" <<<"$ERR" && grep -qF "$work/index.lua:4: in main chunk" <<<"$ERR" &&
	ok "an error inside a function: the traceback has both frames" || not_ok "an error inside a function: the traceback has both frames" "$ERR"

printf 'print("before")\nlocal x = = 2\n' >"$work/syntax.lua"
run "$MQLUA" "$work/syntax.lua"
expect "a syntax error: exit 1 with file:line" 1 "" "$work/syntax.lua:2:"
[ -z "$OUT" ] && ok "a syntax error: nothing of the script runs" || not_ok "a syntax error: nothing of the script runs" "$OUT"

run "$MQLUA" "$work/no-such-script.lua"
expect "a missing script: exit 1 naming the file" 1 "" "cannot open $work/no-such-script.lua"

run "$MQLUA" -e 'error("in -e")'
expect "an error in -e: exit 1, named (command line)" 1 "" "(command line):1: in -e"
run "$MQLUA" -e 'error(setmetatable({}, {__tostring = function() return "custom error" end}))'
expect "an error object with __tostring is shown with it" 1 "" "custom error"
run "$MQLUA" -e 'error({})'
expect "an error table without __tostring" 1 "" "(error object is a table value)"
run "$MQLUA" -e 'os.exit(7)'
expect "os.exit(7) exits 7" 7

finish
