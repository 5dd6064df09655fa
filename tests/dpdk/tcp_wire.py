#!/usr/bin/python3
# TCP behaviour of parleyd's user-space stack on the wire, with scapy, from
# the test namespace (tests/dpdk/run.sh wire):
#   - SYN-ACK option negotiation: MSS, window scale, SACK-permitted and
#     timestamps (our TSval echoed) when offered, MSS alone when not;
#   - RFC 5961: an in-window RST that is not exact gets a challenge ACK and
#     leaves the connection alone; an in-window SYN on a synchronized
#     connection gets a challenge ACK; an out-of-window RST is ignored; the
#     exact RST resets the connection;
#   - IPv4 and ICMP: an echo request is answered with its id, sequence and
#     payload; a fragment and a packet with a bad header checksum are
#     dropped without an answer.
# Frames go out at layer 2 (the namespace kernel's own RSTs for these
# connections are dropped by the runner's nftables rule on its output hook,
# which L2 frames do not cross).
#
#   tcp_wire.py DST PORT IFACE
import random
import sys

from scapy.all import ARP, ICMP, Ether, IP, TCP, Raw, conf, srp, srp1, sendp, sniff, getmacbyip  # noqa: E402

conf.verb = 0
dst, dport, iface = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conf.iface = iface
mac = getmacbyip(dst)
if mac is None:
    ans, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=dst), timeout=2, iface=iface)
    mac = ans[0][1].hwsrc if ans else None
if mac is None:
    print("tcp_wire: no ARP answer from %s" % dst)
    sys.exit(1)
failures = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def l2(pkt):
    return Ether(dst=mac) / pkt


def opts(p):
    return {o[0]: o[1] for o in p[TCP].options if isinstance(o, tuple)}


def syn(sport, options):
    isn = random.randrange(1 << 32)
    p = IP(dst=dst) / TCP(sport=sport, dport=dport, flags="S", seq=isn, window=64240,
                          options=options)
    r = srp1(l2(p), timeout=3, iface=iface)
    return isn, r


def exchange(pkt, timeout=2):
    """Sends <pkt> and returns the first TCP segment of the same connection
    coming back (scapy's own matching never pairs an answer with a RST)."""
    sp, dp = pkt[TCP].sport, pkt[TCP].dport
    got = sniff(iface=iface, count=1, timeout=timeout,
                lfilter=lambda p: TCP in p and p[IP].src == dst and p[TCP].sport == dp and
                p[TCP].dport == sp,
                started_callback=lambda: sendp(l2(pkt), iface=iface))
    return got[0] if got else None


def expect_nothing(pkt, what):
    r = exchange(pkt, timeout=1)
    check(r is None, what + " (got %s)" % (r[TCP].flags if r is not None else "nothing"))


# 1. Everything offered.
sport = random.randrange(20000, 30000)
isn, r = syn(sport, [("MSS", 1400), ("SAckOK", b""), ("Timestamp", (12345, 0)), ("NOP", None),
                     ("WScale", 7)])
check(r is not None and TCP in r and r[TCP].flags == "SA", "SYN-ACK to a SYN with options")
if r is not None and TCP in r:
    o = opts(r)
    check(r[TCP].ack == (isn + 1) % (1 << 32), "SYN-ACK acknowledges ISN+1")
    check("MSS" in o and 536 <= o["MSS"] <= 1460, "MSS in SYN-ACK (%s)" % o.get("MSS"))
    check("WScale" in o and 0 <= o["WScale"] <= 14, "window scale in SYN-ACK (%s)" % o.get("WScale"))
    check("SAckOK" in o, "SACK-permitted in SYN-ACK")
    check("Timestamp" in o and o["Timestamp"][1] == 12345,
          "timestamps in SYN-ACK, our TSval echoed (%s)" % (o.get("Timestamp"),))
    sendp(l2(IP(dst=dst) / TCP(sport=sport, dport=dport, flags="R", seq=isn + 1)), iface=iface)

