#!/usr/bin/env python3
"""systemd's part, played by a datagram socket: parleyd started with
NOTIFY_SOCKET pointing at it says READY=1 only once the SIP port accepts and
the control socket exists, WATCHDOG=1 repeatedly with WATCHDOG_USEC set,
STOPPING=1 on SIGTERM; with JOURNAL_STREAM naming its stderr, every log line
carries an sd-daemon priority prefix and no time."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("PARLEY_BUILDDIR", "build")
PARLEYD = os.path.join(BUILD, "router", "parleyd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fail(msg, log=None):
    print("FAIL:", msg)
    if log and os.path.exists(log):
        print("--- parleyd stderr ---")
        print(open(log, errors="replace").read()[-4000:])
    sys.exit(1)


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def main():
    tmp = tempfile.mkdtemp(prefix="parley-sdnotify-")
    sip, web = free_port(), free_port()
    conf = os.path.join(tmp, "parleyd.ini")
    with open(conf, "w") as f:
        f.write("[server]\ndomain = example.com\ndata_dir = %s/var\ndrain_timeout_s = 2\n"
                "[sip]\nlisten = 127.0.0.1:%d\n[web]\nlisten = 127.0.0.1:%d\n"
                % (tmp, sip, web))
    nsock = os.path.join(tmp, "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(nsock)
    log = os.path.join(tmp, "stderr")
    errf = open(log, "w")
    st = os.fstat(errf.fileno())
    env = dict(os.environ, NOTIFY_SOCKET=nsock, WATCHDOG_USEC="300000",
               JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    env.pop("WATCHDOG_PID", None)
    p = subprocess.Popen([PARLEYD, "-c", conf, "-v"], stderr=errf, stdout=errf, env=env)
    got = []

    def recv(until):
        ns.settimeout(max(0.01, until - time.monotonic()))
        try:
            d = ns.recv(4096).decode()
        except socket.timeout:
            return None
        got.append((time.monotonic(), d))
        return d

    try:
        # READY=1: the port must accept at that moment, and not one message
        # before it may claim readiness.
        deadline = time.monotonic() + 60
        while True:
            d = recv(deadline)
            if d is None:
                fail("no READY=1 within 60 s (got %r)" % got, log)
            if "READY=1" in d.split("\n"):
                break
            if p.poll() is not None:
                fail("parleyd exited %d before READY=1" % p.returncode, log)
        if not accepts(sip):
            fail("READY=1 arrived but the SIP port %d does not accept" % sip, log)
        if not os.path.exists(os.path.join(tmp, "var", "parleyd.sock")):
            fail("READY=1 arrived before the control socket exists", log)
        if not any(l.startswith("STATUS=") for l in d.split("\n")):
            fail("READY=1 without STATUS=: %r" % d)
        # WATCHDOG=1, every half interval (150 ms): at least 5 in 1.5 s.
        t0 = time.monotonic()
        pings = 0
        while time.monotonic() - t0 < 1.5:
            d = recv(t0 + 1.5)
            if d is not None and d == "WATCHDOG=1":
                pings += 1
        if pings < 5:
            fail("only %d WATCHDOG=1 in 1.5 s with WATCHDOG_USEC=300000" % pings, log)
        # STOPPING=1 on SIGTERM, then a clean exit.
        p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        stopping = False
        while not stopping:
            d = recv(deadline)
            if d is None:
                fail("no STOPPING=1 within 20 s of SIGTERM (got %r)" % got[-5:], log)
            stopping = "STOPPING=1" in d.split("\n")
        if p.wait(30) != 0:
            fail("parleyd exited %d" % p.returncode, log)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    errf.close()
    # The journal's format: "<P>COMPONENT: message", P in 3..7, no timestamp.
    lines = open(log, errors="replace").read().splitlines()
    ours = [l for l in lines if re.match(r"^<[0-7]>", l)]
    if len(ours) < 3:
        fail("fewer than 3 prefixed log lines", log)
    for l in ours:
        if not re.match(r"^<[3-7]>[A-Z_]+: ", l):
            fail("bad journal line %r" % l, log)
        if re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", l):
            fail("journal line with a timestamp: %r" % l, log)
    if not any(l.startswith("<5>") for l in ours) or not any(l.startswith("<7>") for l in ours):
        fail("no notice (<5>) or no debug (<7>) line", log)
    if not any(l.startswith("<5>ROUTER: parleyd: stopped") for l in ours):
        fail("no '<5>ROUTER: parleyd: stopped'", log)
    # Our own lines all carry the prefix (DPDK's EAL writes its own).
    for l in lines:
        if re.match(r"^\d{4}-\d\d-\d\dT", l):
            fail("a terminal-format line under JOURNAL_STREAM: %r" % l, log)
    subprocess.run(["rm", "-rf", tmp])
    print("ok: READY=1 after the port accepts, %d watchdog pings, STOPPING=1, "
          "%d journal lines" % (pings, len(ours)))


if __name__ == "__main__":
    main()
