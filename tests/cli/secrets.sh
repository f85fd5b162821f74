#!/usr/bin/env bash
# secrets.sh - passwords never leave mqlua: runs mqlua in every way that
# could show a secret (a password in the --broker URL, username_pw_set,
# tls_set's keyfile_password, proxy_set's password, refused credentials,
# -v debug logging, on_log / enable_logger, tostring(client), errors for bad
# arguments, the prompt's history, `mqlua test` output, the process's
# command line and `arg`) and greps every byte it wrote (stdout, stderr, the
# history file, the store and its WAL) for the secret strings.
. tests/lib/sh.sh
. tests/lib/repl.sh

URLPASS=Url5ecretQx7     # in --broker mqtt://alice:URLPASS@...
PWSET=PwSet5ecretZk2     # username_pw_set
WRONG=Wr0ng5ecretYb9     # refused credentials
KEYPASS=Key5ecretWv3     # tls_set keyfile_password
PROXYPASS=Pr0xy5ecretJm4 # proxy_set password
SECRETS=("$URLPASS" "$PWSET" "$WRONG" "$KEYPASS" "$PROXYPASS")

d=$(tmpdir)
out=$d/out              # everything mqlua writes goes under here
mkdir -p "$out"
export MQLUA_STORE=$out/store.db XDG_STATE_HOME=$out/state

# a broker with two users (bob's password is the URL's) and a TLS listener that wants a client certificate
bash tests/lib/certs.sh "$d/certs" || exit 1
openssl pkey -in "$d/certs/client.key" -aes256 -passout "pass:$KEYPASS" -out "$d/certs/client-pw.key" 2>/dev/null
chmod 644 "$d/certs/client-pw.key"
mosquitto_passwd -b -c "$d/passwd" alice "$PWSET" && mosquitto_passwd -b "$d/passwd" bob "$URLPASS" || exit 1
chmod 644 "$d/passwd"
TLS_PORT=$(free_port)
start_broker "allow_anonymous false" "password_file $d/passwd" \
	"listener $TLS_PORT 127.0.0.1" "cafile $d/certs/ca.crt" "certfile $d/certs/server.crt" \
	"keyfile $d/certs/server.key" "require_certificate true" "use_identity_as_username true" || exit 1
# alice is allowed over TLS: the certificate's CN is the user name there
PROXY_PORT=$(free_port)
microsocks -i 127.0.0.1 -p "$PROXY_PORT" -u carol -P "$PROXYPASS" >/dev/null 2>&1 &
echo $! >>"$SH_STATE/pids"
wait_for 5 port_open "$PROXY_PORT" || { not_ok "microsocks starts"; finish; }

# run NAME MQLUA-ARGS...: runs mqlua, stdout and stderr into $out/NAME.{out,err}.
run() {
	local name=$1
	shift
	timeout 30 "$MQLUA" "$@" >"$out/$name.out" 2>"$out/$name.err"
}

# leaks FILE...: prints "file: secret" for every secret found in the files.
leaks() {
	local s f
	for f in "$@"; do
		[ -f "$f" ] || continue
		for s in "${SECRETS[@]}"; do
			grep -aqF -- "$s" "$f" && printf '%s: %s\n' "${f#"$out/"}" "$s"
		done
	done
}

# expect NAME FILE PATTERN: the case is ok when FILE matches PATTERN (the run did happen).
expect() {
	if grep -aqE -- "$3" "$2"; then ok "$1"; else not_ok "$1" "no /$3/ in $2: $(tail -n 20 "$2")"; fi
}

cat >"$d/script.lua" <<EOF
local mqtt = require "mqlua"
local function show(...) print(...) io.stdout:flush() end
local function try(label, f, ...) show(label, pcall(f, ...)) end
local function wait_connack(c)
	local got
	c.on_connect = function(_, _, _, rc) got = rc end
	c.on_log = function(_, _, level, text) show("on_log", level, text) end
	c:enable_logger(function(level, text) show("logger", level, text) end)
	mqtt.wait_until(function() return got ~= nil end, 5)
	return got
end

