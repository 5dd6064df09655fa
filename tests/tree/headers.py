#!/usr/bin/env python3
"""Lists the project's headers, one per line, for the header check."""
import os
import sys

top = sys.argv[1]
for d in ("dataplane", "storage", "control", "router", "perf"):
    for root, _dirs, files in os.walk(os.path.join(top, d)):
        for name in sorted(files):
            if name.endswith(".h"):
                print(os.path.relpath(os.path.join(root, name), top))
