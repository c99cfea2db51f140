#!/usr/bin/env python3
"""Clients for the load tests: late daemons, tricklers, crowds of idlers.

Usage:
  late_client.py gate PIDFILE
      Copies stdin to stdout through a pipe of one page: the daemon's
      stderr, so that stopping this process (its pid is in PIDFILE) blocks
      the daemon in its next log line.
  late_client.py late SOCKET GATE_PID PATH SECONDS
      Three connections. "acked" says HELLO and gets HELLO_ACK; "queued"
      connects and waits half a second (so the daemon has accepted it);
      "trickle" says HELLO, gets HELLO_ACK and starts sending a GET one
      byte every 0.25 s. Then the gate is stopped (SIGSTOP) and PINGs on
      new connections fill the daemon's log until it blocks. While it is
      blocked "acked" sends a GET of PATH and "queued" sends HELLO and the
      GET. After SECONDS the gate is continued (SIGCONT) and every reply
      is read.
  late_client.py sleepy SOCKET PATH SECONDS
      HELLO, then nothing for SECONDS (not even reading the HELLO_ACK, as
      a client that gets no CPU), then the HELLO_ACK and a GET of PATH.
  late_client.py trickle SOCKET PATH
      HELLO, PING and PONG, then a GET of PATH one byte every 0.25 s.
  late_client.py pings SOCKET COUNT INTERVAL
      HELLO, then COUNT PINGs, INTERVAL seconds apart.
  late_client.py hold SOCKET COUNT SECONDS [hello]
      Opens COUNT connections (each says HELLO and PING at once, or with
      "hello" only HELLO, so that none is idle), prints "opened N" once
      all were tried, and keeps them SECONDS seconds.

Each connection ends as one JSON line on stdout: name, result ("END",
"PONG" for pings, "ERROR <code>", "closed", "open"), bytes (DATA bytes),
sha256 (of the DATA bytes), t (seconds from its first request byte to the
end). hold prints one line: opened, ponged, busy (ERROR 9 received),
closed (by the server) and open at the end. Exit status 0 unless a
connection could not be made.
"""

import fcntl
import hashlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

HELLO, GET, PING = 0x01, 0x02, 0x05
HELLO_ACK, META, DATA, END, ERROR, PONG = 0x81, 0x83, 0x84, 0x86, 0x87, 0x89


def frame(ftype, payload):
    """A whole frame: header and payload."""
    return struct.pack(">2sBBI", b"PH", 1, ftype, len(payload)) + payload


def wire_str(s):
    """A u16-length-prefixed string."""
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def hello():
    """HELLO for version 1 with no optional features and no declared peer."""
    return frame(HELLO, struct.pack(">HHII", 1, 1, 0, 0) + wire_str("late"))


def get(path):
    """GET of path from offset 0, no flags."""
    return frame(GET, struct.pack(">QI", 0, 0) + wire_str(path))


def ping(nonce):
    return frame(PING, struct.pack(">Q", nonce))


class Conn:
    """One connection, the frames it received and how it ended."""

    def __init__(self, path, name, timeout=10):
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.result = None
        self.bytes = 0
        self.sha = hashlib.sha256()
        self.t0 = None
        self.t = None

    def send(self, data):
        """Sends data; False when the server has closed the connection."""
        if self.t0 is None:
            self.t0 = time.monotonic()
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def next_frame(self, timeout):
        """(type, payload) of the next frame, or None when it closed."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 8:
                (length,) = struct.unpack(">I", self.buf[4:8])
                if len(self.buf) >= 8 + length:
                    ftype = self.buf[3]
                    payload = self.buf[8:8 + length]
                    self.buf = self.buf[8 + length:]
                    return ftype, payload
            left = deadline - time.monotonic()
            if left <= 0:
                return "open", b""
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                return "open", b""
            except OSError:
                data = b""
            if not data:
                return None
            self.buf += data

    def end(self, result):
        self.result = result
        self.t = time.monotonic() - (self.t0 or time.monotonic())

    def handshake(self):
        """HELLO and its HELLO_ACK; False if something else came."""
        self.send(hello())
        f = self.next_frame(10)
        return f is not None and f[0] == HELLO_ACK

    def await_reply(self, timeout):
        """Reads one request's reply frames until its last one."""
        while True:
            f = self.next_frame(timeout)
            if f is None:
                return self.end("closed")
            ftype, payload = f
            if ftype == "open":
                return self.end("open")
            if ftype == ERROR:
                (code,) = struct.unpack(">H", payload[:2])
                return self.end("ERROR %d" % code)
            if ftype == PONG:
                return self.end("PONG")
            if ftype == DATA:
                self.bytes += len(payload)
                self.sha.update(payload)
            if ftype == END:
                return self.end("END")

    def report(self):
        return {"name": self.name, "result": self.result,
                "bytes": self.bytes, "sha256": self.sha.hexdigest(),
                "t": round(self.t or 0, 2)}


def cmd_gate(pidfile):
    with open(pidfile, "w") as f:
        f.write("%d\n" % os.getpid())
    try:
        fcntl.fcntl(0, 1031, 4096)  # F_SETPIPE_SZ
    except OSError:
        pass
    while True:
        data = os.read(0, 4096)
        if not data:
            return
        os.write(1, data)


