#!/usr/bin/env python3
"""A misbehaving parent daemon for the upstream client's tests.

Usage: fake_parent.py SOCKET [--nosha | --realpath]
       fake_parent.py --content-sha   (prints the SHA-256 of its file)

Listens on the unix SOCKET and speaks just enough of the protocol: HELLO is
answered with HELLO_ACK (ZSTD, RESUME and SHA256, all but SHA256 with
--nosha, those and REALPATH with --realpath), PING with PONG, STAT with a
small file's META. With --realpath a STAT gets PATH frames first, by name:

  nopath       none
  twopath      two for the request
  badpath      one that is not a normalised path ("../x")
  entrypath    one for a LIST entry, which a STAT has not
  anything     one saying it really is "real/" followed by the name

What a GET gets depends on its path, one case per name:

  good         a correct reply (DATA frames)
  zstd         a correct reply in DATA_ZSTD frames (when the client asked)
  queued       three QUEUED keepalives, slowly, then a correct reply
  offset       a correct reply from the GET's offset (resume)
  baddigest    one byte flipped in the data, digests of the original
  changed      META's digest differs from END's
  short        fewer bytes than META announced, END counting them
  long         more bytes than META announced
  garbage      bytes that are not a frame
  request      a PING frame, which only clients send
  datafirst    DATA before META
  zstdbomb     a DATA_ZSTD frame declaring 2 MiB of content
  zstdcorrupt  a DATA_ZSTD frame whose body is damaged
  truncframe   half a DATA frame, then the connection is closed
  silent       no reply at all
  missing      ERROR NOT_FOUND
Runs until killed.
"""

import hashlib
import os
import socketserver
import struct
import subprocess
import sys
import time

HELLO, GET, STAT, LIST, PING = 0x01, 0x02, 0x03, 0x04, 0x05
HELLO_ACK, QUEUED, META, DATA, DATA_ZSTD, END, ERROR, LIST_REPLY, PONG = (
    0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89)
ALL_FEATURES = 7
SHA256 = 4
REALPATH = 0x20
PATH = 0x8a

CONTENT = b"".join(b"line %06d of the fake parent's file\n" % i
                   for i in range(20000))
MTIME_NS = 1700000000123456789


def frame(ftype, payload=b""):
    return struct.pack(">2sBBI", b"PH", 1, ftype, len(payload)) + payload


