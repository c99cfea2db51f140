#!/usr/bin/env python3
"""Many-connection GET client for the transfer queue tests.

Usage: queue_client.py SOCKET [--timeout S] SPEC [SPEC...]

Each SPEC is one connection, comma-separated key=value pairs:

    peer=N      declared_peer in HELLO (default 0: none)
    path=P      the GET path (required)
    read=MODE   normal (default); stop: read nothing after META (a stalled
                client); rate:BYTES_PER_SECOND: read no faster than that, in
                recv()s of at most that many bytes (SIGUSR1 lifts the limit
                of every rate-limited reader)
    rcvbuf=N    SO_RCVBUF of the connection, set before it connects
    drop=S      close the connection S seconds after all are opened
    hold=S      read=stop only: drain no earlier than S seconds after all
                are opened (default: as soon as the others have ended)
    name=X      label in the output (default the path)

Connections are opened in the given order. After each GET the client waits
for the first reply frame (QUEUED, META or ERROR) before opening the next, so
the server sees the requests in exactly that order. Then all connections are
read at once until each has ended. A stopped reader is drained at the end to
see whether the server closed it.

Prints one JSON object per connection, in the order the transfers ended:
name, peer, queued (the QUEUED positions received), result ("END",
"ERROR <code>", "closed", "dropped", "timeout"), bytes (DATA bytes), ok
(END's byte count and digest match the data), t (seconds since the start
when it ended), closed_by_server (stopped readers only). Exit status 0 unless
a connection could not be made. DATA_ZSTD is never asked for.
"""

import hashlib
import json
import selectors
import signal
import socket
import struct
import sys
import time

HELLO, GET, QUEUED, META, DATA, END, ERROR = 0x01, 0x02, 0x82, 0x83, 0x84, 0x86, 0x87


def frame(ftype, payload):
    """A whole frame: header and payload."""
    return struct.pack(">2sBBI", b"PH", 1, ftype, len(payload)) + payload


def wire_str(s):
    """A u16-length-prefixed string."""
    b = s.encode()
    return struct.pack(">H", len(b)) + b


class Conn:
    """One connection and what it has received so far."""

    def __init__(self, path, spec, t0):
        self.spec = spec
        self.name = spec.get("name", spec["path"])
        self.peer = int(spec.get("peer", "0"))
        self.mode = spec.get("read", "normal")
        self.rate = 0
        if self.mode.startswith("rate:"):
            self.rate = int(self.mode[5:])
            self.mode = "rate"
        self.drop = float(spec["drop"]) if "drop" in spec else None
        self.hold = float(spec.get("hold", "0"))
        self.t0 = t0
        self.buf = b""
        self.queued = []
        self.result = None
        self.bytes = 0
        self.rx = 0
        self.ok = False
        self.t = None
        self.meta = False
        self.closed_by_server = None
        self.read_start = None
        self.sha = hashlib.sha256()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if "rcvbuf" in spec:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                 int(spec["rcvbuf"]))
        self.sock.connect(path)
        hello = struct.pack(">HHII", 1, 1, 7, self.peer) + wire_str("queue-test")
        get = struct.pack(">QI", 0, 0) + wire_str(spec["path"])
        self.sock.sendall(frame(HELLO, hello) + frame(GET, get))

    def finish(self, result):
        """Records how the connection ended."""
        if self.result is None:
            self.result = result
            self.t = round(time.monotonic() - self.t0, 3)

    def parse(self):
        """Consumes the complete frames in the buffer."""
        frames = 0
        while len(self.buf) >= 8:
            _, _, ftype, length = struct.unpack(">2sBBI", self.buf[:8])
            if len(self.buf) < 8 + length:
                break
            p = self.buf[8:8 + length]
            self.buf = self.buf[8 + length:]
            frames += 1
            if ftype == QUEUED:
                self.queued.append(struct.unpack(">I", p)[0])
            elif ftype == META:
                self.meta = True
                self.digest = p[22:54]
            elif ftype == DATA:
                self.bytes += len(p)
                self.sha.update(p)
            elif ftype == END:
                n = struct.unpack(">Q", p[:8])[0]
                self.ok = n == self.bytes and p[9:41] == self.sha.digest()
                self.finish("END")
            elif ftype == ERROR:
                self.finish("ERROR %d" % struct.unpack(">H", p[:2])[0])
        return frames

    def want_read(self):
        """False while a rate-limited reader is ahead of its rate."""
        if self.mode == "stop" and self.meta:
            return False
        if self.mode == "rate" and self.read_start is not None:
            # Bytes received, whole frames or not: frames are 1 MiB.
            return self.rx < self.rate * (time.monotonic() - self.read_start)
        return True

    def read(self):
        """One recv; False when the connection ended."""
        if self.mode == "rate" and self.read_start is None:
            self.read_start = time.monotonic()
        try:
            data = self.sock.recv(1 << 20 if self.mode != "rate" else
                                  min(1 << 16, self.rate))
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.finish("closed")
            return False
        self.rx += len(data)
        self.buf += data
        self.parse()
        return self.result is None

    def report(self):
        """The JSON line for this connection."""
        d = {"name": self.name, "peer": self.peer, "queued": self.queued,
             "result": self.result, "bytes": self.bytes, "ok": self.ok,
             "t": self.t}
        if self.closed_by_server is not None:
            d["closed_by_server"] = self.closed_by_server
        return json.dumps(d)


