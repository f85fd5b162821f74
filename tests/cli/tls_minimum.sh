#!/usr/bin/env bash
# tls_minimum.sh - TLS hardening seen from a real peer (openssl s_server):
# mqlua never speaks TLS 1.0/1.1, even when OpenSSL's configuration allows
# them (the minimum is mqlua's own), for libmosquitto's TLS and for the
# WebSocket relay's; verification is on by default (no ca_certs: the system
# CAs, which do not know a private CA); turning verification off warns.
. tests/lib/sh.sh

d=$(tmpdir)
bash tests/lib/certs.sh "$d" || exit 1
# an OpenSSL configuration that allows TLS 1.0 and every cipher: what mqlua
# refuses below it refuses by itself
cat >"$d/weak.cnf" <<'EOF'
openssl_conf = conf
[conf]
ssl_conf = ssl
[ssl]
system_default = sys
[sys]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
EOF
export OPENSSL_CONF=$d/weak.cnf

# s_server VERSION: a TLS server on a free port speaking only VERSION
# (tls1_1, tls1_2); sets PORT, its output goes to $d/server-$PORT.log (what
# the client sent shows there).
s_server() {
	PORT=$(free_port) || return 1
	mkfifo "$d/stdin-$PORT"   # s_server ends at the end of its input: keep it open
	openssl s_server -accept "127.0.0.1:$PORT" "-$1" -cipher 'DEFAULT@SECLEVEL=0' \
		-cert "$d/server.crt" -key "$d/server.key" <"$d/stdin-$PORT" >"$d/server-$PORT.log" 2>&1 &
	echo $! >>"$SH_STATE/pids"
	sleep 120 >"$d/stdin-$PORT" &
	echo $! >>"$SH_STATE/pids"
	wait_for 5 port_open "$PORT"
}

# connect TRANSPORT PORT [TLS_SET_ARGS]: one connection attempt; prints rc and last_error.
connect() {
	timeout 20 "$MQLUA" -e "
		local mqtt = require 'mqlua'
		local c = mqtt.Client{ client_id = 'tls-min', transport = '$1' }
		c:tls_set(${3:-\"$d/ca.crt\"})
		local rc = c:connect('127.0.0.1', $2)
		mqtt.wait_until(function() return c:last_error() ~= nil end, 3)
		print(rc, c:last_error())
		c:disconnect()" 2>&1
}

s_server tls1_1 || { not_ok "openssl s_server starts"; finish; }
out=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
	-CAfile "$d/ca.crt" 2>&1)
if grep -q 'Protocol *: TLSv1.1' <<<"$out"; then
	ok "the TLS 1.1 server takes a TLS 1.1 client under this configuration (openssl s_client)"
else
	not_ok "the TLS 1.1 server takes a TLS 1.1 client under this configuration (openssl s_client)" "$out"
fi

for transport in tcp websockets; do
	s_server tls1_1 || { not_ok "openssl s_server starts"; finish; }
	out=$(connect "$transport" "$PORT")
	name="$transport: a TLS 1.1-only server is refused (protocol version), nothing is sent"
	if grep -q 'protocol version' <<<"$out" && ! grep -aq MQTT "$d/server-$PORT.log"; then
		ok "$name"
	else
		not_ok "$name" "$out
server: $(tail -n 5 "$d/server-$PORT.log")"
	fi
done

s_server tls1_2 || { not_ok "openssl s_server starts"; finish; }
out=$(connect tcp "$PORT")
if wait_for 5 grep -aq MQTT "$d/server-$PORT.log"; then
	ok "the same server at TLS 1.2: the handshake passes and the CONNECT arrives"
else
	not_ok "the same server at TLS 1.2: the handshake passes and the CONNECT arrives" "$out
server: $(tail -n 5 "$d/server-$PORT.log")"
fi

for transport in tcp websockets; do
	s_server tls1_2 || { not_ok "openssl s_server starts"; finish; }
	out=$(connect "$transport" "$PORT" " ")
	name="$transport: tls_set() without ca_certs verifies against the system CAs: a private CA is refused"
	if grep -q 'certificate verify failed' <<<"$out" && ! grep -aq MQTT "$d/server-$PORT.log"; then
		ok "$name"
	else
		not_ok "$name" "$out"
	fi
done

s_server tls1_2 || { not_ok "openssl s_server starts"; finish; }
out=$(connect tcp "$PORT" "nil, nil, nil, mqtt.CERT_NONE")
if grep -q 'WARN .*TLS certificate verification is disabled (cert_reqs = CERT_NONE)' <<<"$out" &&
	wait_for 5 grep -aq MQTT "$d/server-$PORT.log"; then
	ok "cert_reqs = CERT_NONE logs a warning (and then trusts the unknown CA)"
else
	not_ok "cert_reqs = CERT_NONE logs a warning (and then trusts the unknown CA)" "$out"
fi
out=$(timeout 10 "$MQLUA" -e "
	local c = require('mqlua').Client('tls-insecure')
	c:tls_set('$d/ca.crt')
	c:tls_insecure_set(true)" 2>&1)
if grep -q 'WARN .*TLS hostname verification is disabled (tls_insecure_set)' <<<"$out"; then
	ok "tls_insecure_set(true) logs a warning"
else
	not_ok "tls_insecure_set(true) logs a warning" "$out"
fi
finish
