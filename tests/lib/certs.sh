#!/usr/bin/env bash
# certs.sh DIR - makes throw-away TLS material for tests, with openssl only.
#
#   ca.crt ca.key              test CA
#   other-ca.crt other-ca.key  an unrelated CA (verification must fail with it)
#   server.crt server.key      CN localhost, SAN DNS:localhost + IP:127.0.0.1
#   wrong-host.crt/.key        SAN DNS:wrong.example only (hostname mismatch)
#   client.crt client.key      client certificate (clientAuth)
#   client-enc.key             client.key encrypted with passphrase "secret"
#
# EC P-256 keys, valid 2 days. Files are 644 and DIR 755 so a broker that
# dropped root privileges (mosquitto runs as user mosquitto) can read them.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
mkdir -p -- "$dir"
cd -- "$dir"

days=2
cnf=$(mktemp)
errs=$(mktemp)
trap 'rm -f -- "$cnf" "$errs" ./*.csr' EXIT

# quiet CMD...: runs CMD with its chatter hidden, shown only if it fails.
quiet() {
	if ! "$@" 2>"$errs"; then
		echo "certs.sh: failed: $*" >&2
		cat -- "$errs" >&2
		exit 1
	fi
}

# Our own config, so the result does not depend on /etc/ssl/openssl.cnf.
cat >"$cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[wrong_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

# ca NAME CN: a self-signed CA certificate NAME.crt with key NAME.key.
ca() {
	quiet openssl req -config "$cnf" -x509 "${newkey[@]}" -keyout "$1.key" -out "$1.crt" \
		-days "$days" -subj "/CN=$2" -extensions ca_ext
}

# leaf NAME CN EXT: NAME.crt (signed by ca.crt) with key NAME.key.
leaf() {
	quiet openssl req -config "$cnf" -new "${newkey[@]}" -keyout "$1.key" -out "$1.csr" \
		-subj "/CN=$2"
	quiet openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key \
		-set_serial "0x$(openssl rand -hex 12)" -days "$days" \
		-extfile "$cnf" -extensions "$3" -out "$1.crt"
}

ca ca "mqlua test CA"
ca other-ca "mqlua unrelated CA"
leaf server localhost server_ext
leaf wrong-host wrong.example wrong_ext
leaf client mqlua-test-client client_ext
quiet openssl pkey -in client.key -aes-256-cbc -passout pass:secret -out client-enc.key

chmod 644 ca.crt ca.key other-ca.crt other-ca.key server.crt server.key \
	wrong-host.crt wrong-host.key client.crt client.key client-enc.key
chmod 755 .
