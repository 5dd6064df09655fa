#!/usr/bin/env python3
"""TLS interop matrix: other TLS stacks against a real parleyd, for one value
of [tls] record_layer (argv[2]: parley or openssl).

Clients: openssl s_client (TLS 1.2 and 1.3, each AEAD suite we offer, with
its interactive 'k'/'K' key updates on 1.3), gnutls-cli (each suite, both
versions), curl against the Web port (each suite, both versions), Python's
ssl (TLS 1.2 suites, TLS 1.3). Each SIP client sends many OPTIONS, each in a
record of its own, first one, then waits until the server is quiet so that
with record_layer = parley the session has moved to our record layer, then
the rest (and the key updates), and must get exactly one 200 per request.
Afterwards the control socket must show: no TLS failure and no bad MAC; with
parley, a hand-off per TLS 1.3 SIP session and every requested key update
handled there; with openssl, no hand-off.

Usage: interop.py PARLEYD_BUILDDIR parley|openssl. Prints the matrix and a
closing line "interop: N passed, M failed"; exit 1 on any failure.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

N_REQ = 120           # requests per SIP connection
QUIET_S = 2.6         # > the 2 s after which an idle session is trimmed and handed off

TLS13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
TLS12 = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
         "ECDHE-ECDSA-CHACHA20-POLY1305"]
GNUTLS = {  # OpenSSL name -> gnutls priority cipher/mac part
    "TLS_AES_128_GCM_SHA256": "+AES-128-GCM", "TLS_AES_256_GCM_SHA384": "+AES-256-GCM",
    "TLS_CHACHA20_POLY1305_SHA256": "+CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256": "+AES-128-GCM",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "+AES-256-GCM",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "+CHACHA20-POLY1305",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def options(i, tag):
    return (f"OPTIONS sip:example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-{tag}-{i}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:interop@example.com>;tag={tag}\r\n"
            f"To: <sip:example.com>\r\nCall-ID: {tag}@interop\r\nCSeq: {i + 1} OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


class Server:
    def __init__(self, build, layer):
        self.dir = tempfile.mkdtemp(prefix="parley-interop-")
        self.sip = free_port()
        self.web = free_port()
        self.conf = os.path.join(self.dir, "parleyd.ini")
        with open(self.conf, "w") as f:
            f.write(f"[server]\ndomain = example.com\ndata_dir = {self.dir}/data\n"
                    f"drain_timeout_s = 3\n[sip]\nlisten = 127.0.0.1:{self.sip}\n"
                    f"[web]\nlisten = 127.0.0.1:{self.web}\n[tls]\nrecord_layer = {layer}\n")
            # The suite runs this again on the io_uring kernel path.
            if os.environ.get("PARLEY_KERNEL_IO"):
                f.write(f"[io]\nkernel_io = {os.environ['PARLEY_KERNEL_IO']}\n")
        self.ctl = os.path.join(build, "control", "parleyctl")
        self.log = open(os.path.join(self.dir, "parleyd.log"), "w")
        self.proc = subprocess.Popen([os.path.join(build, "router", "parleyd"), "-c", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.sip), timeout=1).close()
                socket.create_connection(("127.0.0.1", self.web), timeout=1).close()
                self.check_kernel_io()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("parleyd did not start; log: " + self.dir)

    def check_kernel_io(self):
        """With PARLEY_KERNEL_IO=io_uring, parleyd says it runs on it (or why not)."""
        if os.environ.get("PARLEY_KERNEL_IO") != "io_uring":
            return
        self.log.flush()
        with open(os.path.join(self.dir, "parleyd.log")) as f:
            text = f.read()
        if "using epoll" in text:
            print("note: this kernel cannot run io_uring; the test ran on epoll")
        elif "kernel_io = io_uring\n" not in text:
            raise RuntimeError("parleyd did not log that it runs on io_uring: " + text)

    def stats(self):
        out = subprocess.run([self.ctl, "-c", self.conf, "-j", "stats"], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)["total"]

    def stop(self, keep):
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        self.log.close()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def count_ok(text):
    return text.count("SIP/2.0 200 OK")


def run_python(srv, proto, suite, tag):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = (
        ssl.TLSVersion.TLSv1_3 if proto == "1.3" else ssl.TLSVersion.TLSv1_2)
    if proto == "1.2":
        ctx.set_ciphers(suite)
    with socket.create_connection(("127.0.0.1", srv.sip), timeout=20) as raw:
        with ctx.wrap_socket(raw) as s:
            got = b""
            s.sendall(options(0, tag))
            while count_ok(got.decode(errors="replace")) < 1:
                got += s.recv(65536)
            time.sleep(QUIET_S)
            for i in range(1, N_REQ):
                s.sendall(options(i, tag))
            while count_ok(got.decode(errors="replace")) < N_REQ:
                b = s.recv(65536)
                if not b:
                    break
                got += b
            neg = s.cipher()[0]
    n = count_ok(got.decode(errors="replace"))
    want = suite if proto == "1.2" else None
    if want is not None and neg != want:
        return False, f"negotiated {neg}"
    return n == N_REQ, f"{n}/{N_REQ} answers ({neg})"


def run_stream(cmd, srv, tag, keyupdates):
    """Drives a command-line client over its stdin/stdout: one request, a
    quiet pause, then the rest with key updates ('k'/'K' lines) between."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()))
    reader.start()
    try:
        time.sleep(0.5)
        p.stdin.write(options(0, tag))
        p.stdin.flush()
        time.sleep(QUIET_S)
        for i in range(1, N_REQ):
            if keyupdates and i % 40 == 0:
                p.stdin.write(b"K\n" if i % 80 == 0 else b"k\n")
                p.stdin.flush()
                time.sleep(0.05)
            p.stdin.write(options(i, tag))
            p.stdin.flush()
            time.sleep(0.005)
        time.sleep(1.5)
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
        reader.join(timeout=10)
    text = out[0].decode(errors="replace") if out else ""
    n = count_ok(text)
    return n == N_REQ, f"{n}/{N_REQ} answers" + ("" if n == N_REQ else " | " + text[-300:])