-- 1. the --broker URL's credentials (connect() without a host)
local c = mqtt.Client("secrets-url")
c.on_log = function(_, _, level, text) show("on_log", level, text) end
local got
c.on_connect = function(_, _, _, rc) got = rc end
show("connect", c:connect())
mqtt.wait_until(function() return got ~= nil end, 5)
show("url connack", got, tostring(c), c:last_error())
c:publish("secrets/x", "hello", 1):wait_for_publish(5)
c:disconnect()

-- 2. username_pw_set: right, then wrong
for _, pw in ipairs{ "$PWSET", "$WRONG" } do
	local a = mqtt.Client("secrets-pw")
	a:username_pw_set("alice", pw)
	a:connect_async("127.0.0.1", $BROKER_PORT)
	show("pw connack", wait_connack(a), tostring(a), a:last_error(), a.password)
	a:disconnect()
end
try("bad username", mqtt.Client("x").username_pw_set, mqtt.Client("x"), {}, "$PWSET")
try("no username", mqtt.Client("x").username_pw_set, mqtt.Client("x"), nil, "$PWSET")
try("numeric password", mqtt.Client("x").username_pw_set, mqtt.Client("x"), "alice", { "$PWSET" })

-- 3. tls_set keyfile_password: right, then wrong, then a bad argument next to it
local certs = "$d/certs/"
local t = mqtt.Client("secrets-tls")
t:tls_set{ ca_certs = certs .. "ca.crt", certfile = certs .. "client.crt", keyfile = certs .. "client-pw.key",
	keyfile_password = "$KEYPASS" }
t:connect_async("127.0.0.1", $TLS_PORT)
show("tls connack", wait_connack(t), tostring(t), t:last_error())
t:disconnect()
local w = mqtt.Client("secrets-tls-wrong")
try("tls wrong password", w.tls_set, w, certs .. "ca.crt", certs .. "client.crt", certs .. "client-pw.key",
	nil, nil, nil, "$WRONG")
show("tls wrong connect", pcall(w.connect, w, "127.0.0.1", $TLS_PORT), w:last_error())
try("tls bad cert_reqs", w.tls_set, w, certs .. "ca.crt", nil, nil, "$KEYPASS", nil, nil, "$KEYPASS")

-- 4. proxy_set with a password: right, then wrong
for _, pw in ipairs{ "$PROXYPASS", "$WRONG" } do
	local p = mqtt.Client("secrets-proxy")
	p:username_pw_set("alice", "$PWSET")
	p:proxy_set(mqtt.SOCKS5, "127.0.0.1", $PROXY_PORT, nil, "carol", pw)
	p:connect_async("127.0.0.1", $BROKER_PORT)
	show("proxy connack", wait_connack(p), tostring(p), p:last_error())
	p:disconnect()
end
try("proxy bad port", mqtt.Client("x").proxy_set, mqtt.Client("x"), mqtt.SOCKS5, "127.0.0.1", "$PROXYPASS", nil, "carol", "$PROXYPASS")

