#!/bin/sh
# Test certificates, made fresh at test time with the openssl command (ECDSA P-256, quick):
#   ca.pem                the test CA
#   server.pem/.key       localhost and 127.0.0.1, signed by the CA
#   server2.pem/.key      the same names, another key and serial (certificate reload)
#   other.pem/.key        other.test (SNI), signed by the CA
#   ca2.pem               a second CA that signed nothing here (unknown-CA checks)
# Usage: tls_certs.sh DIR
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
curve="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

ca() {
    openssl req -x509 $curve -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
        2>/dev/null
}

leaf() {
    openssl req $curve -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" \
        > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "$4" -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "wsx test CA"
ca ca2 "wsx other CA"
leaf server "wsx test server" "DNS:localhost,IP:127.0.0.1" 1001
leaf server2 "wsx reloaded server" "DNS:localhost,IP:127.0.0.1" 1002
leaf other "wsx other.test" "DNS:other.test" 1003