def wstr(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def meta(size, digest, ftype=1, mode=0o644):
    return frame(META, struct.pack(">QqIBB", size, MTIME_NS, mode, ftype,
                                   1 if digest else 0) + (digest or bytes(32)))


def path_frame(entry, path):
    return frame(PATH, struct.pack(">H", entry) + wstr(path))


def stat_paths(path):
    """The PATH frames a --realpath parent sends before a STAT's META."""
    if path == "nopath":
        return b""
    if path == "twopath":
        return path_frame(0, "a") + path_frame(0, "b")
    if path == "badpath":
        return path_frame(0, "../x")
    if path == "entrypath":
        return path_frame(0, "a") + path_frame(1, "b")
    return path_frame(0, "real/" + path)


def end(nbytes, digest):
    return frame(END, struct.pack(">QB", nbytes, 1) + digest)


def error(code, msg):
    return frame(ERROR, struct.pack(">H", code) + wstr(msg))


def data_frames(buf, ftype=DATA, chunk=256 * 1024):
    return b"".join(frame(ftype, buf[i:i + chunk])
                    for i in range(0, len(buf), chunk))


def zstd_frame(buf):
    """One zstd frame with its content size, made by the zstd tool."""
    return subprocess.run(["zstd", "-q", "-c", "--stream-size=%d" % len(buf)],
                          input=buf, stdout=subprocess.PIPE, check=True).stdout


def get_reply(path, offset, want_zstd, sock):
    """Sends the reply to GET path; returns False to close the connection."""
    c = CONTENT
    d = hashlib.sha256(c).digest()
    if path == "good":
        sock.sendall(meta(len(c), d) + data_frames(c) + end(len(c), d))
    elif path == "offset":
        sock.sendall(meta(len(c), d) + data_frames(c[offset:]) +
                     end(len(c) - offset, d))
    elif path == "zstd":
        if not want_zstd:
            sock.sendall(error(18, "the client did not ask for zstd"))
            return True
        out = meta(len(c), d)
        for i in range(0, len(c), 1024 * 1024):
            out += frame(DATA_ZSTD, zstd_frame(c[i:i + 1024 * 1024]))
        sock.sendall(out + end(len(c), d))
    elif path == "queued":
        for pos in (3, 2, 1):
            sock.sendall(frame(QUEUED, struct.pack(">I", pos)))
            time.sleep(0.2)
        sock.sendall(meta(len(c), d) + data_frames(c) + end(len(c), d))
    elif path == "baddigest":
        bad = bytearray(c)
        bad[len(bad) // 2] ^= 0x01
        sock.sendall(meta(len(c), d) + data_frames(bytes(bad)) +
                     end(len(c), d))
    elif path == "changed":
        d2 = hashlib.sha256(c + b"x").digest()
        sock.sendall(meta(len(c), d) + data_frames(c) + end(len(c), d2))
    elif path == "short":
        sock.sendall(meta(len(c), d) + data_frames(c[:-10]) +
                     end(len(c) - 10, d))
    elif path == "long":
        sock.sendall(meta(len(c), d) + data_frames(c + b"extra") +
                     end(len(c) + 5, d))
    elif path == "garbage":
        sock.sendall(b"GARBAGE! this is not a frame at all")
    elif path == "request":
        sock.sendall(frame(PING, struct.pack(">Q", 7)))
    elif path == "datafirst":
        sock.sendall(frame(DATA, c[:100]))
    elif path == "zstdbomb":
        sock.sendall(meta(len(c), d) +
                     frame(DATA_ZSTD, zstd_frame(bytes(2 * 1024 * 1024))))
    elif path == "zstdcorrupt":
        z = bytearray(zstd_frame(c[:500000]))
        for i in range(len(z) // 2, len(z) // 2 + 64):
            z[i] ^= 0x5a
        sock.sendall(meta(len(c), d) + frame(DATA_ZSTD, bytes(z)))
    elif path == "truncframe":
        whole = frame(DATA, c[:1000])
        sock.sendall(meta(len(c), d) + whole[:500])
        return False
    elif path == "silent":
        pass
    else:
        sock.sendall(error(5, "not found: /" + path))
    return True


class Handler(socketserver.BaseRequestHandler):
    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            b = self.request.recv(n - len(buf))
            if not b:
                raise EOFError
            buf += b
        return buf

    def handle(self):
        s = self.request
        try:
            while True:
                magic, _, ftype, length = struct.unpack(
                    ">2sBBI", self.recv_exact(8))
                if magic != b"PH":
                    return
                p = self.recv_exact(length)
                if ftype == HELLO:
                    feats = ALL_FEATURES & ~SHA256 if NOSHA else ALL_FEATURES
                    if REALPATH_MODE:
                        feats |= REALPATH
                    s.sendall(frame(HELLO_ACK, struct.pack(
                        ">HII", 1, feats, 1 << 20) + wstr("fake-parent")))
                elif ftype == PING:
                    s.sendall(frame(PONG, p))
                elif ftype == STAT:
                    (n,) = struct.unpack(">H", p[:2])
                    path = p[2:2 + n].decode()
                    if path == "missing":
                        s.sendall(error(5, "not found: /missing"))
                    elif path == "listreply":
                        s.sendall(frame(LIST_REPLY, struct.pack(">QH", 0, 0)))
                        return
                    else:
                        s.sendall((stat_paths(path) if REALPATH_MODE
                                   else b"") +
                                  meta(3, hashlib.sha256(b"abc").digest()))
                elif ftype == GET:
                    offset, flags, n = struct.unpack(">QIH", p[:14])
                    path = p[14:14 + n].decode()
                    if not get_reply(path, offset, flags & 1, s):
                        return
                else:
                    s.sendall(error(1, "unexpected frame"))
                    return
        except (EOFError, ConnectionError, BrokenPipeError):
            return


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


NOSHA = False
REALPATH_MODE = False


def main():
    global NOSHA, REALPATH_MODE
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "--content-sha":
        print(hashlib.sha256(CONTENT).hexdigest())
        return 0
    NOSHA = "--nosha" in sys.argv[2:]
    REALPATH_MODE = "--realpath" in sys.argv[2:]
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    with Server(path, Handler) as srv:
        srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
