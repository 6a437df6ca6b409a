#!/bin/sh
# Makes the TLS fixtures for the integration tests in directory $1, fresh on
# every run, so that no private key is committed and none expires unseen:
#   ca.pem / ca.key          a test certificate authority
#   localhost.pem/.key       signed by it for DNS:localhost and IP:127.0.0.1
#   wrongname.pem/.key       signed by it for DNS:wrong.example only
#   selfsigned.pem/.key      for localhost, but signed by nobody we trust
set -eu
dir=${1:?usage: gen-certs.sh DIR}
openssl=${OPENSSL:-openssl}
mkdir -p "$dir"
cd "$dir"

quiet() { "$@" >/dev/null 2>&1 || { echo "gen-certs: failed: $*" >&2; "$@"; exit 1; }; }

quiet "$openssl" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout ca.key -out ca.pem -days 2 -subj "/CN=dgw test CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign

leaf() {
  name=$1 san=$2
  quiet "$openssl" req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$name.key" -out "$name.csr" -subj "/CN=$name"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    "$san" > "$name.ext"
  quiet "$openssl" x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key \
    -CAcreateserial -out "$name.pem" -days 2 -extfile "$name.ext"
  rm -f "$name.csr" "$name.ext"
}
leaf localhost "DNS:localhost,IP:127.0.0.1"
leaf wrongname "DNS:wrong.example"
quiet "$openssl" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout selfsigned.key -out selfsigned.pem -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
