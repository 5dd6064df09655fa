#!/usr/bin/env python3
"""Where the microseconds of a delivery go: a per-stage table from a perf
profile of parleyd (perf record -p PID, e.g. perf/memif.sh --perf-record F).

  perf/stages.py PERF_DATA US_PER_DELIVERY [--comm THREAD]...

Each sample (perf script) is put into a stage: the storage thread's as a
whole; a kernel sample by its kernel call chain (sleeping, eventfd wake-ups,
page faults, the rest); a user sample by its leaf symbol and library (user
call chains need no frame pointers this way); a stage's share of the thread's samples times
US_PER_DELIVERY (the server CPU per delivery measured in the same run, or
the thread's own share of it) gives its microseconds per delivery. Prints a
Markdown table, the biggest stage first, and the symbols left unclassified.
"""
import re
import subprocess
import sys

# (stage, test on "symbol (dso)" of the sample's leaf user frame); the first
# match wins. Kernel samples go by their kernel call chain (KSTAGES).
STAGES = [
    ("idle: sleep (ppoll, nanosleep, scheduler)", r"\bppoll|nanosleep|__poll"),
    ("NIC: memif PMD rx/tx", r"librte_net_memif|rte_eth_|librte_"),
    ("TCP: user-space TCP core (checksums, lookup, timers, segments)", r"utcp_|\barp_|tcp_emit|ip_header"),
    ("dpdk glue: frames, mbufs, poll loop", r"output_cb|recv_cb|rx_once|rx_frames|rx_ip|tx_put|tx_stage|dpdk_|event_cb|conn_readable|rte_pktmbuf|clock_cb"),
    ("TLS: record seal/open, AES-GCM", r"libcrypto|libssl|tlsrec_|tlsterm_|tls_|gcm|aes|EVP_|OPENSSL_|CRYPTO_"),
    ("SIP: framing, parsing, building", r"sip|param_next|hdr_|dialog_"),
    ("XCCOS/chat: XML, commands, fan-out", r"libxml2|xccos|xml|fanout|chat|room|grpchat|send_to_member|take_tls_users|post_|data_opts|gather"),
    ("engine: connection bookkeeping, loop, clock", r"conn_|engine_|lcore_|ctr_|clock_gettime|vdso|\bsubmit|commit_submit|ring"),
    ("malloc/free", r"malloc|free|_int_|calloc|realloc|tcache|consolidate"),
    ("memcpy/memmove/memset/str*", r"mem(move|cpy|set|cmp|chr|mem)|str(len|cmp|chr|ncmp|ncasecmp)|printf"),
]
KSTAGES = [
    ("idle: sleep (ppoll, nanosleep, scheduler)", r"do_sys_poll|poll_schedule|nanosleep|schedule_hrtimeout|do_nanosleep|__x64_sys_ppoll"),
    ("wake-ups: eventfd writes to other threads", r"eventfd"),
    ("kernel: page faults", r"exc_page_fault"),
    ("kernel: interrupts, timers, other syscalls", r"."),
]


def samples(data, comms):
    """Yields (comm, [frames]) from perf script; frames are 'sym (dso)'."""
    cmd = ["perf", "script", "-i", data, "-F", "comm,ip,sym,dso"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    comm, frames = None, []
    for line in out.splitlines() + [""]:
        if not line.strip():
            if comm is not None and (not comms or comm in comms):
                yield comm, frames
            comm, frames = None, []
        elif not line.startswith((" ", "\t")) or comm is None:
            comm = line.strip()
        else:
            parts = line.split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "")


def classify(comm, frames):
    if comm.startswith("parley-storage") or comm.startswith("rocksdb"):
        return "storage thread: group commit, RocksDB, fsync"
    kern = [f for f in frames if "[kernel" in f]
    user = [f for f in frames if "[kernel" not in f and "[unknown]" not in f]
    if frames and "[kernel" in frames[0]:
        chain = " ".join(kern)
        for name, rx in KSTAGES:
            if re.search(rx, chain):
                return name
    leaf = user[0] if user else (frames[0] if frames else "")
    for name, rx in STAGES:
        if re.search(rx, leaf):
            return name
    return "other: " + leaf.split(" (")[0]


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    data, us = sys.argv[1], float(sys.argv[2])
    comms = {sys.argv[i + 1] for i in range(3, len(sys.argv) - 1) if sys.argv[i] == "--comm"}
    share, other, total = {}, {}, 0
    for comm, frames in samples(data, comms):
        total += 1
        name = classify(comm, frames)
        if name.startswith("other: "):
            other[name[7:]] = other.get(name[7:], 0) + 1
            name = "other (unclassified)"
        share[name] = share.get(name, 0) + 1
    total = total or 1
    print("| stage | share of samples | µs per delivery |")
    print("|---|---:|---:|")
    for name, n in sorted(share.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {100 * n / total:.1f}% | {us * n / total:.2f} |")
    print(f"| **total** ({total} samples) | 100% | **{us:.2f}** |")
    top = sorted(other.items(), key=lambda kv: -kv[1])[:8]
    if top:
        print("\nlargest unclassified: " + ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in top))


if __name__ == "__main__":
    main()