def unlimit(conns):
    """SIGUSR1: rate-limited readers read as fast as they can from now on."""
    for c in conns:
        if c.mode == "rate":
            c.mode = "normal"


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = args.pop(0)
    timeout = 120.0
    if args[0] == "--timeout":
        timeout = float(args[1])
        args = args[2:]
    t0 = time.monotonic()
    conns = []
    signal.signal(signal.SIGUSR1, lambda *_: unlimit(conns))
    for a in args:
        spec = dict(kv.split("=", 1) for kv in a.split(","))
        c = Conn(path, spec, t0)
        conns.append(c)
        # Wait for the first frame, so the next request arrives after it.
        c.sock.settimeout(30)
        while c.result is None and not c.queued and not c.meta:
            if not c.read():
                break
        c.sock.setblocking(False)
    opened = time.monotonic()
    sel = selectors.DefaultSelector()
    live = [c for c in conns if c.result is None]
    for c in live:
        sel.register(c.sock, selectors.EVENT_READ, c)
    ended = [c for c in conns if c.result is not None]
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        pending = [c for c in live if c.result is None and
                   not (c.mode == "stop" and c.meta and
                        now - opened >= c.hold)]
        if not pending:
            break
        for c in pending:
            if c.drop is not None and now - opened >= c.drop:
                sel.unregister(c.sock)
                c.sock.close()
                c.finish("dropped")
                ended.append(c)
        did = False
        for key, _ in sel.select(timeout=0.02):
            c = key.data
            if c.result is not None or not c.want_read():
                continue
            did = True
            if not c.read():
                sel.unregister(c.sock)
                ended.append(c)
        if not did:
            # Only rate-limited readers ahead of their rate: let time pass.
            time.sleep(0.002)
    # Stopped readers: drain and see whether the server hung up.
    for c in live:
        if c.result is None and c.mode == "stop" and c.meta:
            c.sock.setblocking(True)
            c.sock.settimeout(max(1.0, deadline - time.monotonic()))
            c.closed_by_server = False
            try:
                while c.result is None:
                    if not c.read():
                        c.closed_by_server = c.result == "closed"
                        break
            except socket.timeout:
                pass
            if c.result is not None and c.result.startswith("ERROR"):
                c.closed_by_server = True
            c.finish("stopped")
            ended.append(c)
    for c in conns:
        if c.result is None:
            c.finish("timeout")
            ended.append(c)
    for c in ended:
        print(c.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
