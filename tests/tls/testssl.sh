#!/bin/bash
# testssl.sh (Debian's testssl) against a real parleyd's SIP and Web ports:
# protocols, cipher categories, forward secrecy, vulnerabilities and server
# defaults. The certificate is what a deployment would have: issued by a CA
# (made here, handed to testssl with --add-ca), an IP SAN for 127.0.0.1, a
# CRL distribution point (never fetched: testssl does not phone out), 397
# days of validity. Fails on any finding above LOW and prints them.
#   tests/tls/testssl.sh BUILDDIR
set -euo pipefail
build=${1:?usage: testssl.sh BUILDDIR}
command -v testssl >/dev/null || { echo "testssl: not installed (apt-get install testssl.sh)"; exit 1; }
dir=$(mktemp -d /tmp/parley-testssl.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A CA and a server certificate.
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 397 \
	-subj "/CN=Parley test CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
	-keyout srv.key -out srv.csr 2>/dev/null
cat > ext.cnf <<EOT
subjectAltName = IP:127.0.0.1, DNS:localhost
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
crlDistributionPoints = URI:http://127.0.0.1:9/parley-test-ca.crl
EOT
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 397 \
	-extfile ext.cnf -out srv.pem 2>/dev/null

sip=$(free_port)
web=$(free_port)
cat > parleyd.ini <<EOT
[server]
domain = example.com
data_dir = $dir/data
drain_timeout_s = 3
[sip]
listen = 127.0.0.1:$sip
[web]
listen = 127.0.0.1:$web
[tls]
cert = $dir/srv.pem
key = $dir/srv.key
EOT
"$build/router/parleyd" -c parleyd.ini >parleyd.log 2>&1 &
pid=$!
for _ in $(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/$sip) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/$web) 2>/dev/null && break
	sleep 0.2
done

# Both ports at once (two cores); each writes its findings as JSON.
run() {
	testssl --quiet --color 0 --warnings off --openssl-timeout 10 --add-ca "$dir/ca.pem" \
		-p -s -f -U -S --jsonfile "$dir/$1.json" "127.0.0.1:$2" >"$dir/$1.out" 2>&1
}
start=$(date +%s)
run sip "$sip" & p1=$!
run web "$web" & p2=$!
wait $p1 || true
wait $p2 || true
echo "testssl: both ports in $(( $(date +%s) - start )) s"
python3 - "$dir" <<'EOT'
import json, sys
d = sys.argv[1]
rank = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1}
bad = 0
ports_bad = 0
for port in ("sip", "web"):
    before = bad
    try:
        findings = json.load(open(f"{d}/{port}.json"))
    except (OSError, ValueError) as e:
        print(f"{port}: no result ({e})")
        bad += 1
        ports_bad += 1
        continue
    sev = {}
    for f in findings:
        s = f.get("severity", "")
        sev[s] = sev.get(s, 0) + 1
        if rank.get(s, 0) >= 2:
            print(f"{port}: {s} {f['id']}: {f['finding']}")
            bad += 1
    print(f"{port}: {len(findings)} findings, by severity {dict(sorted(sev.items()))}")
    ports_bad += bad > before
print(f"testssl: {2 - ports_bad} passed, {ports_bad} failed")
sys.exit(1 if bad else 0)
EOT
