#!/usr/bin/env python3
"""Raw wire client for the malformed-input tests, and a scripted server.

Usage: raw.py SOCKET HOLD_SECONDS HEX [HEX...]
       raw.py --serve [--busy N] SOCKET HOLD_SECONDS HEX [HEX...]

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

With --serve it plays the server instead, for tests of the client: it
listens on the unix SOCKET (removing a stale one first), accepts one
connection and, for each HEX argument in turn, reads one complete request
frame and answers with that HEX's bytes. It prints one line per request:

    request type=0x02 len=24 payload=<hex>

then, once the replies are used up, waits for the client to close (at most
HOLD_SECONDS) and prints "closed", "open", or "eof before request N" when
the client went away early. With --busy N it first turns N connections
away, the way a host at its limit does: it reads one request frame (HELLO),
answers ERROR BUSY, closes, and prints "turned away type=0x01". Exit status
0 unless it could not listen or no client came within HOLD_SECONDS.
"""

import os
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
        elif (ftype, length) in ((0x83, 54), (0x86, 41)):
            # The flags byte: bit 0 digest, bit 1 stale.
            name, flags = ("meta", payload[21]) if ftype == 0x83 else ("end", payload[8])
            lines.append(f"{name} flags={flags}")
        elif ftype == 0x81 and length >= 10:
            ver, feat, maxp = struct.unpack(">HII", payload[:10])
            lines.append(f"hello_ack version={ver} features={feat} max_payload={maxp}")
        off += 8 + length
    if off < len(buf):
        lines.append(f"trailing {len(buf) - off}")
    return lines


def recv_exact(conn, n):
    """Reads exactly n bytes, or returns None at end of stream."""
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_frame(conn):
    """One whole frame's header and payload, or (None, None) at its end."""
    hdr = recv_exact(conn, 8)
    if hdr is None:
        return None, None
    (length,) = struct.unpack(">I", hdr[4:8])
    return hdr, recv_exact(conn, length)


def turn_away(conn):
    """Answers the first request with ERROR BUSY and closes."""
    msg = b"the server is busy: too many connections"
    hdr, _ = read_frame(conn)
    if hdr is not None:
        conn.sendall(struct.pack(">2sBBIHH", b"PH", 1, 0x87, 4 + len(msg), 9,
                                 len(msg)) + msg)
        print(f"turned away type=0x{hdr[3]:02x}")
    conn.close()


def serve(path, hold, replies, busy=0):
    """The scripted server of --serve: one connection, one reply per request."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(1)
    ls.settimeout(hold)
    try:
        for _ in range(busy):
            conn, _ = ls.accept()
            conn.settimeout(hold)
            turn_away(conn)
        conn, _ = ls.accept()
    except socket.timeout:
        print("no client", file=sys.stderr)
        return 1
    conn.settimeout(hold)
    ended = None
    try:
        for i, reply in enumerate(replies):
            hdr, payload = read_frame(conn)
            if payload is None:
                ended = f"eof before request {i + 1}"
                break
            print(f"request type=0x{hdr[3]:02x} len={len(payload)} "
                  f"payload={payload.hex()}")
            conn.sendall(reply)
        if ended is None:
            ended = "closed" if not conn.recv(65536) else "open"
    except socket.timeout:
        ended = "open"
    except (BrokenPipeError, ConnectionResetError):
        ended = "closed"
    conn.close()
    ls.close()
    print(ended)
    return 0


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "--serve":
        args, busy = sys.argv[2:], 0
        if args[0] == "--busy":
            busy, args = int(args[1]), args[2:]
        return serve(args[0], float(args[1]),
                     [bytes.fromhex(h) for h in args[2:]], busy)
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