-- 5. the command line as the process and the script see it
show("arg", table.concat(arg, " ", -#arg > 0 and -5 or 1, #arg))
for i = -5, -1 do show("arg", i, arg[i]) end
local f = io.open("/proc/self/cmdline", "rb")
show("cmdline", (f:read("a"):gsub("%z", " ")))
f:close()
show("done")
EOF

# every way at once, with -v: the URL's credentials are right
run script -v --broker "mqtt://bob:$URLPASS@127.0.0.1:$BROKER_PORT" "$d/script.lua"
expect "the script ran to its end" "$out/script.out" '^done'
expect "the URL's credentials were accepted" "$out/script.out" '^url connack	0	mqlua.Client\("secrets-url", 127.0.0.1:[0-9]+, connected\)'
expect "username_pw_set: accepted, then refused" "$out/script.out" '^pw connack	5'
expect "tls_set with keyfile_password connects" "$out/script.out" '^tls connack	0'
expect "proxy_set with a password connects, then is refused" "$out/script.out" '^proxy connack	[^0].*refused the user name or password'
expect "-v debug logging and on_log ran" "$out/script.err" 'DEBUG|debug'
expect "on_log saw libmosquitto's lines" "$out/script.out" '^on_log'

# refused URL credentials, -v
run refused -v --broker "mqtt://bob:$WRONG@127.0.0.1:$BROKER_PORT" \
	-e 'local m = require("mqlua"); local c = m.Client("r"); print(c:connect())
	    m.wait_until(function() return c:last_error() end, 5); print(c:last_error(), tostring(c)); c:disconnect()'
expect "refused URL credentials are reported" "$out/refused.out" 'not authori[sz]ed|bad user name or password'

# a bad --broker URL: the error names the problem, not the password
run badurl --broker "mqtt://bob:$URLPASS@127.0.0.1:99999" -e 'print(1)'
expect "a bad --broker URL is reported" "$out/badurl.err" 'bad port'
run badurl2 --broker "mqtp://bob:$URLPASS@127.0.0.1" -e 'print(1)'
expect "a bad --broker scheme is reported" "$out/badurl2.err" 'unsupported URL scheme'

# `mqlua test` with the URL's credentials, -v, a failing case that shows values
cat >"$d/secrets_test.lua" <<'EOF'
local mqtt = require "mqlua"
test("connects with the URL's credentials", function(t)
	local c = mqtt.Client("secrets-testmode")
	t:eq(c:connect(), 0, "connect")
	t:ok(mqtt.wait_until(function() return c:is_connected() end, 5), "connected")
	c:disconnect()
end)
test("a failing case prints its values", function(t) t:eq(tostring(T.broker and "x"), "y") end)
EOF
run testmode test -v --broker "mqtt://bob:$URLPASS@127.0.0.1:$BROKER_PORT" "$d/secrets_test.lua"
expect "mqlua test ran against the URL's broker" "$out/testmode.out" "^ok - .*connects with the URL's credentials"

# the prompt: lines with secrets run, then are not in the history
typed() {   # types a line at the prompt and remembers it: its echo on the screen is the user's own
	printf '%s\n' "$1" >>"$out/typed"
	repl_type "$1"
}
if repl_start -v --broker "mqtt://bob:$URLPASS@127.0.0.1:$BROKER_PORT"; then
	typed "c = mqtt.Client('secrets-repl'); c:username_pw_set('alice', '$PWSET')"
	typed "K = '$d/certs/'"
	typed "c:tls_set(K..'ca.crt', K..'client.crt', K..'client-pw.key', nil, nil, nil, '$KEYPASS')"
	typed "p = mqtt.Client('secrets-repl-p'); p:proxy_set(mqtt.SOCKS5, '127.0.0.1', $PROXY_PORT, nil, 'carol', '$PROXYPASS')"
	typed "p.password = '$WRONG'"
	typed "connect('mqtt://bob:$URLPASS@127.0.0.1:$BROKER_PORT')"
	typed "c"
	typed "print('repl' .. 'done')"
	repl_wait_for_line 'repldone' 10 && ok "the prompt ran the lines" || not_ok "the prompt ran the lines" "$(repl_show)"
	repl_keys C-d
	repl_wait_exit 10 >/dev/null
	repl_screen >"$out/repl.screen"
	repl_stop
else
	not_ok "the prompt opens" "$(repl_show)"
fi
cp "$REPL_STATE/mqlua/history" "$out/history" 2>/dev/null
expect "the history file was written" "$out/history" 'print'
# the screen shows what was typed: at the prompt, and also without one when the terminal echoed a
# line typed while mqlua was still busy with the one before; only check what mqlua printed itself
grep -a -v -F -f "$out/typed" "$out/repl.screen" | sed -e 's/> .*$//' >"$out/repl.printed"

files=("$out"/*.out "$out"/*.err "$out/repl.printed" "$out/history" "$out"/store.db* "$out"/state/mqlua/*)
found=$(leaks "${files[@]}")
if [ -z "$found" ]; then
	ok "no secret in anything mqlua wrote (${#files[@]} files)"
else
	not_ok "no secret in anything mqlua wrote (${#files[@]} files)" "$found"
fi
[ -s "$out/store.db" ] && ok "the store was written (and checked)" || not_ok "the store was written (and checked)" "$(ls -l "$out")"
finish
