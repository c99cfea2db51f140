#!/usr/bin/env python3
"""A fake QEMU and guest for portholed --vhost-user, without a VM.

It speaks the vhost-user protocol to the daemon's socket as QEMU does
(shared memory from a memfd, eventfds for the rings), then plays the guest's
virtio-vsock driver on those rings, by hand, so it can also misbehave the
ways a real driver never would.

  vhost_frontend.py SOCK CID SCENARIO [ARGS]

Scenarios (exit 0 when the daemon behaved, 1 with a reason on stderr):
  ping            connect to port 7390, HELLO + PING, expect PONG, close
  get PATH SHA    GET PATH through a 8 KiB receive window (credit updates
                  by hand), check the bytes against SHA (hex SHA-256)
  wrong-port      REQUEST to port 22 gets RST
  lying-len       RW whose header claims more bytes than it carries: RST
  loop            a transmit chain that loops: the device goes silent
  bad-index       a descriptor index out of range: the device goes silent
  hang-up         connect and send HELLO, then vanish mid-connection
  oversized       a vhost-user message over the size limit: disconnected
  busy            while one front-end is connected, a second is refused
  late GATE UNIX PATH SHA SECONDS
                  HELLO, then the daemon hangs in a log line (GATE, the pid
                  of late_client.py gate on its stderr, is stopped; PINGs on
                  the unix socket UNIX fill the log) while a GET of PATH
                  waits in the transmit ring for SECONDS, past the request
                  deadline: it must still be served, with SHA
Nothing here opens an AF_VSOCK socket.
"""

import hashlib
import mmap
import os
import select
import signal
import socket
import struct
import sys
import time

# vhost-user requests.
GET_FEATURES, SET_FEATURES, SET_OWNER = 1, 2, 3
SET_MEM_TABLE = 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 8, 9, 10
SET_VRING_KICK, SET_VRING_CALL = 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES = 15, 16
GET_QUEUE_NUM, SET_VRING_ENABLE, GET_CONFIG = 17, 18, 24
F_VERSION_1, F_PROTOCOL_FEATURES = 1 << 32, 1 << 30
PF_REPLY_ACK, PF_CONFIG = 1 << 3, 1 << 9

# virtio-vsock.
HDR = struct.Struct("<QQIIIHHIII")
OP_REQUEST, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW = 1, 2, 3, 4, 5
OP_CREDIT_UPDATE = 6
PORT = 7390

MEM = 4 << 20
GPA = 0x100000
UVA = 0x7F0000000000
NUM = 64
RXBUF = 0x40000          # receive buffers, 0x2000 apart
TXBUF = 0x100000         # transmit buffers, 0x20000 apart
BUF = 4096


class Fail(Exception):
    pass


