#!/usr/bin/env python3
"""Run one VM test: build an initramfs, boot it under QEMU, judge the result.

  vmtest.py run NAME --workdir DIR --script S [--script S ...] [options]
  vmtest.py kernel                     fetch/cache the kernel, print paths
  vmtest.py shell [options]            boot to an interactive guest shell

The guest runs tests/vm/scripts/S.sh for each --script, in order, in one
boot.  --porthole adds the static porthole and portholed binaries and the
test repository; their build directory comes from --static-dir, else
$PORTHOLE_VM_STATIC_DIR, else --own-build when that build is static.

--vhost-user moves the daemon to the host: the harness starts portholed
there (--host-daemon, else the static one) with one --vhost-user socket per
guest, serving a repository it makes on the host, and each guest gets a
vhost-user-vsock-pci device on that socket (shared memfd memory, no NIC)
and reaches the daemon at vsock:2:7390.  --vms N boots N guests at once on
that one daemon; --runs N boots them N times in a row (QEMU exits and
reconnects); --boots N lets each guest reboot up to N - 1 times.
--vhost-socket PATH instead boots one guest on the vhost-user socket of a
portholed started by someone else (the demo does that).

Output is TAP on stdout (one line per guest result plus the harness's own
checks), diagnostics on stderr; the console log, initramfs and a JSON summary
stay in the work directory.  Exit status 0 only when every check passed.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import signal
import socket
import sys
import tempfile
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
# The guest side of a real virtio-vsock device on PCI; vmlib adds and
# orders their dependencies (virtio, virtio_ring, vsock, ...).
VHOST_MODULES = ["virtio_pci", "vmw_vsock_virtio_transport"]
VHOST_FIRST_CID = 3
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


def test_repo_files():
    """The small files of the test repository: name -> (bytes, mode)."""
    return {
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


def add_test_repo(img, dst="/srv/repo"):
    """A repository of small files made now; big files are made in the guest
    to keep the initramfs small.  Writes DST.sha256 (sha256sum -c format,
    names relative to DST) with digests computed on the host."""
    files = test_repo_files()
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


def make_host_repo(dst, big_mb):
    """The vhost-user tests' repository, on the host where the daemon runs:
    the small files, big.bin of big_mb MiB of random bytes and a symlink
    out of it.  Returns the sha256sum -c manifest the guest checks with."""
    dst.mkdir(parents=True)
    lines = []
    for rel, (data, mode) in sorted(test_repo_files().items()):
        p = dst / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        p.chmod(mode)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {rel}\n")
    (dst / "emptydir").mkdir()
    (dst / "escape").symlink_to("/etc")
    h = hashlib.sha256()
    with open(dst / "big.bin", "wb") as f:
        for _ in range(big_mb):
            chunk = os.urandom(1 << 20)
            h.update(chunk)
            f.write(chunk)
    lines.append(f"{h.hexdigest()}  big.bin\n")
    return "".join(lines)


def build_initramfs(args, workdir, kernel, bins, manifest=None):
    """The guest image.  manifest (vhost-user mode) replaces the in-guest
    repository: the guest gets only the digests of the host's files."""
    img = vmlib.Initramfs()
    img.add_busybox()
    img.add_host_file("/init", HERE / "guest" / "init", 0o755)
    img.add_host_file("/test/lib.sh", HERE / "guest" / "lib.sh", 0o644)
    default = VHOST_MODULES if manifest is not None else LOOPBACK_MODULES
    order = img.add_modules(kernel, args.module or default)
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
        if manifest is None:
            add_test_repo(img)
        else:
            img.add_file("/srv/repo.sha256", manifest)
            env.append("PH_VHOST=1")
            env.append("PH_ENDPOINT=vsock:2:7390")
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