def block_daemon(sock):
    """PINGs on fresh connections until one gets no PONG: the daemon hangs
    in a log line. Returns the connections, to keep them open."""
    held = []
    for i in range(2000):
        c = Conn(sock, "blocker")
        held.append(c)
        c.send(hello() + ping(i + 1))
        c.await_reply(2)
        if c.result == "open":
            return held
    raise SystemExit("the daemon never blocked on its log")


def cmd_late(sock, gate, path, seconds):
    acked = Conn(sock, "acked")
    if not acked.handshake():
        raise SystemExit("acked: no HELLO_ACK")
    queued = Conn(sock, "queued")
    tr = Conn(sock, "trickle")
    if not tr.handshake():
        raise SystemExit("trickle: no HELLO_ACK")
    time.sleep(0.5)
    req = get(path)
    tr.send(req[:1])
    os.kill(gate, signal.SIGSTOP)
    try:
        held = block_daemon(sock)
        acked.send(req)
        queued.send(hello() + req)
        # The trickle goes on into the socket while the daemon sleeps.
        t_end = time.monotonic() + seconds
        i = 1
        while time.monotonic() < t_end and i < len(req):
            tr.send(req[i:i + 1])
            i += 1
            time.sleep(0.25)
    finally:
        os.kill(gate, signal.SIGCONT)
    for c in (acked, queued):
        c.await_reply(30)
    # The trickler keeps trickling until the server gives up on it.
    sel = selectors.DefaultSelector()
    sel.register(tr.sock, selectors.EVENT_READ)
    while i < len(req) and not sel.select(0.25):
        if not tr.send(req[i:i + 1]):
            break
        i += 1
    sel.close()
    tr.await_reply(10)
    del held
    for c in (acked, queued, tr):
        print(json.dumps(c.report()))


def cmd_sleepy(sock, path, seconds):
    c = Conn(sock, "sleepy")
    c.send(hello())
    time.sleep(seconds)
    f = c.next_frame(10)
    if f is None or f[0] != HELLO_ACK:
        c.end("closed" if f is None else "ERROR" if f[0] == ERROR else
              "open")
    elif c.send(get(path)):
        c.await_reply(30)
    else:
        c.end("closed")
    print(json.dumps(c.report()))


def cmd_trickle(sock, path):
    c = Conn(sock, "trickle")
    if not c.handshake():
        raise SystemExit("no HELLO_ACK")
    c.send(ping(1))
    c.await_reply(10)
    if c.result != "PONG":
        raise SystemExit("no PONG: %s" % c.result)
    c.t0 = None
    req = get(path)
    sel = selectors.DefaultSelector()
    sel.register(c.sock, selectors.EVENT_READ)
    for i in range(len(req)):
        if sel.select(0.25) or not c.send(req[i:i + 1]):
            break
    sel.close()
    c.await_reply(30)
    print(json.dumps(c.report()))


def cmd_pings(sock, count, interval):
    c = Conn(sock, "pings")
    if not c.handshake():
        raise SystemExit("no HELLO_ACK")
    n = 0
    for i in range(count):
        if i:
            time.sleep(interval)
        if not c.send(ping(i + 1)):
            c.end("closed")
            break
        c.await_reply(10)
        if c.result != "PONG":
            break
        n += 1
    rep = c.report()
    rep["pongs"] = n
    print(json.dumps(rep))


def cmd_hold(sock, count, seconds, only_hello):
    conns = []
    for i in range(count):
        try:
            c = Conn(sock, "h%d" % i, timeout=2)
            c.sock.sendall(hello() + (b"" if only_hello else ping(i + 1)))
            c.sock.setblocking(False)
            conns.append(c)
        except OSError:
            # Refused or timed out: the daemon is not taking more.
            pass
    print("opened %d" % len(conns), flush=True)
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    ponged = busy = closed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(max(0, deadline - time.monotonic())):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except OSError:
                data = b""
            if data:
                c.buf += data
                if struct.pack(">BI", PONG, 8) in c.buf:
                    ponged += 1
                    c.buf = b""
                if c.buf[3:4] == bytes([ERROR]) and c.buf[8:10] == b"\x00\x09":
                    busy += 1
                    c.buf = b""
                continue
            sel.unregister(c.sock)
            closed += 1
    sel.close()
    print(json.dumps({"opened": len(conns), "ponged": ponged, "busy": busy,
                      "closed": closed, "open": len(conns) - closed}),
          flush=True)


def main():
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "gate":
        cmd_gate(a[1])
    elif len(a) == 5 and a[0] == "late":
        cmd_late(a[1], int(a[2]), a[3], float(a[4]))
    elif len(a) == 4 and a[0] == "sleepy":
        cmd_sleepy(a[1], a[2], float(a[3]))
    elif len(a) == 3 and a[0] == "trickle":
        cmd_trickle(a[1], a[2])
    elif len(a) == 4 and a[0] == "pings":
        cmd_pings(a[1], int(a[2]), float(a[3]))
    elif len(a) in (4, 5) and a[0] == "hold" and a[4:] in ([], ["hello"]):
        cmd_hold(a[1], int(a[2]), float(a[3]), a[4:] == ["hello"])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