# 2. Nothing offered: MSS only.
sport = random.randrange(30000, 40000)
isn, r = syn(sport, [])
check(r is not None and TCP in r and r[TCP].flags == "SA", "SYN-ACK to a bare SYN")
if r is not None and TCP in r:
    o = opts(r)
    check("MSS" in o, "MSS in SYN-ACK to a bare SYN")
    check("WScale" not in o and "SAckOK" not in o and "Timestamp" not in o,
          "no window scale, SACK or timestamps when not offered (%s)" % list(o))

# 3. RFC 5961 on an established connection (no options: no PAWS to satisfy).
sport = random.randrange(40000, 50000)
isn, r = syn(sport, [("MSS", 1400)])
check(r is not None and TCP in r and r[TCP].flags == "SA", "SYN-ACK for the RFC 5961 checks")
if r is None or TCP not in r:
    print("tcp_wire: %d failures" % (len(failures) + 1))
    sys.exit(1)
rcv_nxt = (isn + 1) % (1 << 32)         # the server's RCV.NXT
snd_nxt = (r[TCP].seq + 1) % (1 << 32)  # the server's SND.NXT
base = IP(dst=dst) / TCP(sport=sport, dport=dport)
ack = base.copy()
ack[TCP].flags, ack[TCP].seq, ack[TCP].ack, ack[TCP].window = "A", rcv_nxt, snd_nxt, 64240
sendp(l2(ack), iface=iface)             # established

rst = base.copy()
rst[TCP].flags, rst[TCP].seq = "R", (rcv_nxt + 1000) % (1 << 32)
c = exchange(rst)
check(c is not None and TCP in c and c[TCP].flags == "A" and c[TCP].ack == rcv_nxt and
      c[TCP].seq == snd_nxt,
      "in-window inexact RST answered by a challenge ACK (seq=SND.NXT, ack=RCV.NXT)")

s2 = base.copy()
s2[TCP].flags, s2[TCP].seq = "S", (rcv_nxt + 500) % (1 << 32)
c = exchange(s2)
check(c is not None and TCP in c and c[TCP].flags == "A" and c[TCP].ack == rcv_nxt,
      "in-window SYN on an established connection answered by a challenge ACK")

far = base.copy()
far[TCP].flags, far[TCP].seq = "R", (rcv_nxt + (1 << 30)) % (1 << 32)
expect_nothing(far, "out-of-window RST ignored")

# Still established: a duplicate pure ACK gets no answer ...
expect_nothing(ack, "connection alive after the inexact RSTs (a pure ACK is not answered)")
exact = base.copy()
exact[TCP].flags, exact[TCP].seq = "R", rcv_nxt
sendp(l2(exact), iface=iface)
# ... and once reset, the same ACK meets no connection: RST.
c = exchange(ack)
check(c is not None and TCP in c and "R" in str(c[TCP].flags),
      "the exact RST reset the connection (an ACK now draws a RST)")

# 4. ICMP echo, and what an IPv4 receiver must drop.
ident, payload = random.randrange(1 << 16), bytes(random.randrange(256) for _ in range(56))
r = srp1(l2(IP(dst=dst) / ICMP(type=8, id=ident, seq=7) / Raw(payload)), timeout=3, iface=iface)
check(r is not None and ICMP in r and r[ICMP].type == 0 and r[ICMP].id == ident and
      r[ICMP].seq == 7 and bytes(r[ICMP].payload) == payload,
      "ICMP echo request answered with its id, sequence and payload")


def expect_no_icmp(pkt, what):
    got = sniff(iface=iface, count=1, timeout=1,
                lfilter=lambda p: ICMP in p and p[IP].src == dst and p[ICMP].type == 0 and
                p[ICMP].seq == pkt[ICMP].seq,
                started_callback=lambda: sendp(l2(pkt), iface=iface))
    check(not got, what)


expect_no_icmp(IP(dst=dst, flags="MF", frag=0) / ICMP(type=8, id=ident, seq=8) / Raw(payload),
               "a fragment (MF set) is dropped, not answered")
bad = IP(dst=dst) / ICMP(type=8, id=ident, seq=9) / Raw(payload)
bad = IP(bytes(bad))
bad[IP].chksum ^= 0x5555
expect_no_icmp(bad, "a packet with a bad IPv4 header checksum is dropped")

print("tcp_wire: %d failures" % len(failures))
sys.exit(1 if failures else 0)
