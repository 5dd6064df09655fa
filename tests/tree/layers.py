#!/usr/bin/env python3
"""The layer check: no #include points up a layer, and no protocol library
includes a sibling. Layers, bottom up (README, Layout; the root meson.build
lists the same folders in the same order):

  0 dataplane/base                     log, hashing, object caches
  1 dataplane/{sip,xccos,http1,tcp,tls,peer}  protocol libraries, no engine types
  2 storage
  3 dataplane/engine                   per-lcore loop, connections, I/O
  4 dataplane/session                  SIP over a connection
  5 dataplane/chat                     Group Chat services, fan-out
  6 dataplane/web                      HTTPS file service
  7 control                            control socket, parleyctl
  8 router                             parleyd boot, config
  9 perf                               load generator (may use any layer)

A file may include headers of its own module and of lower layers only.
Modules on the same layer (the protocol libraries) may not include each
other. tests/ may include anything. Prints every offence; exit 1 if any.
"""
import os
import re
import sys

LAYERS = [
    ("dataplane/base/", 0),
    ("dataplane/sip/", 1), ("dataplane/xccos/", 1), ("dataplane/http1/", 1),
    ("dataplane/tcp/", 1), ("dataplane/tls/", 1), ("dataplane/peer/", 1),
    ("storage/", 2),
    ("dataplane/engine/", 3),
    ("dataplane/session/", 4),
    ("dataplane/chat/", 5),
    ("dataplane/web/", 6),
    ("control/", 7),
    ("router/", 8),
    ("perf/", 9),
]
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path):
    """(module prefix, rank) of a path, or None outside the layered tree."""
    for prefix, rank in LAYERS:
        if path.startswith(prefix):
            return prefix, rank
    return None


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    top = os.path.abspath(top)
    bad = []
    nfiles = 0
    for prefix, _ in LAYERS:
        for root, _dirs, files in os.walk(os.path.join(top, prefix)):
            for name in sorted(files):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.relpath(os.path.join(root, name), top)
                src = module_of(path)
                nfiles += 1
                with open(os.path.join(top, path), encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for m in INC.finditer(text):
                    inc = m.group(1)
                    line = text.count("\n", 0, m.start()) + 1
                    dst = module_of(inc)
                    if dst is None:
                        if "/" in inc:
                            bad.append(f"{path}:{line}: includes \"{inc}\", outside the layered tree")
                        continue
                    if dst[0] == src[0]:
                        continue
                    if dst[1] > src[1]:
                        bad.append(f"{path}:{line}: includes \"{inc}\": layer {dst[1]} ({dst[0]}) "
                                   f"is above {src[0]} (layer {src[1]}); call up through a "
                                   f"callback the upper layer registers")
                    elif dst[1] == src[1]:
                        bad.append(f"{path}:{line}: includes \"{inc}\": {dst[0]} and {src[0]} "
                                   f"are siblings on layer {src[1]}")
    for b in bad:
        print(b)
    print(f"layers: {nfiles} files, {len(bad)} upward or sibling includes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
