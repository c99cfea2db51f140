#!/usr/bin/env python3
"""Run one VM test: build an initramfs, boot it under QEMU, judge the result.

  vmtest.py run NAME --workdir DIR --script S [--script S ...] [options]
  vmtest.py kernel                     fetch/cache the kernel, print paths
  vmtest.py shell [options]            boot to an interactive guest shell

The guest runs tests/vm/scripts/S.sh for each --script, in order, in one
boot.  --porthole adds the static porthole and portholed binaries and the
test repository; their build directory comes from --static-dir, else
$PORTHOLE_VM_STATIC_DIR, else --own-build when that build is static.

Output is TAP on stdout (one line per guest result plus the harness's own
checks), diagnostics on stderr; the console log, initramfs and a JSON summary
stay in the work directory.  Exit status 0 only when every check passed.
"""

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# Keep the source tree clean: no __pycache__ next to vmlib.py.
sys.dont_write_bytecode = True

import vmlib  # noqa: E402
from vmlib import VmError, say  # noqa: E402

SOURCE_ROOT = HERE.parent.parent
STATIC_ENV = "PORTHOLE_VM_STATIC_DIR"
LOOPBACK_MODULES = ["vsock", "vmw_vsock_virtio_transport_common",
                    "vsock_loopback"]
STATIC_HINT = (
    "build static binaries first, e.g.\n"
    "  meson setup build/static -Dstatic_guest=true -Dstatic_daemon=true "
    "-Dtests=false --buildtype=release && ninja -C build/static\n"
    f"and run the vm suite with {STATIC_ENV}=$PWD/build/static")


def find_static_binaries(args):
    """Paths of static porthole and portholed, or a VmError saying why not."""
    cands = []
    if args.static_dir:
        cands.append(("--static-dir", args.static_dir))
    elif os.environ.get(STATIC_ENV):
        cands.append((STATIC_ENV, os.environ[STATIC_ENV]))
    elif args.own_build:
        cands.append(("this build", args.own_build))
    if not cands:
        raise VmError(f"{STATIC_ENV} is not set and this build is not "
                      f"static; {STATIC_HINT}")
    origin, raw = cands[0]
    base = Path(raw)
    if not base.is_absolute() and not base.is_dir():
        base = SOURCE_ROOT / raw
    if not base.is_dir():
        raise VmError(f"{origin}={raw}: no such directory; {STATIC_HINT}")
    found = {}
    for prog, sub in (("porthole", "guest-agent"), ("portholed", "hostd")):
        for p in (base / sub / prog, base / prog, base / "bin" / prog):
            if p.is_file() and os.access(p, os.X_OK):
                found[prog] = p
                break
        else:
            raise VmError(f"{origin}={base}: no {sub}/{prog} there; "
                          f"{STATIC_HINT}")
        if not vmlib.is_static_elf(found[prog]):
            raise VmError(f"{found[prog]} is dynamically linked and the "
                          "guest has no shared libraries: that build must "
                          "be configured with -Dstatic_guest=true "
                          "-Dstatic_daemon=true and link it with -static")
    return found


def build_vsock_stream(workdir):
    """Compiles vsock_stream.c statically for the guest."""
    cc = os.environ.get("CC_FOR_VM", "cc")
    if shutil.which(cc) is None:
        raise VmError(f"C compiler {cc} not found")
    out = workdir / "vsock_stream"
    cmd = [cc, "-static", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall",
           "-Wextra", "-Wshadow", "-Wmissing-prototypes",
           "-Wstrict-prototypes", "-Wvla", "-Wformat=2", "-o", str(out),
           str(HERE / "vsock_stream.c")]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode != 0 or r.stdout.strip():
        raise VmError("building vsock_stream failed (static glibc comes with "
                      "libc6-dev):\n" + r.stdout)
    return out


def add_test_repo(img, dst="/srv/repo"):
    """A repository of small files made now; big files are made in the guest
    to keep the initramfs small.  Writes DST.sha256 (sha256sum -c format,
    names relative to DST) with digests computed on the host."""
    files = {
        "hello.txt": (b"Hello from the Porthole VM test.\n", 0o644),
        "empty": (b"", 0o644),
        "docs/readme.md": (b"# Test repository\n\nSmall files for the VM "
                           b"tests.\n" * 3, 0o644),
        "docs/notes/deep.txt": (b"nested three levels down\n", 0o600),
        "tools/run.sh": (b"#!/bin/sh\necho run\n", 0o755),
        "data/blob-1m.bin": (os.urandom(1 << 20), 0o644),
        "data/blob-odd.bin": (os.urandom(3 * 65536 + 17), 0o644),
        "name with spaces.txt": (b"spaces in the name\n", 0o644),
    }
    lines = []
    for rel, (data, mode) in sorted(files.items()):
        img.add_file(f"{dst}/{rel}", data, mode)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {rel}\n")
    img.add_dir(f"{dst}/emptydir")
    # Points out of the repository: the daemon must refuse to follow it.
    img.add_symlink(f"{dst}/escape", "/etc")
    img.add_file(f"{dst}.sha256", "".join(lines))
    # A secret outside the repository for the escape attempts to aim at.
    img.add_file("/etc/ph/secret", b"not for clients\n", 0o600)


