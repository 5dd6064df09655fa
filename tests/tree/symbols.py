#!/usr/bin/env python3
"""The layer rule at link level: no layer's library needs a symbol that a
higher layer's library (or a sibling on its layer) defines. layers.py checks
the #includes; this catches the calls an include check cannot see (a
prototype declared by hand, a header of the wrong layer).

Usage: symbols.py BUILDDIR. Reads the static libraries with nm; prints every
offence; exit 1 if any.
"""
import os
import subprocess
import sys

# (library, rank), bottom up: the same order as the root meson.build.
LIBS = [
    ("dataplane/base/libbase.a", 0),
    ("dataplane/sip/libsip.a", 1), ("dataplane/xccos/libxccos.a", 1),
    ("dataplane/http1/libhttp1.a", 1), ("dataplane/tcp/libtcp.a", 1),
    ("dataplane/tls/libtls.a", 1), ("dataplane/peer/libpeerframe.a", 1),
    ("storage/libstorage.a", 2),
    ("dataplane/engine/libengine.a", 3),
    ("dataplane/session/libsession.a", 4),
    ("dataplane/chat/libchat.a", 5),
    ("dataplane/web/libweb.a", 6),
    ("control/libcontrol.a", 7),
    ("router/librouter.a", 8),
]


def nm(path, *flags):
    out = subprocess.run(["nm", "-g", *flags, path], check=True, capture_output=True,
                         text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.endswith(":"):
            syms.add(parts[-1])
    return syms


def main():
    build = sys.argv[1]
    defined = {}
    needed = {}
    for lib, _rank in LIBS:
        path = os.path.join(build, lib)
        if not os.path.exists(path):
            print(f"symbols: {path} missing (build first)")
            return 1
        defined[lib] = nm(path, "--defined-only")
        needed[lib] = nm(path, "--undefined-only") - defined[lib]
    owner = {}
    for lib, rank in LIBS:
        for s in defined[lib]:
            owner.setdefault(s, (lib, rank))
    bad = 0
    for lib, rank in LIBS:
        for s in sorted(needed[lib]):
            if s not in owner:
                continue
            olib, orank = owner[s]
            if orank > rank or (orank == rank and olib != lib):
                print(f"{lib} (layer {rank}) needs {s}, defined in {olib} (layer {orank})")
                bad += 1
    print(f"symbols: {len(LIBS)} libraries, {bad} upward or sibling references")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
