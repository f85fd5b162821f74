# repl_eval.sh - the prompt evaluates like lua's: an expression shows its
# values, a statement runs, an unfinished one continues on ">> ", an error
# shows its message and the prompt returns. Without a terminal, mqlua reads
# the script from stdin with no prompt.
. tests/lib/sh.sh
. tests/lib/repl.sh

out=$(echo 'print(1)' | timeout 10 "$MQLUA" - 2>&1)
[ "$out" = 1 ] && ok "echo 'print(1)' | mqlua - prints 1 and nothing else" ||
	not_ok "echo 'print(1)' | mqlua - prints 1 and nothing else" "output: $out"
out=$(printf 'local x = 6\nprint(x * 7)\n' | timeout 10 "$MQLUA" 2>&1)
[ "$out" = 42 ] && ok "mqlua < file with no terminal runs the file, no prompt" ||
	not_ok "mqlua < file with no terminal runs the file, no prompt" "output: $out"
"$MQLUA" --help | grep -q -- '^  -i ' && ok "--help lists -i" || not_ok "--help lists -i"

if ! repl_start -q; then
	not_ok "mqlua on a terminal opens a prompt" "$(repl_show)"
	finish
fi
ok "mqlua on a terminal opens a prompt"

repl_type '1+1'
repl_wait_for_line '2' && repl_wait_last '>' && ok "1+1 prints 2" || not_ok "1+1 prints 2" "$(repl_show)"

repl_type 'return 7, nil, "s"'
repl_wait_for_re '7 +nil +s' && ok "several values print tab-separated, nil as nil" ||
	not_ok "several values print tab-separated, nil as nil" "$(repl_show)"

repl_type 't = {3, 1, z = {y = {x = {w = 1}}}, ["a b"] = "q\n"}; t.self = t'
repl_type 't'
repl_wait_for_line '{3, 1, ["a b"] = "q\x0A", self = <cycle>, z = {y = {x = {...}}}}' 2 ||
	repl_screen | grep -qE '^\{3, 1, \["a b"\] = "q\\x0A", self = <cycle: table: 0x[0-9a-f]+>, z = \{y = \{x = \{\.\.\.\}\}\}\}$' &&
	ok "tables print nested, keys sorted, strings quoted, depth limit, cycles marked" ||
	not_ok "tables print nested, keys sorted, strings quoted, depth limit, cycles marked" "$(repl_show)"

repl_type 'function twice(x)'
repl_wait_last '>>' && ok "an unfinished function definition continues on >>" ||
	not_ok "an unfinished function definition continues on >>" "$(repl_show)"
repl_type '  return x * 2'
repl_type 'end'
repl_wait_last '>'
repl_type 'twice(21)'
repl_wait_for_line '42' && ok "the multi-line function is defined and callable" ||
	not_ok "the multi-line function is defined and callable" "$(repl_show)"

repl_type 'local v = 5; print("stmt", v)'
repl_wait_for_re 'stmt +5' && ok "a statement runs as a statement" ||
	not_ok "a statement runs as a statement" "$(repl_show)"

repl_type 'error("boom")'
repl_wait_for_line 'stdin:1: boom' && repl_wait_last '>' && ! repl_screen | grep -q 'stack traceback' &&
	ok "an error prints its message, no traceback, and the prompt returns" ||
	not_ok "an error prints its message, no traceback, and the prompt returns" "$(repl_show)"

repl_type 'x = = 1'
repl_wait_for_line "stdin:1: unexpected symbol near '='" && ok "a syntax error is reported" ||
	not_ok "a syntax error is reported" "$(repl_show)"

repl_type 'help()'
repl_wait_for_re ' +connect\(\[url\]\) +a connected client.*' && ok "help() documents the helpers" ||
	not_ok "help() documents the helpers" "$(repl_show)"

repl_type 'os.exit(3)'
rc=$(repl_wait_exit 10)
[ "$rc" = 3 ] && ok "os.exit(3) exits with 3" || not_ok "os.exit(3) exits with 3" "rc=$rc $(repl_show)"
repl_stop

printf 'from_script = 99\nprint("script ran", arg[1])\n' >"$REPL_DIR/pre.lua"
if repl_start -q -i "$REPL_DIR/pre.lua" one; then
	repl_type 'from_script + 1'
	repl_wait_for_line '100' && repl_has_re 'script ran +one' &&
		ok "mqlua -i script.lua runs the script, then the prompt sees its globals" ||
		not_ok "mqlua -i script.lua runs the script, then the prompt sees its globals" "$(repl_show)"
	pid=$(pgrep -P "$(tmux -L "$REPL_SOCK" display -p '#{pane_pid}')" | head -n 1)
	kill -TERM "$pid"
	rc=$(repl_wait_exit 10)
	[ "$rc" = 0 ] && ok "SIGTERM at the prompt exits 0" || not_ok "SIGTERM at the prompt exits 0" "rc=$rc $(repl_show)"
else
	not_ok "mqlua -i script.lua opens the prompt" "$(repl_show)"
fi
repl_stop
finish