def build_initramfs(args, workdir, kernel, bins):
    img = vmlib.Initramfs()
    img.add_busybox()
    img.add_host_file("/init", HERE / "guest" / "init", 0o755)
    img.add_host_file("/test/lib.sh", HERE / "guest" / "lib.sh", 0o644)
    order = img.add_modules(kernel, args.module or LOOPBACK_MODULES)
    img.add_host_file("/test/bin/vsock_stream", build_vsock_stream(workdir),
                      0o755)
    for s in args.script:
        src = HERE / "scripts" / f"{s}.sh"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", s) or not src.is_file():
            raise VmError(f"no guest script {src}")
        img.add_host_file(f"/test/scripts/{s}.sh", src, 0o755)
    img.add_file("/etc/ph/scripts", "".join(s + "\n" for s in args.script))
    env = []
    for kv in args.set:
        k, sep, v = kv.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise VmError(f"--set wants KEY=VALUE, got {kv}")
        env.append(f"PH_{k}={shlex.quote(v)}")
    if bins:
        for prog, path in bins.items():
            img.add_host_file(f"/test/bin/{prog}", path, 0o755)
        add_test_repo(img)
        env.append("PH_PORTHOLE=1")
    img.add_file("/test/env", "".join(f"export {e}\n" for e in env))
    for spec in args.file:
        src, sep, dst = spec.partition(":")
        if not sep or not dst.startswith("/"):
            raise VmError(f"--file wants SRC:/GUEST/PATH, got {spec}")
        if Path(src).is_dir():
            img.add_tree(dst, src)
        else:
            img.add_host_file(dst, src)
    path = workdir / "initramfs.cpio"
    size = img.write(path)
    return path, size, order


def tap_report(res, con, expected_scripts):
    """Prints TAP for the guest results and the harness checks; returns the
    number of failures."""
    checks = []
    booted = con.boot is not None
    checks.append((booted, "guest reached userspace",
                   "" if booted else "no PH-BOOT line on the console"))
    for r in con.results:
        ok = r.get("status") == "pass"
        extra = " ".join(f"{k}={v}" for k, v in r.items()
                         if k not in ("name", "status", "msg"))
        detail = (extra + (" " + r["msg"] if "msg" in r else "")).strip()
        checks.append((ok, r.get("name", "?"), detail))
    for s in expected_scripts:
        st = con.scripts.get(s)
        names = [r for r in con.results
                 if r.get("name", "").startswith(s + ".")]
        if st is None or not st["start"]:
            checks.append((False, f"script {s}", "never started"))
        elif st["rc"] is None:
            checks.append((False, f"script {s}", "did not finish"))
        elif st["rc"] != 0:
            checks.append((False, f"script {s}", f"exited {st['rc']}"))
        elif not names:
            checks.append((False, f"script {s}", "reported no results"))
        else:
            checks.append((True, f"script {s}", f"{len(names)} results"))
    if res.timed_out:
        checks.append((False, "finished in time",
                       f"killed after {res.wall_s:.0f} s"))
    checks.append((con.done, "guest printed PH-DONE", ""))
    checks.append((not res.panic, "no kernel panic", ""))
    if not res.timed_out:
        checks.append((res.exit_code == 0, "guest powered off",
                       "QEMU stayed up after PH-DONE" if res.no_poweroff
                       else f"qemu exit {res.exit_code}"))
    failed = 0
    for i, (ok, what, detail) in enumerate(checks, 1):
        failed += not ok
        print(f"{'ok' if ok else 'not ok'} {i} - {what}"
              + (f" # {detail}" if detail and not ok else ""))
        if detail and ok:
            print(f"# {detail}")
    print(f"1..{len(checks)}")
    return failed


def report_metrics(res, con):
    if res.userspace_s is not None:
        guest = con.boot.get("uptime", "?") if con.boot else "?"
        print(f"# boot: {res.userspace_s:.2f} s from QEMU start to userspace "
              f"(guest uptime {guest} s)")
    for m in con.metrics:
        fields = " ".join(f"{k}={v}" for k, v in m.items() if k != "name")
        print(f"# metric {m.get('name', '?')}: {fields}")
    rates = [f"{m['name']} {m['mb_s']} MB/s" for m in con.metrics
             if "name" in m and "mb_s" in m]
    if rates:
        print("# throughput in the guest: " + ", ".join(rates))
    print(f"# total: {res.wall_s:.1f} s wall")


