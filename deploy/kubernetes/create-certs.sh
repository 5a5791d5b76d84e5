#!/usr/bin/env bash
# create-certs.sh NAMESPACE [CLUSTER_DOMAIN] makes the mutual TLS
# certificates of the builders in deploy/kubernetes, with openssl, as
# BuildKit's examples/kubernetes/create-certs.sh does with mkcert:
#
#   .certs/daemon/{ca.pem,cert.pem,key.pem}   the builders' (Secret buildkit-daemon-certs)
#   .certs/client/{ca.pem,cert.pem,key.pem}   Larder's (Secret buildkit-client-certs)
#   .certs/buildkit-daemon-certs.yaml and .certs/buildkit-client-certs.yaml
#
# The daemon certificate holds every pod's name behind the Service
# (*.buildkitd.NAMESPACE.svc.CLUSTER_DOMAIN), which remote.SRV checks, and
# the Service's own name, which remote.AddressRecords checks. The CA's key
# is not kept. The default CLUSTER_DOMAIN is cluster.local; the certificates
# are valid for 825 days. Set CERTS_DIR to write elsewhere than .certs.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 NAMESPACE [CLUSTER_DOMAIN]" >&2
	exit 2
fi
ns=$1
domain=${2:-cluster.local}
dir=${CERTS_DIR:-.certs}
svc=buildkitd
days=825

mkdir -p "$dir/daemon" "$dir/client"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The certificate authority.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
	-subj "/CN=buildkit CA ($ns)" -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem" 2>/dev/null

# sign CN EXTENSIONS OUT signs a new key's certificate with the CA.
sign() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
		-keyout "$3/key.pem" -out "$tmp/req.pem" 2>/dev/null
	printf '%s\n' "$2" >"$tmp/ext.cnf"
	openssl x509 -req -in "$tmp/req.pem" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" -CAcreateserial \
		-days "$days" -extfile "$tmp/ext.cnf" -out "$3/cert.pem" 2>/dev/null
	cp "$tmp/ca.pem" "$3/ca.pem"
	chmod 600 "$3/key.pem"
}
sans="DNS:*.$svc.$ns.svc.$domain,DNS:*.$svc.$ns.svc,DNS:$svc.$ns.svc.$domain,DNS:$svc.$ns.svc,DNS:$svc"
sign buildkitd "basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$sans" "$dir/daemon"
sign larder "basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=clientAuth" "$dir/client"

# secret NAME DIR writes the Secret that holds DIR's three files.
secret() {
	{
		printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\ntype: Opaque\ndata:\n' "$1"
		for f in ca.pem cert.pem key.pem; do
			printf '  %s: %s\n' "$f" "$(base64 -w0 <"$2/$f")"
		done
	} >"$dir/$1.yaml"
}
secret buildkit-daemon-certs "$dir/daemon"
secret buildkit-client-certs "$dir/client"
echo "wrote $dir/buildkit-daemon-certs.yaml and $dir/buildkit-client-certs.yaml for *.$svc.$ns.svc.$domain" >&2
