#!/bin/sh
# Makes a private CA and the certificates docker-compose.yml expects, for a staging set-up or a
# first start (replace fullchain.pem/privkey.pem with a certificate from a public CA for real
# users). Usage: sh deploy/make-certs.sh [folder] [hostname]   (default: deploy/certs localhost)
#   ca.pem, ca.key            private CA (the app verifies PostgreSQL against ca.pem)
#   fullchain.pem, privkey.pem nginx's certificate for the hostname (and localhost, 127.0.0.1)
#   postgres.crt, postgres.key PostgreSQL's certificate for the host name "postgres"
# (No DH parameters: nginx and the service offer ECDHE key exchange only.)
# Private keys are written with mode 600 and never overwritten.
set -eu
dir=${1:-deploy/certs}
host=${2:-localhost}
days=${CERT_DAYS:-825}
mkdir -p "$dir"
umask 077
cd "$dir"
if [ -e ca.key ] || [ -e privkey.pem ] || [ -e postgres.key ]; then
  echo "make-certs: $dir already holds keys; move them away first" >&2
  exit 1
fi

openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days "$days" -subj "/CN=Flokie private CA" \
  -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null

issue() { # name, subject CN, subjectAltName
  openssl req -newkey rsa:2048 -sha256 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

issue server "$host" "DNS:$host,DNS:localhost,IP:127.0.0.1"
cat server.crt ca.pem > fullchain.pem
mv server.key privkey.pem
rm -f server.crt

issue postgres postgres "DNS:postgres,DNS:localhost,IP:127.0.0.1"
rm -f ca.srl
# PostgreSQL refuses a key readable by others and must own it (uid 999 in the official image).
if [ "$(id -u)" -eq 0 ]; then chown 999:999 postgres.key postgres.crt; fi

chmod 644 ca.pem fullchain.pem postgres.crt
echo "make-certs: wrote $(pwd)"