def cmd_run(args):
    workdir = Path(args.workdir).resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    t0 = time.monotonic()
    # Missing binaries are the likeliest setup error: say so before fetching.
    bins = find_static_binaries(args) if args.porthole else None
    kernel = vmlib.fetch_kernel(args.cache_dir)
    initrd, size, modules = build_initramfs(args, workdir, kernel, bins)
    say(f"{args.name}: kernel {kernel.release}, initramfs {size >> 10} KiB, "
        f"modules {','.join(modules)}, prepared in "
        f"{time.monotonic() - t0:.1f} s")
    cmd = vmlib.qemu_command(kernel.vmlinuz, initrd, args.memory, args.smp,
                             args.append, args.qemu_arg, args.cpu)
    (workdir / "qemu-command").write_text(" ".join(cmd) + "\n")
    log = workdir / "console.log"
    echo = (lambda line: print(f"  | {line}", file=sys.stderr, flush=True)) \
        if args.verbose else None
    res = vmlib.run_qemu(cmd, log, args.timeout, on_line=echo)
    con = vmlib.Console(res.lines)
    print(f"# {args.name}: console log {log}")
    report_metrics(res, con)
    failed = tap_report(res, con, args.script)
    summary = {
        "name": args.name, "kernel": kernel.release, "wall_s": res.wall_s,
        "userspace_s": res.userspace_s, "timed_out": res.timed_out,
        "qemu_exit": res.exit_code, "panic": res.panic, "done": con.done,
        "boot": con.boot, "results": con.results, "metrics": con.metrics,
        "failed": failed,
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    if failed:
        # The tail of the console is where the story usually is.
        tail = res.lines[-40:]
        print("# last console lines:")
        for line in tail:
            print(f"#   {line}")
    return 1 if failed else 0


def cmd_kernel(args):
    kernel = vmlib.fetch_kernel(args.cache_dir)
    print(f"release {kernel.release}")
    print(f"vmlinuz {kernel.vmlinuz}")
    for m in kernel.resolve_modules(args.module or LOOPBACK_MODULES):
        print(f"module  {kernel.module_file(m)}")
    return 0


def cmd_shell(args):
    """Interactive guest for debugging: the test files are there, /init
    drops to a shell instead of running scripts; exit the shell to power
    off."""
    workdir = Path(args.workdir or "vm-shell").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    bins = find_static_binaries(args) if args.porthole else None
    kernel = vmlib.fetch_kernel(args.cache_dir)
    args.script = args.script or []
    initrd, _, _ = build_initramfs(args, workdir, kernel, bins)
    cmd = vmlib.qemu_command(kernel.vmlinuz, initrd, args.memory, args.smp,
                             list(args.append) + ["ph.shell=1"],
                             args.qemu_arg, args.cpu)
    cmd[cmd.index("stdio")] = "mon:stdio"
    return subprocess.call(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--cache-dir", help="kernel cache (default "
                       "$PORTHOLE_VM_CACHE or $XDG_CACHE_HOME/porthole-vm)")
        p.add_argument("--module", action="append", default=[],
                       help="kernel module to load (repeatable; default: "
                       "the vsock loopback set)")

    def guest(p):
        common(p)
        p.add_argument("--script", action="append", default=[],
                       help="guest script tests/vm/scripts/NAME.sh")
        p.add_argument("--porthole", action="store_true",
                       help="add static porthole/portholed and the repo")
        p.add_argument("--static-dir", help="build dir with static binaries")
        p.add_argument("--own-build", help="this build, if it is static")
        p.add_argument("--file", action="append", default=[],
                       help="extra HOST:/GUEST file or tree (repeatable)")
        p.add_argument("--set", action="append", default=[],
                       metavar="KEY=VALUE",
                       help="exported to guest scripts as PH_KEY")
        p.add_argument("--memory", type=int, default=1536, help="MiB")
        p.add_argument("--smp", type=int, default=2)
        p.add_argument("--cpu", default="qemu64", help="QEMU CPU model")
        p.add_argument("--append", action="append", default=[],
                       help="extra kernel command line word")
        p.add_argument("--qemu-arg", action="append", default=[],
                       help="extra QEMU argument (repeatable)")
        p.add_argument("-v", "--verbose", action="store_true",
                       help="echo the console to stderr as it comes")

    p = sub.add_parser("run", help="run a test")
    guest(p)
    p.add_argument("name")
    p.add_argument("--workdir", required=True)
    p.add_argument("--timeout", type=float, default=200,
                   help="hard limit for the boot, seconds")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("kernel", help="fetch the kernel and show paths")
    common(p)
    p.set_defaults(func=cmd_kernel)

    p = sub.add_parser("shell", help="interactive guest")
    guest(p)
    p.add_argument("--workdir")
    p.set_defaults(func=cmd_shell)

    args = ap.parse_args()
    if getattr(args, "cmd", None) == "run" and not args.script:
        ap.error("run needs at least one --script")
    try:
        return args.func(args)
    except VmError as e:
        # TAP readers see a bail-out; people see the reason.
        print(f"Bail out! {e}".split("\n")[0])
        say(str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
