#!/usr/bin/env python3
"""Both ends of the control socket, for ctltable.sh.

Usage: ctl_peer.py send SOCKET [ARG...]
       ctl_peer.py serve SOCKET STATUS BODY_FILE

send: connects to portholed's control socket, sends one CTL frame with the
ARGs (no portholectl in between, so the daemon's own checks answer) and
prints "status=N" and then the reply body.

serve: plays the daemon for portholectl: listens on SOCKET, accepts one
connection, reads one CTL frame, prints its arguments one a line, answers
with a CTL_REPLY of STATUS and the bytes of BODY_FILE, and exits.
"""

import os
import socket
import struct
import sys

from peer_client import frame, recv_frame, wire_str

CTL, CTL_REPLY = 0x10, 0x90


def send(path, args):
    payload = b"\x00" + struct.pack(">H", len(args))
    for a in args:
        payload += wire_str(a)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    s.sendall(frame(CTL, payload))
    ftype, p = recv_frame(s)
    if ftype != CTL_REPLY:
        raise ValueError("type 0x%02x" % ftype)
    status, n = struct.unpack(">HI", p[:6])
    print("status=%d" % status)
    sys.stdout.write(p[6:6 + n].decode())


def serve(path, status, body_file):
    with open(body_file, "rb") as f:
        body = f.read()
    if os.path.exists(path):
        os.unlink(path)
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.settimeout(30)
    # Listening before the name appears: whoever sees it can connect.
    ls.bind(path + ".new")
    ls.listen(1)
    os.rename(path + ".new", path)
    s, _ = ls.accept()
    s.settimeout(30)
    ftype, p = recv_frame(s)
    if ftype != CTL:
        raise ValueError("type 0x%02x" % ftype)
    (argc,) = struct.unpack(">H", p[1:3])
    off = 3
    for _ in range(argc):
        (n,) = struct.unpack(">H", p[off:off + 2])
        print(p[off + 2:off + 2 + n].decode())
        off += 2 + n
    sys.stdout.flush()
    s.sendall(frame(CTL_REPLY, struct.pack(">HI", status, len(body)) + body))
    s.close()
    ls.close()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