def guest_checks(res, con, expected_scripts, prefix="", boots=1):
    """The checks one guest boot (or one QEMU run) yields: (ok, what,
    detail) for each guest result and each harness verdict."""
    checks = []
    booted = con.boot is not None
    checks.append((booted, prefix + "guest reached userspace",
                   "" if booted else "no PH-BOOT line on the console"))
    for r in con.results:
        ok = r.get("status") == "pass"
        extra = " ".join(f"{k}={v}" for k, v in r.items()
                         if k not in ("name", "status", "msg"))
        detail = (extra + (" " + r["msg"] if "msg" in r else "")).strip()
        checks.append((ok, prefix + r.get("name", "?"), detail))
    for s in expected_scripts:
        st = con.scripts.get(s)
        names = [r for r in con.results
                 if r.get("name", "").startswith(s + ".")]
        if st is None or not st["start"]:
            checks.append((False, f"{prefix}script {s}", "never started"))
        elif st["rc"] is None:
            checks.append((False, f"{prefix}script {s}", "did not finish"))
        elif st["rc"] != 0:
            checks.append((False, f"{prefix}script {s}",
                           f"exited {st['rc']}"))
        elif not names:
            checks.append((False, f"{prefix}script {s}",
                           "reported no results"))
        else:
            checks.append((True, f"{prefix}script {s}",
                           f"{len(names)} results"))
    if res.timed_out:
        checks.append((False, prefix + "finished in time",
                       f"killed after {res.wall_s:.0f} s"))
    if boots != 1 or res.boots > 1:
        checks.append((res.boots == boots and not res.too_many_boots,
                       prefix + f"guest booted {boots} times",
                       f"booted {res.boots} times"))
    checks.append((con.done, prefix + "guest printed PH-DONE", ""))
    checks.append((not res.panic, prefix + "no kernel panic", ""))
    if not res.timed_out and not res.too_many_boots:
        checks.append((res.exit_code == 0, prefix + "guest powered off",
                       "QEMU stayed up after PH-DONE" if res.no_poweroff
                       else f"qemu exit {res.exit_code}"))
    return checks


def print_tap(checks):
    """Prints the checks as TAP; returns the number of failures."""
    failed = 0
    for i, (ok, what, detail) in enumerate(checks, 1):
        failed += not ok
        print(f"{'ok' if ok else 'not ok'} {i} - {what}"
              + (f" # {detail}" if detail and not ok else ""))
        if detail and ok:
            print(f"# {detail}")
    print(f"1..{len(checks)}")
    return failed


def tap_report(res, con, expected_scripts):
    """Prints TAP for the guest results and the harness checks; returns the
    number of failures."""
    return print_tap(guest_checks(res, con, expected_scripts))


def report_metrics(res, con, prefix=""):
    if res.userspace_s is not None:
        guest = con.boot.get("uptime", "?") if con.boot else "?"
        print(f"# {prefix}boot: {res.userspace_s:.2f} s from QEMU start to "
              f"userspace (guest uptime {guest} s)")
    for m in con.metrics:
        fields = " ".join(f"{k}={v}" for k, v in m.items() if k != "name")
        print(f"# {prefix}metric {m.get('name', '?')}: {fields}")
    rates = [f"{m['name']} {m['mb_s']} MB/s" for m in con.metrics
             if "name" in m and "mb_s" in m]
    if rates:
        print(f"# {prefix}throughput in the guest: " + ", ".join(rates))
    print(f"# {prefix}total: {res.wall_s:.1f} s wall")


def fresh_workdir(path):
    """The run's work directory, emptied of any earlier run's files."""
    workdir = Path(path).resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    return workdir


def cmd_run(args):
    if args.vhost_user:
        return cmd_run_vhost(args)
    workdir = fresh_workdir(args.workdir)
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


