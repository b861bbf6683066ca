#!/usr/bin/env bash
# Makes a throw-away certificate authority and a server certificate it signed, for trying the
# gateway's TLS on one machine: `dist/make-test-ca.sh DIR [NAME...]`.
#   DIR/ca.pem           the CA certificate: what clients trust (curl --cacert, wbauth --cacert)
#   DIR/cert.pem         the server certificate then the CA's (the chain a listener serves)
#   DIR/key.pem          the server's private key (mode 0600)
#   DIR/client.pem, DIR/client-key.pem
#                        a client certificate from the same CA (for [admin] tls.client_ca)
# NAMEs are the host names and IP addresses the server certificate is valid for (default:
# localhost and 127.0.0.1). Not for production: the CA key is left beside the certificates.
set -euo pipefail
dir="${1:?usage: make-test-ca.sh DIR [NAME...]}"
shift
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(localhost 127.0.0.1)
san=""
for name in "${names[@]}"; do
    if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then san+="IP:$name,"; else san+="DNS:$name,"; fi
done
san="${san%,}"
mkdir -p "$dir"
cd "$dir"
umask 077
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca-key.pem -out ca.pem -days 30 \
    -subj "/CN=wbauth test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() { # issue NAME SUBJECT EXTENSIONS
    openssl req "${ec[@]}" -keyout "$1-key.pem" -out "$1.csr" -subj "$2" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
        -out "$1.pem" -extfile <(printf '%s\n' "$3") 2>/dev/null
    rm -f "$1.csr"
}
issue server "/CN=${names[0]}" "subjectAltName=$san
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
issue client "/CN=wbauth test client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
cat server.pem ca.pem > cert.pem
mv server-key.pem key.pem
rm -f server.pem ca.srl
chmod 644 ca.pem cert.pem client.pem
echo "ca=$PWD/ca.pem"
echo "cert=$PWD/cert.pem"
echo "key=$PWD/key.pem"
echo "client_cert=$PWD/client.pem"
echo "client_key=$PWD/client-key.pem"
