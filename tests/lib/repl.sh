# repl.sh - drives mqlua's interactive prompt in a private tmux server, for
# tests/cli/repl_*.sh (source tests/lib/sh.sh first).
#
#   repl_start --broker mqtt://127.0.0.1:$BROKER_PORT   # waits for the prompt
#   repl_type '1+1'; repl_wait_for_line '2' || not_ok ...
#   repl_stop
#
# Each test file gets its own tmux socket (REPL_SOCK), killed at exit, and
# its own history directory (REPL_STATE, as XDG_STATE_HOME).

REPL_SOCK=
REPL_SOCKS=()
REPL_DIR=$(tmpdir)
REPL_STATE=$REPL_DIR/state
mkdir -p "$REPL_STATE"

repl_cleanup() {
	local s
	for s in "${REPL_SOCKS[@]}"; do
		tmux -L "$s" kill-server 2>/dev/null
		rm -f -- "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$s"
	done
	sh_cleanup
}
trap repl_cleanup EXIT

# repl_start ARGS...: runs "$MQLUA" ARGS in a 120x30 terminal on a new tmux
# server; its exit status goes to $REPL_DIR/rc. Returns 1 if no prompt shows
# within 10 s.
repl_start() {
	REPL_SOCK=mqlua-repl-$$-$RANDOM-${#REPL_SOCKS[@]}
	REPL_SOCKS+=("$REPL_SOCK")
	rm -f "$REPL_DIR/rc"
	local cmd
	cmd=$(printf '%q ' env "XDG_STATE_HOME=$REPL_STATE" "ASAN_OPTIONS=${ASAN_OPTIONS-}" \
		"UBSAN_OPTIONS=${UBSAN_OPTIONS-}" "$MQLUA" "$@")
	tmux -L "$REPL_SOCK" new-session -d -x 120 -y 30 \
		"$cmd; echo \$? >$(printf '%q' "$REPL_DIR/rc"); sleep 2" || return 1
	wait_for 10 repl_at_prompt
}

# repl_screen: the screen and its scrollback.
repl_screen() {
	tmux -L "$REPL_SOCK" capture-pane -p -S -300 2>/dev/null
}

# repl_last_line: the last non-empty line on the screen.
repl_last_line() {
	repl_screen | sed '/^[[:space:]]*$/d' | tail -n 1
}

repl_at_prompt() {
	[ "$(repl_last_line)" = ">" ]
}

# repl_type TEXT: types TEXT and Enter.
repl_type() {
	tmux -L "$REPL_SOCK" send-keys -l "$1"
	tmux -L "$REPL_SOCK" send-keys Enter
}

# repl_keys KEY...: tmux key names (Tab, C-c, C-d) or literal text with -l.
repl_keys() {
	tmux -L "$REPL_SOCK" send-keys "$@"
}

repl_has_line() {
	repl_screen | grep -qxF -- "$1"
}

# repl_wait_for_line LINE [TIMEOUT]: true once LINE is a whole line on screen.
repl_wait_for_line() {
	wait_for "${2:-5}" repl_has_line "$1"
}

repl_last_is() {
	[ "$(repl_last_line)" = "$1" ]
}

# repl_wait_last LINE [TIMEOUT]: true once LINE is the last line on screen.
repl_wait_last() {
	wait_for "${2:-5}" repl_last_is "$1"
}

repl_exited() {
	[ -s "$REPL_DIR/rc" ]
}

# repl_wait_exit [TIMEOUT]: waits for mqlua to end; prints its exit status.
repl_wait_exit() {
	wait_for "${1:-10}" repl_exited || return 1
	cat "$REPL_DIR/rc"
}

repl_stop() {
	tmux -L "$REPL_SOCK" kill-server 2>/dev/null
	return 0
}

# repl_show: the screen, for a failure's details.
repl_show() {
	printf -- '--- screen:\n%s\n' "$(repl_screen)"
}

repl_has_re() {
	repl_screen | grep -qxE -- "$1"
}

# repl_wait_for_re ERE [TIMEOUT]: like repl_wait_for_line, for a whole-line
# extended regex (tabs show as spaces on the screen).
repl_wait_for_re() {
	wait_for "${2:-5}" repl_has_re "$1"
}
