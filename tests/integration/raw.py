#!/usr/bin/env python3
"""Raw wire client for the malformed-input tests.

Usage: raw.py SOCKET HOLD_SECONDS HEX [HEX...]

Connects to the unix SOCKET, sends each HEX string's bytes (one write per
argument, a short pause between them), keeps its own write side open and
reads until the server closes the connection or HOLD_SECONDS pass. Prints one
line per complete frame received:

    frame type=0x81 len=18
    error code=1 msg=...            (for ERROR frames, after the frame line)
    pong nonce=...                  (for PONG frames)

then "trailing N" if bytes that do not make a whole frame were left, and
finally "closed" if the server closed the connection or "open" if it was
still open when the time ran out or when a PONG arrived (a PONG ends the
exchange at once: the connection is evidently still being served, so a test
can end with a PING instead of waiting out HOLD_SECONDS). Exit status 0
unless the connection failed.
"""

import socket
import struct
import sys
import time


def parse(buf):
    """Splits buf into frames and describes each one."""
    lines = []
    off = 0
    while len(buf) - off >= 8:
        magic, version, ftype, length = struct.unpack(">2sBBI", buf[off:off + 8])
        if magic != b"PH" or len(buf) - off - 8 < length:
            break
        payload = buf[off + 8:off + 8 + length]
        lines.append(f"frame type=0x{ftype:02x} len={length} version={version}")
        if ftype == 0x87 and length >= 4:
            code, mlen = struct.unpack(">HH", payload[:4])
            msg = payload[4:4 + mlen].decode("utf-8", "replace")
            lines.append(f"error code={code} msg={msg}")
        elif ftype == 0x89 and length == 8:
            (nonce,) = struct.unpack(">Q", payload)
            lines.append(f"pong nonce={nonce}")
        elif ftype == 0x81 and length >= 10:
            ver, feat, maxp = struct.unpack(">HII", payload[:10])
            lines.append(f"hello_ack version={ver} features={feat} max_payload={maxp}")
        off += 8 + length
    if off < len(buf):
        lines.append(f"trailing {len(buf) - off}")
    return lines


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, hold = sys.argv[1], float(sys.argv[2])
    chunks = [bytes.fromhex(h) for h in sys.argv[3:]]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    received = b""
    closed = False
    try:
        for i, c in enumerate(chunks):
            if i:
                time.sleep(0.2)
            s.sendall(c)
    except (BrokenPipeError, ConnectionResetError):
        # The server may close before taking everything; that is a result too.
        pass
    deadline = time.monotonic() + hold
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not data:
            closed = True
            break
        received += data
        if any(l.startswith("pong ") for l in parse(received)):
            break
    s.close()
    for line in parse(received):
        print(line)
    print("closed" if closed else "open")
    return 0


if __name__ == "__main__":
    sys.exit(main())
