#!/usr/bin/env python3
"""Plays the service manager's notification socket for tests.

notify_listen.py SOCKET OUTFILE SECONDS: binds a unix datagram socket at
SOCKET and appends every message received to OUTFILE, one message per
line (newlines inside a message become spaces), until SECONDS pass.
"""
import os
import socket
import sys
import time


def main():
    path, out, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    end = time.monotonic() + limit
    with open(out, "a", encoding="utf-8") as f:
        # Ready: the test waits for this file before starting the daemon.
        open(out + ".ready", "w").close()
        while time.monotonic() < end:
            try:
                msg = s.recv(4096)
            except socket.timeout:
                continue
            f.write(msg.decode("utf-8", "replace").replace("\n", " ") + "\n")
            f.flush()
    s.close()
    os.unlink(path)


if __name__ == "__main__":
    main()
