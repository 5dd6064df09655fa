#!/usr/bin/env python3
"""Adds a user with the real htdigest(1) from apache2-utils, which reads the
password from a terminal: run it on a pty and answer both prompts.
usage: htdigest_add.py FILE REALM USER PASSWORD"""
import os
import pty
import sys
import time

path, realm, user, pw = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("htdigest", ["htdigest", path, realm, user])
deadline = time.time() + 10
for _ in range(2):
    buf = b""
    while b"password" not in buf.lower():
        if time.time() > deadline:
            sys.exit("htdigest did not prompt")
        buf += os.read(fd, 256)
    os.write(fd, pw.encode() + b"\n")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