def run_s_client(srv, proto, suite, tag):
    # Not -ign_eof: it turns the interactive commands (k, K) off.
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.sip}"]
    cmd += (["-tls1_3", "-ciphersuites", suite] if proto == "1.3" else
            ["-tls1_2", "-cipher", suite])
    return run_stream(cmd, srv, tag, keyupdates=(proto == "1.3"))


def run_gnutls(srv, proto, suite, tag):
    vers = "+VERS-TLS1.3" if proto == "1.3" else "+VERS-TLS1.2"
    prio = f"NORMAL:-VERS-ALL:{vers}:-CIPHER-ALL:{GNUTLS[suite]}"
    cmd = ["gnutls-cli", "--insecure", "--port", str(srv.sip), "--priority", prio, "127.0.0.1"]
    return run_stream(cmd, srv, tag, keyupdates=False)


def run_curl(srv, proto, suite, tag):
    url = f"https://127.0.0.1:{srv.web}/filestore/interop-{tag}"
    cmd = ["curl", "-sk", "-w", "%{http_code} %{num_connects}\\n"]
    cmd += (["--tlsv1.3", "--tls13-ciphers", suite] if proto == "1.3" else
            ["--tlsv1.2", "--tls-max", "1.2", "--ciphers", suite])
    for _ in range(40):
        cmd += ["-o", "/dev/null", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = [ln.split() for ln in r.stdout.splitlines() if ln.strip()]
    codes = [ln[0] for ln in lines]
    conns = sum(int(ln[1]) for ln in lines if len(ln) > 1)
    # A file that does not exist, asked without a token: a 4xx each time,
    # all on one connection (curl reuses it).
    ok = (r.returncode == 0 and len(codes) == 40 and all(c.startswith("4") for c in codes)
          and conns == 1)
    return ok, f"{len(codes)} answers, codes {sorted(set(codes))}, {conns} connection(s)"


def main():
    build, layer = sys.argv[1], sys.argv[2]
    for tool in ("openssl", "gnutls-cli", "curl"):
        if shutil.which(tool) is None:
            print(f"interop: {tool} not found (./parley test installs it)")
            print("interop: 0 passed, 1 failed")
            return 1
    srv = Server(build, layer)
    rows = []
    for proto, suites in (("1.3", TLS13), ("1.2", TLS12)):
        for suite in suites:
            rows.append(("s_client", proto, suite, run_s_client))
            rows.append(("gnutls-cli", proto, suite, run_gnutls))
            rows.append(("curl", proto, suite, run_curl))
            if proto == "1.2":
                rows.append(("python-ssl", proto, suite, run_python))
    rows.append(("python-ssl", "1.3", "(server's choice)", run_python))
    results = [None] * len(rows)

    def work(i, row):
        try:
            results[i] = row[3](srv, row[1], row[2], f"t{i}")
        except Exception as e:  # noqa: BLE001 - a failed row says why
            results[i] = (False, f"{type(e).__name__}: {e}")

    before = srv.stats()
    threads = [threading.Thread(target=work, args=(i, r)) for i, r in enumerate(rows)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = srv.stats()
    passed = failed = 0
    print(f"record_layer = {layer}")
    print(f"{'client':<11} {'TLS':<4} {'suite':<32} result")
    for row, (ok, why) in zip(rows, results):
        print(f"{row[0]:<11} {row[1]:<4} {row[2]:<32} {'ok' if ok else 'FAIL'}: {why}")
        passed += ok
        failed += not ok

    def delta(k):
        return after.get(k, 0) - before.get(k, 0)
    sip13 = sum(1 for r in rows if r[1] == "1.3" and r[0] != "curl")
    keyupd = (sum(1 for r in rows if r[0] == "s_client" and r[1] == "1.3") *
              len([i for i in range(1, N_REQ) if i % 40 == 0]))
    checks = [("tls_failures == 0", delta("tls_failures") == 0),
              ("tls_bad_mac == 0", delta("tls_bad_mac") == 0)]
    if layer == "parley":
        checks.append((f"tls_handoffs >= {sip13} (every TLS 1.3 SIP session)",
                       delta("tls_handoffs") >= sip13))
        checks.append((f"tls_key_updates == {keyupd} (s_client's k/K, on our layer)",
                       delta("tls_key_updates") == keyupd))
    else:
        checks.append(("tls_handoffs == 0", delta("tls_handoffs") == 0))
    for name, ok in checks:
        print(f"counter check {name}: {'ok' if ok else 'FAIL'} "
              f"(handoffs {delta('tls_handoffs')}, key updates {delta('tls_key_updates')}, "
              f"failures {delta('tls_failures')}, bad MAC {delta('tls_bad_mac')})")
        passed += ok
        failed += not ok
    rc = srv.stop(keep=failed > 0)
    if rc != 0:
        print(f"parleyd exit status {rc} (log in {srv.dir})")
        failed += 1
    print(f"interop: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