class Frontend:
    """One vhost-user connection with guest memory and two rings."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(5)
        self.s.connect(path)
        self.fd = os.memfd_create("guest", 0)
        os.ftruncate(self.fd, MEM)
        self.mem = mmap.mmap(self.fd, MEM)
        self.kick = [os.eventfd(0, os.EFD_NONBLOCK) for _ in range(2)]
        self.call = [os.eventfd(0, os.EFD_NONBLOCK) for _ in range(2)]
        self.avail = [0, 0]
        self.used_seen = [0, 0]
        self.rx_posted = 0
        self.tx_slot = 0
        self.cid = None

    def send(self, req, payload=b"", fds=()):
        msg = struct.pack("<III", req, 1, len(payload)) + payload
        if fds:
            socket.send_fds(self.s, [msg], list(fds))
        else:
            self.s.sendall(msg)

    def recv_exact(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                raise Fail("the daemon closed the vhost-user connection")
            b += chunk
        return b

    def reply(self, req):
        r, flags, size = struct.unpack("<III", self.recv_exact(12))
        if r != req or flags != 0x5:
            raise Fail(f"reply {r} flags {flags:#x} to request {req}")
        return self.recv_exact(size)

    def handshake(self):
        self.send(GET_FEATURES)
        feat = struct.unpack("<Q", self.reply(GET_FEATURES))[0]
        if not feat & F_VERSION_1 or not feat & F_PROTOCOL_FEATURES:
            raise Fail(f"features {feat:#x} lack VERSION_1 or PROTOCOL")
        self.send(GET_PROTOCOL_FEATURES)
        pf = struct.unpack("<Q", self.reply(GET_PROTOCOL_FEATURES))[0]
        if not pf & PF_CONFIG:
            raise Fail("no CONFIG protocol feature: QEMU could not ask "
                       "for the CID")
        self.send(SET_PROTOCOL_FEATURES,
                  struct.pack("<Q", pf & (PF_CONFIG | PF_REPLY_ACK)))
        self.send(GET_QUEUE_NUM)
        self.reply(GET_QUEUE_NUM)
        self.send(SET_OWNER)
        self.send(GET_CONFIG, struct.pack("<III", 0, 8, 0) + bytes(8))
        cfg = self.reply(GET_CONFIG)
        self.cid = struct.unpack_from("<Q", cfg, 12)[0]

    def setup(self):
        self.send(SET_FEATURES, struct.pack("<Q", F_VERSION_1 |
                                            F_PROTOCOL_FEATURES))
        self.send(SET_MEM_TABLE, struct.pack("<IIQQQQ", 1, 0, GPA, MEM, UVA,
                                             0), [self.fd])
        for q in (0, 1):
            base = q * 0x10000
            self.send(SET_VRING_NUM, struct.pack("<II", q, NUM))
            self.send(SET_VRING_ADDR, struct.pack(
                "<IIQQQQ", q, 0, UVA + base, UVA + base + 0x2000,
                UVA + base + 0x1000, 0))
            self.send(SET_VRING_BASE, struct.pack("<II", q, 0))
            self.send(SET_VRING_CALL, struct.pack("<Q", q), [self.call[q]])
            self.send(SET_VRING_KICK, struct.pack("<Q", q), [self.kick[q]])
            self.send(SET_VRING_ENABLE, struct.pack("<II", q, 1))

    # ---- the guest driver ------------------------------------------------

    def desc(self, q, i, addr, length, flags, nxt=0):
        struct.pack_into("<QIHH", self.mem, q * 0x10000 + 16 * i, addr,
                         length, flags, nxt)

    def offer(self, q, head):
        base = q * 0x10000 + 0x1000
        struct.pack_into("<H", self.mem, base + 4 + 2 * (self.avail[q] % NUM),
                         head)
        self.avail[q] = (self.avail[q] + 1) & 0xFFFF
        struct.pack_into("<H", self.mem, base + 2, self.avail[q])
        os.eventfd_write(self.kick[q], 1)

    def used(self, q):
        base = q * 0x10000 + 0x2000
        idx = struct.unpack_from("<H", self.mem, base + 2)[0]
        if idx == self.used_seen[q]:
            return None
        e = base + 4 + 8 * (self.used_seen[q] % NUM)
        self.used_seen[q] = (self.used_seen[q] + 1) & 0xFFFF
        return struct.unpack_from("<II", self.mem, e)

    def tx_used(self):
        return struct.unpack_from("<H", self.mem, 0x10000 + 0x2000 + 2)[0]

    def post_rx(self, n):
        for _ in range(n):
            h = self.rx_posted % NUM
            self.rx_posted += 1
            self.desc(0, h, GPA + RXBUF + h * 0x2000, HDR.size + BUF, 2)
            self.offer(0, h)

    def hdr(self, op, sport, length=0, dport=PORT, buf_alloc=1 << 18,
            fwd_cnt=0, flags=0):
        return HDR.pack(self.cid, 2, sport, dport, length, 1, op, flags,
                        buf_alloc, fwd_cnt)

    def tx(self, header, payload=b"", carried=None):
        """One packet in one readable descriptor; carried bytes of payload
        really follow the header (to lie about the length)."""
        body = payload if carried is None else payload[:carried]
        # Reuse a transmit buffer only once the device has returned it.
        deadline = time.monotonic() + 5
        while (self.tx_slot - self.tx_used()) & 0xFFFF >= 16:
            if time.monotonic() > deadline:
                raise Fail("the device stopped taking packets")
            time.sleep(0.001)
        slot = self.tx_slot % 16
        self.tx_slot += 1
        off = TXBUF + slot * 0x20000
        self.mem[off:off + len(header) + len(body)] = header + body
        self.desc(1, slot, GPA + off, len(header) + len(body), 0)
        self.offer(1, slot)

    def rx(self, timeout=5.0):
        """The next packet from the device: (fields, payload) or None."""
        deadline = time.monotonic() + timeout
        while True:
            u = self.used(0)
            if u is not None:
                head, length = u
                off = RXBUF + head * 0x2000
                f = HDR.unpack_from(self.mem, off)
                if f[4] != length - HDR.size:
                    raise Fail(f"used length {length} but header len {f[4]}")
                payload = bytes(self.mem[off + HDR.size:off + length])
                self.post_rx(1)
                return f, payload
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([self.call[0]], [], [], min(left, 0.2))
            try:
                os.eventfd_read(self.call[0])
            except BlockingIOError:
                pass

    def expect(self, op, what):
        p = self.rx()
        if p is None:
            raise Fail(f"no {what} from the device")
        if p[0][6] != op:
            raise Fail(f"expected {what} (op {op}), got op {p[0][6]}")
        return p

    def connect(self, sport, buf_alloc=1 << 18):
        self.tx(self.hdr(OP_REQUEST, sport, buf_alloc=buf_alloc))
        f, _ = self.expect(OP_RESPONSE, "RESPONSE")
        if (f[0], f[1], f[2], f[3]) != (2, self.cid, PORT, sport):
            raise Fail(f"RESPONSE addressed {f[:4]}")


def frame(ftype, payload):
    return b"PH\x01" + bytes([ftype]) + struct.pack(">I", len(payload)) + \
        payload


def hello():
    agent = b"vhost-frontend"
    return frame(0x01, struct.pack(">HHII", 1, 1, 0, 0) +
                 struct.pack(">H", len(agent)) + agent)


class Stream:
    """A Porthole conversation over one guest connection."""

    def __init__(self, fe, sport, window):
        self.fe, self.sport, self.window = fe, sport, window
        self.buf = b""
        self.fwd = 0

    def write(self, data):
        self.fe.tx(self.fe.hdr(OP_RW, self.sport, len(data),
                               buf_alloc=self.window, fwd_cnt=self.fwd), data)

    def frame(self):
        while True:
            if len(self.buf) >= 8:
                n = struct.unpack(">I", self.buf[4:8])[0]
                if len(self.buf) >= 8 + n:
                    t, p = self.buf[3], self.buf[8:8 + n]
                    self.buf = self.buf[8 + n:]
                    return t, p
            p = self.fe.rx()
            if p is None:
                raise Fail("the daemon stopped sending")
            f, data = p
            if f[6] != OP_RW:
                raise Fail(f"op {f[6]} in the middle of a reply")
            if len(data) > self.window:
                raise Fail("the device sent beyond the credit it had")
            self.buf += data
            # We "read" it at once: tell the device its credit is back.
            self.fwd += len(data)
            self.fe.tx(self.fe.hdr(OP_CREDIT_UPDATE, self.sport,
                                   buf_alloc=self.window, fwd_cnt=self.fwd))


def do_ping(fe):
    fe.connect(5000)
    st = Stream(fe, 5000, 1 << 18)
    st.write(hello() + frame(0x05, struct.pack(">Q", 0x1234)))
    t, _ = st.frame()
    if t != 0x81:
        raise Fail(f"frame {t:#x} instead of HELLO_ACK")
    t, p = st.frame()
    if t != 0x89 or struct.unpack(">Q", p)[0] != 0x1234:
        raise Fail("no PONG with our nonce")
    fe.tx(fe.hdr(OP_SHUTDOWN, 5000, flags=3))
    fe.expect(OP_RST, "RST after our SHUTDOWN")


def do_get(fe, path, want):
    window = 8192
    fe.connect(5001, buf_alloc=window)
    st = Stream(fe, 5001, window)
    st.write(hello() + get(path))
    read_file(st, want, window)


def get(path):
    p = path.encode()
    return frame(0x02, struct.pack(">QIH", 0, 0, len(p)) + p)


def read_file(st, want, window):
    """Reads one GET's reply frames and checks the data against want."""
    h = hashlib.sha256()
    size = None
    while True:
        t, body = st.frame()
        if t == 0x81:
            continue
        if t == 0x83:
            size = struct.unpack(">Q", body[:8])[0]
        elif t == 0x84:
            h.update(body)
        elif t == 0x86:
            break
        elif t == 0x87:
            raise Fail(f"ERROR {body!r}")
    if h.hexdigest() != want:
        raise Fail(f"sha256 {h.hexdigest()}, want {want} (size {size})")
    print(f"got {size} bytes through a {window}-byte window")