class HostDaemon:
    """portholed on the host, as the vsock device of every guest: one
    --vhost-user socket per guest (CIDs from VHOST_FIRST_CID) and a unix
    listener the harness pings to know it is up.  Sockets live in a short
    temp dir: unix socket paths are limited to 107 bytes."""

    def __init__(self, binary, client, workdir, repo, nvms):
        self.binary = binary
        self.client = client
        self.workdir = workdir
        self.repo = repo
        self.nvms = nvms
        self.sockdir = Path(tempfile.mkdtemp(prefix="ph-vu-"))
        self.log = workdir / "portholed.log"
        self.proc = None
        self.usage = None       # process_usage() just before SIGTERM

    def sock(self, i):
        return self.sockdir / f"vm{i}.sock"

    def cid(self, i):
        return VHOST_FIRST_CID + i

    def start(self):
        wd = self.workdir
        for d in ("state", "cache"):
            (wd / d).mkdir(exist_ok=True)
        cmd = [str(self.binary), "-l", f"unix:{self.sockdir}/ph.sock",
               "-r", str(self.repo), "-c", str(self.sockdir / "ph.ctl"),
               "--state-dir", str(wd / "state"),
               "--cache-dir", str(wd / "cache")]
        for i in range(self.nvms):
            cmd += ["--vhost-user",
                    f"{self.sock(i)},cid={self.cid(i)},name=vm{i}"]
        (wd / "portholed-command").write_text(" ".join(cmd) + "\n")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise VmError("host portholed exited at startup: "
                              + self.log.read_text()[-800:])
            up = all(self.sock(i).exists() for i in range(self.nvms))
            if up and subprocess.run(
                    [str(self.client), "-e", f"unix:{self.sockdir}/ph.sock",
                     "ping"], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL).returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise VmError("host portholed did not come up within 15 s")

    def stop(self):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            self.usage = process_usage(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.proc is not None:
            rc = self.proc.returncode
        shutil.rmtree(self.sockdir, ignore_errors=True)
        return rc


def process_usage(pid):
    """What a live process has used: CPU seconds (user plus system), and
    from /proc/PID/io its read and write system calls and the bytes they
    moved (rchar, wchar: through any file, socket or pipe)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        io = Path(f"/proc/{pid}/io").read_text()
    except OSError:
        return None
    # Fields after the parenthesised name; utime and stime are 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    usage = {"cpu_s": (int(fields[11]) + int(fields[12]))
             / os.sysconf("SC_CLK_TCK")}
    for line in io.splitlines():
        key, _, value = line.partition(":")
        if key in ("rchar", "wchar", "syscr", "syscw"):
            usage[key] = int(value)
    return usage


def monitor_command(path, command):
    """Sends one command to a QEMU human monitor on a unix socket and
    waits for its next prompt."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        got = b""
        while not got.endswith(b"(qemu) "):
            chunk = s.recv(4096)
            if not chunk:
                raise VmError(f"QEMU monitor {path} closed")
            got += chunk
        s.sendall(command.encode() + b"\n")
        got = b""
        while b"(qemu) " not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk


def host_hook(repo, monitor=None):
    """Console hook: `PH-HOST touch NAME` makes NAME in the host repository
    (how a guest leaves a mark that outlives its own reboot); `PH-HOST
    pause SECONDS NAME` stops the whole VM through QEMU's monitor for that
    long, continues it, then makes NAME."""
    def on_line(line):
        m = re.search(r"PH-HOST touch ([A-Za-z0-9._-]+)$", line)
        if m:
            (repo / m.group(1)).touch()
        m = re.search(r"PH-HOST pause ([0-9]+) ([A-Za-z0-9._-]+)$", line)
        if m and monitor is not None:
            monitor_command(monitor, "stop")
            time.sleep(int(m.group(1)))
            monitor_command(monitor, "cont")
            (repo / m.group(2)).touch()
    return on_line


def cmd_run_external(args):
    """One guest on the vhost-user socket of a daemon we did not start."""
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sock = Path(args.vhost_socket)
    if not sock.is_socket():
        raise VmError(f"{sock} is not a socket: start portholed "
                      f"--vhost-user {sock},cid=N first")
    bins = find_static_binaries(args)
    kernel = vmlib.fetch_kernel(args.cache_dir)
    initrd, size, modules = build_initramfs(args, workdir, kernel, bins,
                                            manifest="")
    say(f"{args.name}: kernel {kernel.release}, initramfs {size >> 10} KiB, "
        f"modules {','.join(modules)}")
    qargs = ["-object", f"memory-backend-memfd,id=mem,size={args.memory}M,"
             "share=on", "-machine", "memory-backend=mem",
             "-chardev", f"socket,id=vu0,path={sock}",
             "-device", "vhost-user-vsock-pci,chardev=vu0"]
    cmd = vmlib.qemu_command(kernel.vmlinuz, initrd, args.memory, args.smp,
                             list(args.append) + ["ph.vm=vm0", "ph.run=1"],
                             qargs + list(args.qemu_arg), args.cpu)
    (workdir / "qemu-command").write_text(" ".join(cmd) + "\n")
    echo = (lambda line: print(f"  vm0| {line}", file=sys.stderr,
                               flush=True)) if args.verbose else None
    res = vmlib.run_qemu(cmd, workdir / "console.log", args.timeout,
                         on_line=echo)
    con = vmlib.Console(res.lines)
    report_metrics(res, con)
    return 1 if print_tap(guest_checks(res, con, args.script)) else 0


def cmd_run_vhost(args):
    """Guests with vhost-user vsock devices served by portholed on the
    host (see the module docstring)."""
    if args.vhost_socket:
        return cmd_run_external(args)
    workdir = fresh_workdir(args.workdir)
    t0 = time.monotonic()
    bins = find_static_binaries(args)
    daemon_bin = Path(args.host_daemon) if args.host_daemon \
        else bins["portholed"]
    kernel = vmlib.fetch_kernel(args.cache_dir)
    repo = workdir / "hostrepo"
    big_mb = 256
    for kv in args.set:
        if kv.startswith("BIG_MB="):
            big_mb = int(kv.split("=", 1)[1])
    manifest = make_host_repo(repo, big_mb)
    initrd, size, modules = build_initramfs(args, workdir, kernel, bins,
                                            manifest)
    say(f"{args.name}: kernel {kernel.release}, initramfs {size >> 10} KiB, "
        f"modules {','.join(modules)}, {args.vms} VM(s) x {args.runs} "
        f"run(s), host daemon {daemon_bin}, prepared in "
        f"{time.monotonic() - t0:.1f} s")
    daemon = HostDaemon(daemon_bin, bins["porthole"], workdir, repo, args.vms)
    daemon.start()
    runs = []
    echo = None
    try:
        for run in range(1, args.runs + 1):
            jobs = []
            for i in range(args.vms):
                monitor = daemon.sockdir / f"mon{i}.sock"
                qargs = ["-object", f"memory-backend-memfd,id=mem,size="
                         f"{args.memory}M,share=on",
                         "-machine", "memory-backend=mem",
                         "-chardev", f"socket,id=vu0,path={daemon.sock(i)}",
                         "-device", "vhost-user-vsock-pci,chardev=vu0",
                         "-monitor", f"unix:{monitor},server=on,wait=off"]
                cmd = vmlib.qemu_command(
                    kernel.vmlinuz, initrd, args.memory, args.smp,
                    list(args.append) + [f"ph.vm=vm{i}", f"ph.run={run}"],
                    qargs + list(args.qemu_arg), args.cpu,
                    reboot=args.boots > 1)
                tag = f"vm{i}" if args.runs == 1 else f"vm{i}.run{run}"
                (workdir / f"qemu-command-{tag}").write_text(
                    " ".join(cmd) + "\n")
                hook = host_hook(repo, monitor)
                if args.verbose:
                    def echo(line, t=tag, h=hook):
                        h(line)
                        print(f"  {t}| {line}", file=sys.stderr, flush=True)
                jobs.append((tag, cmd, echo or hook))
            with concurrent.futures.ThreadPoolExecutor(len(jobs)) as ex:
                futs = [(tag, ex.submit(vmlib.run_qemu, cmd,
                                        workdir / f"console-{tag}.log",
                                        args.timeout, on_line=hook,
                                        max_boots=args.boots))
                        for tag, cmd, hook in jobs]
                runs += [(tag, f.result()) for tag, f in futs]
    finally:
        rc = daemon.stop()
    log = daemon.log.read_text(errors="replace")
    checks = []
    summary = {"name": args.name, "kernel": kernel.release, "vms": []}
    for tag, res in runs:
        con = vmlib.Console(res.lines)
        print(f"# {tag}: console log {workdir}/console-{tag}.log")
        report_metrics(res, con, prefix=f"{tag} ")
        checks += guest_checks(res, con, args.script, prefix=f"{tag}: ",
                               boots=args.boots)
        summary["vms"].append({"tag": tag, "wall_s": res.wall_s,
                               "boots": res.boots, "results": con.results,
                               "metrics": con.metrics})
    # The daemon: up all along, one request line per guest, clean exit.
    for i in range(args.vms):
        peer = f"peer=vsock:{daemon.cid(i)},vm=vm{i} op=GET"
        ok = peer in log
        checks.append((ok, f"daemon served vm{i} over vhost-user",
                       "" if ok else f"no '{peer}' line in {daemon.log}"))
    bad = [ln for ln in log.splitlines() if "ERROR: AddressSanitizer" in ln
           or "runtime error:" in ln or "LeakSanitizer" in ln]
    checks.append((not bad, "daemon had no sanitizer reports",
                   bad[0] if bad else ""))
    checks.append((rc == 0, "daemon exited 0 after SIGTERM",
                   "" if rc == 0 else f"exit status {rc}"))
    failed = print_tap(checks)
    summary["failed"] = failed
    summary["daemon_exit"] = rc
    summary["daemon_usage"] = daemon.usage
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    if failed:
        print("# last daemon log lines:")
        for line in log.splitlines()[-30:]:
            print(f"#   {line}")
        for tag, res in runs:
            print(f"# last console lines of {tag}:")
            for line in res.lines[-25:]:
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
    p.add_argument("--vhost-user", action="store_true",
                   help="the daemon runs on the host as each guest's "
                   "vhost-user vsock device (implies --porthole)")
    p.add_argument("--host-daemon", help="portholed to run on the host "
                   "(default: the static one)")
    p.add_argument("--vhost-socket", help="boot one guest on this vhost-user "
                   "socket of a portholed already running (implies "
                   "--vhost-user)")
    p.add_argument("--vms", type=int, default=1,
                   help="vhost-user: guests booted at once")
    p.add_argument("--runs", type=int, default=1,
                   help="vhost-user: boots in a row (QEMU reconnects)")
    p.add_argument("--boots", type=int, default=1,
                   help="vhost-user: boots per run (the guest reboots)")
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
    if getattr(args, "vhost_socket", None):
        args.vhost_user = True
    if getattr(args, "vhost_user", False):
        args.porthole = True
    try:
        return args.func(args)
    except VmError as e:
        # TAP readers see a bail-out; people see the reason.
        print(f"Bail out! {e}".split("\n")[0])
        say(str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
