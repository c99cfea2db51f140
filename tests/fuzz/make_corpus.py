#!/usr/bin/env python3
"""Writes the fuzz seed corpus from the protocol test vectors.

Usage: make_corpus.py MESSAGES_TXT SEED_DIR WORK_DIR STAMP

Each "vector NAME HEX" line of MESSAGES_TXT becomes SEED_DIR/NAME holding
the frame's bytes, plus a few path and endpoint strings. WORK_DIR is created
empty if missing: libFuzzer stores the inputs it finds there, so the seed
directory stays as generated.
"""
import os
import sys

EXTRA = {
    "path_escape": b"a/b/../../..",
    "path_utf8": b"/caf\xc3\xa9/./x//y/",
    "path_overlong": b"\xc0\xaf..",
    "endpoint_vsock": b"vsock:2:7390",
    "endpoint_any": b"vsock::7390",
    "endpoint_unix": b"unix:/run/porthole/portholed.ctl",
    "size": b"16G",
}


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    src, seed_dir, work_dir, stamp = sys.argv[1:]
    os.makedirs(seed_dir, exist_ok=True)
    os.makedirs(work_dir, exist_ok=True)
    count = 0
    with open(src, encoding="ascii") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != "vector":
                sys.exit("%s:%d: not a vector line" % (src, lineno))
            with open(os.path.join(seed_dir, parts[1]), "wb") as out:
                out.write(bytes.fromhex(parts[2]))
            count += 1
    if count == 0:
        sys.exit("%s: no vectors" % src)
    for name, data in EXTRA.items():
        with open(os.path.join(seed_dir, name), "wb") as out:
            out.write(data)
    with open(stamp, "w", encoding="ascii") as out:
        out.write("%d\n" % count)


if __name__ == "__main__":
    main()
