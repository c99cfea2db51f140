#!/usr/bin/env python3
"""One request as a given guest, for the access rule and libvirt tests.

Usage: peer_client.py SOCKET PEER OP PATH

Says HELLO with declared_peer PEER (the daemon trusts it only with
--test-declared-peer, on unix listeners), then sends one request and prints
one JSON object on stdout:

    OP get:  {"result": "OK", "bytes": N, "sha256": HEX} (the data's digest)
    OP stat: {"result": "OK", "size": N, "ftype": T}
    OP list: {"result": "OK", "names": [...], "pages": N} (every page,
             following next_cursor until it is 0)
    any error: {"result": "ERROR", "code": C, "message": M}

Exit status 0 when a reply came (error or not), 1 on a protocol problem.
"""

import hashlib
import json
import socket
import struct
import sys

HELLO, GET, STAT, LIST = 0x01, 0x02, 0x03, 0x04
HELLO_ACK, QUEUED, META, DATA, END, ERROR, LIST_REPLY = (
    0x81, 0x82, 0x83, 0x84, 0x86, 0x87, 0x88)


def frame(ftype, payload):
    """A whole frame: header and payload."""
    return struct.pack(">2sBBI", b"PH", 1, ftype, len(payload)) + payload


def wire_str(s):
    """A u16-length-prefixed string."""
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def recv_exact(sock, n):
    """Exactly n bytes, or an exception when the server closes first."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("the server closed the connection")
        buf += chunk
    return buf


def recv_frame(sock):
    """(type, payload) of the next frame."""
    hdr = recv_exact(sock, 8)
    magic, version, ftype, length = struct.unpack(">2sBBI", hdr)
    if magic != b"PH" or version != 1:
        raise ValueError("bad frame header %r" % hdr)
    return ftype, recv_exact(sock, length)


def error_of(payload):
    """The ERROR frame as a result object."""
    code, n = struct.unpack(">HH", payload[:4])
    return {"result": "ERROR", "code": code,
            "message": payload[4:4 + n].decode("utf-8", "replace")}


def list_names(payload):
    """(next_cursor, [names]) of a LIST_REPLY."""
    cursor, count = struct.unpack(">QH", payload[:10])
    off, names = 10, []
    for _ in range(count):
        off += 1 + 8 + 8 + 4
        (n,) = struct.unpack(">H", payload[off:off + 2])
        names.append(payload[off + 2:off + 2 + n].decode("utf-8"))
        off += 2 + n
    return cursor, names


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    path, peer, op, rpath = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(path)
    # Every feature, so STAT and END carry digests.
    sock.sendall(frame(HELLO, struct.pack(">HHII", 1, 1, 7, peer) +
                       wire_str("peer-client")))
    ftype, payload = recv_frame(sock)
    if ftype != HELLO_ACK:
        print(json.dumps(error_of(payload) if ftype == ERROR else
                         {"result": "unexpected", "type": ftype}))
        return 1
    out = {}
    if op == "get":
        sock.sendall(frame(GET, struct.pack(">QI", 0, 0) + wire_str(rpath)))
        digest, nbytes = hashlib.sha256(), 0
        while True:
            ftype, payload = recv_frame(sock)
            if ftype == ERROR:
                out = error_of(payload)
                break
            if ftype == DATA:
                digest.update(payload)
                nbytes += len(payload)
            elif ftype == END:
                out = {"result": "OK", "bytes": nbytes,
                       "sha256": digest.hexdigest()}
                break
            elif ftype not in (QUEUED, META):
                out = {"result": "unexpected", "type": ftype}
                break
    elif op == "stat":
        sock.sendall(frame(STAT, wire_str(rpath)))
        ftype, payload = recv_frame(sock)
        if ftype == ERROR:
            out = error_of(payload)
        else:
            size, _, _, ftype_ = struct.unpack(">QqIB", payload[:21])
            out = {"result": "OK", "size": size, "ftype": ftype_}
    elif op == "list":
        cursor, names, pages = 0, [], 0
        while True:
            sock.sendall(frame(LIST, struct.pack(">Q", cursor) +
                               wire_str(rpath)))
            ftype, payload = recv_frame(sock)
            if ftype == ERROR:
                out = error_of(payload)
                break
            cursor, page = list_names(payload)
            names += page
            pages += 1
            if cursor == 0:
                out = {"result": "OK", "names": names, "pages": pages}
                break
    else:
        sys.exit("unknown OP %r (get, stat or list)" % op)
    print(json.dumps(out))
    return 0 if out.get("result") in ("OK", "ERROR") else 1


if __name__ == "__main__":
    sys.exit(main())