def do_late(fe, gate, sock, path, want, seconds):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import late_client
    fe.connect(5006)
    st = Stream(fe, 5006, 1 << 18)
    st.write(hello())
    t, _ = st.frame()
    if t != 0x81:
        raise Fail(f"frame {t:#x} instead of HELLO_ACK")
    os.kill(gate, signal.SIGSTOP)
    try:
        held = late_client.block_daemon(sock)
        st.write(get(path))
        time.sleep(seconds)
    finally:
        os.kill(gate, signal.SIGCONT)
    read_file(st, want, 1 << 18)
    del held


def expect_silence(fe):
    """The device must not answer anything any more."""
    fe.tx(fe.hdr(OP_REQUEST, 5100))
    if fe.rx(timeout=1.0) is not None:
        raise Fail("a broken device still answered")


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, cid, scenario = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    fe = Frontend(path)
    if scenario == "oversized":
        fe.s.sendall(struct.pack("<III", SET_MEM_TABLE, 1, 1 << 20))
        fe.s.settimeout(5)
        if fe.s.recv(1) != b"":
            raise Fail("no disconnect after an oversized message")
        return 0
    if scenario == "busy":
        fe.handshake()
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        other.settimeout(5)
        other.connect(path)
        if other.recv(1) != b"":
            raise Fail("a second front-end was not refused")
        fe.setup()
        fe.post_rx(16)
        do_ping(fe)
        return 0
    fe.handshake()
    if fe.cid != cid:
        raise Fail(f"GET_CONFIG gave CID {fe.cid}, want {cid}")
    fe.setup()
    fe.post_rx(32)
    if scenario == "ping":
        do_ping(fe)
    elif scenario == "get":
        do_get(fe, sys.argv[4], sys.argv[5])
    elif scenario == "late":
        do_late(fe, int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7],
                float(sys.argv[8]))
    elif scenario == "wrong-port":
        fe.tx(fe.hdr(OP_REQUEST, 5002, dport=22))
        f, _ = fe.expect(OP_RST, "RST for port 22")
        if f[2] != 22 or f[3] != 5002:
            raise Fail(f"RST addressed {f[:4]}")
    elif scenario == "lying-len":
        fe.connect(5003)
        fe.tx(fe.hdr(OP_RW, 5003, 5000), b"x" * 5000, carried=10)
        fe.expect(OP_RST, "RST for a lying length")
        do_ping(fe)         # the device itself is fine
    elif scenario == "loop":
        fe.connect(5004)
        fe.desc(1, 20, GPA + TXBUF, 44, 1, 21)
        fe.desc(1, 21, GPA + TXBUF, 44, 1, 20)
        fe.offer(1, 20)
        time.sleep(0.3)
        expect_silence(fe)
    elif scenario == "bad-index":
        fe.offer(1, NUM + 7)
        time.sleep(0.3)
        expect_silence(fe)
    elif scenario == "hang-up":
        fe.connect(5005)
        Stream(fe, 5005, 1 << 18).write(hello())
        time.sleep(0.2)
        os._exit(0)     # no goodbye: the kernel closes everything
    else:
        print(f"unknown scenario {scenario}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Fail, OSError) as e:
        print(f"vhost_frontend: {e}", file=sys.stderr)
        sys.exit(1)
