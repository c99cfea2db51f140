"""Building blocks for Porthole's VM tests.

A VM test boots a Debian cloud kernel under QEMU (TCG, no KVM, no network
card, no host vsock device) with an initramfs that the test builds itself,
runs shell scripts inside the guest against the vsock loopback transport and
reads their verdicts from the serial console.

The pieces are independent so that other VM tests (for example a vhost-user
vsock device) can reuse them with their own QEMU arguments and files:

  fetch_kernel()   downloads and unpacks the kernel package once per version
  Kernel           finds vmlinuz and modules with their dependencies
  Initramfs        writes a cpio "newc" archive from files, trees and bytes
  run_qemu()       boots it with a hard time limit and logs the console
  parse_console()  turns PH-* lines into results, metrics and script states

Nothing here opens an AF_VSOCK socket: all vsock traffic happens inside the
guest.
"""

import fcntl
import gzip
import lzma
import os
import re
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KERNEL_META_PACKAGE = "linux-image-cloud-amd64"


class VmError(Exception):
    """A setup problem that stops a VM test before or after the guest ran."""


def say(msg):
    """Diagnostics go to stderr so stdout stays valid TAP."""
    print(f"vm: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Kernel download and cache
# ---------------------------------------------------------------------------


def default_cache_dir():
    """$PORTHOLE_VM_CACHE, else $XDG_CACHE_HOME/porthole-vm, else ~/.cache."""
    env = os.environ.get("PORTHOLE_VM_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "porthole-vm"


def _run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def _apt_kernel_package():
    """Return (package, version) of the image the metapackage points at, or
    None when apt knows no candidate (no package lists yet)."""
    r = _run(["apt-cache", "show", "--no-all-versions", KERNEL_META_PACKAGE])
    if r.returncode != 0:
        return None
    m = re.search(r"^Depends:.*?\b(linux-image-[0-9][^\s,(]*-cloud-amd64)"
                  r"\s*\(=\s*([^)\s]+)\)", r.stdout, re.M)
    if not m:
        return None
    return m.group(1), m.group(2)


def _apt_update():
    """apt-get update, when we may; True when it ran and succeeded."""
    if os.geteuid() != 0:
        return False
    say("running apt-get update")
    r = _run(["apt-get", "update", "-q"])
    if r.returncode != 0:
        say("apt-get update failed: " + r.stderr.strip()[-500:])
    return r.returncode == 0


def _cached_kernels(kdir):
    """Complete cached kernels, newest first."""
    if not kdir.is_dir():
        return []
    done = [d for d in kdir.iterdir() if (d / "complete").is_file()]
    return sorted(done, key=lambda d: d.stat().st_mtime, reverse=True)


def fetch_kernel(cache_dir=None):
    """Return a Kernel for Debian's cloud kernel, downloading it on first use.

    The image package is fetched with `apt-get download` and unpacked with
    `dpkg -x` (never installed) into CACHE/kernel/PACKAGE_VERSION, which later
    runs reuse.  $PORTHOLE_VM_KERNEL_DIR points at an already unpacked tree
    instead.  Without apt (offline) the newest cached kernel is used.
    """
    override = os.environ.get("PORTHOLE_VM_KERNEL_DIR")
    if override:
        return Kernel(Path(override))

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    kdir = cache / "kernel"
    kdir.mkdir(parents=True, exist_ok=True)

    # Tests may start in parallel: one downloads, the others wait.
    with open(kdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _apt_kernel_package()
        if found and (kdir / f"{found[0]}_{found[1]}" / "complete").is_file():
            return Kernel(kdir / f"{found[0]}_{found[1]}" / "root")
        # No candidate (no package lists yet) or a download that fails
        # (lists older than the mirror) both get one apt-get update.
        err = None
        for attempt in (1, 2):
            if found is not None:
                try:
                    return _install_kernel(kdir, *found)
                except VmError as e:
                    err = e
            if attempt == 2 or not _apt_update():
                break
            found = _apt_kernel_package()
        cached = _cached_kernels(kdir)
        if cached:
            why = err or f"apt knows no candidate for {KERNEL_META_PACKAGE}"
            say(f"cannot fetch the current kernel ({why}); using cached "
                f"{cached[0].name}")
            return Kernel(cached[0] / "root")
        if err is not None:
            raise err
        raise VmError(
            "apt-cache finds no candidate for %s and no kernel is cached "
            "in %s; run `apt-get update` as root (or set "
            "PORTHOLE_VM_KERNEL_DIR to an unpacked kernel package)"
            % (KERNEL_META_PACKAGE, kdir))


def _install_kernel(kdir, pkg, version):
    """Downloads pkg=version into kdir unless complete; drops older ones."""
    dest = kdir / f"{pkg}_{version}"
    if not (dest / "complete").is_file():
        _download_kernel(pkg, version, kdir, dest)
        for old in kdir.iterdir():
            if old.is_dir() and old != dest and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
    return Kernel(dest / "root")


def _download_kernel(pkg, version, kdir, dest):
    """apt-get download + dpkg -x into a temp dir, then rename into place."""
    if shutil.which("dpkg") is None or shutil.which("apt-get") is None:
        raise VmError("apt-get and dpkg are needed to fetch the test kernel")
    say(f"fetching kernel {pkg} {version} into {dest}")
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=kdir))
    try:
        # `_apt` cannot write into root-owned temp dirs; apt then warns and
        # downloads unsandboxed, which is harmless but noisy.
        os.chmod(tmp, 0o755)
        r = _run(["apt-get", "download", "-q", f"{pkg}={version}"], cwd=tmp)
        debs = list(tmp.glob("*.deb"))
        if r.returncode != 0 or len(debs) != 1:
            raise VmError(f"apt-get download {pkg}={version} failed: "
                          + r.stderr.strip()[-800:])
        root = tmp / "root"
        r = _run(["dpkg", "-x", str(debs[0]), str(root)])
        if r.returncode != 0:
            raise VmError("dpkg -x failed: " + r.stderr.strip()[-800:])
        debs[0].unlink()
        Kernel(root)  # validates vmlinuz and modules before we keep it
        (tmp / "complete").write_text(f"{pkg} {version}\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    say("kernel fetched in %.1f s" % (time.monotonic() - t0))


def _elf_modinfo(data):
    """Return the key=value pairs of an ELF64 object's .modinfo section."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise VmError("not a little-endian ELF64 kernel module")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if shoff == 0 or shentsize < 64 or shoff + shnum * shentsize > len(data):
        raise VmError("module has a bad section table")

    def section(i):
        off = shoff + i * shentsize
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", data, off)
        return name, offset, size

    _, stroff, strsize = section(shstrndx)
    for i in range(shnum):
        name, offset, size = section(i)
        if name >= strsize:
            continue
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            info = {}
            for item in data[offset:offset + size].split(b"\0"):
                key, sep, val = item.partition(b"=")
                if sep:
                    info.setdefault(key.decode(), []).append(val.decode())
            return info
    return {}


class Kernel:
    """An unpacked kernel package: a vmlinuz and its modules tree."""

    def __init__(self, root):
        self.root = Path(root)
        images = sorted((self.root / "boot").glob("vmlinuz-*"))
        moddirs = sorted((self.root / "lib/modules").glob("*/kernel"))
        if len(images) != 1 or len(moddirs) != 1:
            raise VmError(f"{self.root} does not look like one unpacked "
                          "kernel package (boot/vmlinuz-*, lib/modules/*)")
        self.vmlinuz = images[0]
        self.release = moddirs[0].parent.name
        self._modules = {}
        for p in moddirs[0].rglob("*.ko*"):
            name = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", p.name)
            self._modules[name.replace("-", "_")] = p

    def module_file(self, name):
        path = self._modules.get(name.replace("-", "_"))
        if path is None:
            raise VmError(f"kernel {self.release} has no module {name}")
        return path

    def module_bytes(self, name):
        """The module's ELF image, decompressed on the host if needed."""
        path = self.module_file(name)
        raw = path.read_bytes()
        if path.name.endswith(".xz"):
            return lzma.decompress(raw)
        if path.name.endswith(".gz"):
            return gzip.decompress(raw)
        if path.name.endswith(".zst"):
            r = subprocess.run(["zstd", "-dc", str(path)],
                               stdout=subprocess.PIPE, check=False)
            if r.returncode != 0:
                raise VmError(f"zstd cannot decompress {path}")
            return r.stdout
        return raw

    def module_depends(self, name):
        info = _elf_modinfo(self.module_bytes(name))
        deps = ",".join(info.get("depends", []))
        return [d for d in deps.split(",") if d]

    def resolve_modules(self, names):
        """Names plus everything they depend on, dependencies first, else in
        the order given (so insmod in this order succeeds)."""
        order, state = [], {}

        def visit(n, chain):
            n = n.replace("-", "_")
            if state.get(n) == "done":
                return
            if state.get(n) == "open":
                raise VmError("module dependency loop: "
                              + " -> ".join(chain + [n]))
            state[n] = "open"
            for d in self.module_depends(n):
                visit(d, chain + [n])
            state[n] = "done"
            order.append(n)

        for n in names:
            visit(n, [])
        return order


# ---------------------------------------------------------------------------
# Initramfs
# ---------------------------------------------------------------------------


class Initramfs:
    """An in-memory cpio newc archive; parents are created automatically.

    Paths are absolute guest paths.  Files are added as bytes or host paths
    (read when written).  Adding the same path twice replaces the entry.
    """

    def __init__(self, mtime=None):
        self._entries = {}
        # A real time rather than 0, so tests can tell a kept mtime from a
        # zeroed one.
        self.mtime = int(time.time()) if mtime is None else int(mtime)

    @staticmethod
    def _norm(path):
        p = os.path.normpath("/" + str(path).lstrip("/"))
        if p == "/":
            raise VmError("cannot add the root directory itself")
        return p[1:]

    def _parents(self, rel):
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self._entries:
                self._entries[d] = (stat.S_IFDIR | 0o755, None, 0)

    def add_dir(self, path, mode=0o755):
        rel = self._norm(path)
        self._parents(rel)
        self._entries[rel] = (stat.S_IFDIR | mode, None, 0)

    def add_file(self, path, data, mode=0o644):
        """data is bytes, str or a host Path (read at write time)."""
        rel = self._norm(path)
        self._parents(rel)
        if isinstance(data, str):
            data = data.encode()
        self._entries[rel] = (stat.S_IFREG | mode, data, 0)

    def add_host_file(self, path, src, mode=None):
        src = Path(src)
        if not src.is_file():
            raise VmError(f"{src} is not a file")
        if mode is None:
            mode = stat.S_IMODE(src.stat().st_mode)
        self.add_file(path, src, mode)

    def add_symlink(self, path, target):
        rel = self._norm(path)
        self._parents(rel)
        self._entries[rel] = (stat.S_IFLNK | 0o777, str(target).encode(), 0)

    def add_chardev(self, path, major, minor, mode=0o600):
        rel = self._norm(path)
        self._parents(rel)
        self._entries[rel] = (stat.S_IFCHR | mode, None,
                              (major << 8) | minor)

    def add_tree(self, dst, src):
        """Copies a host directory tree (files, dirs, symlinks) to dst."""
        src = Path(src)
        self.add_dir(dst, stat.S_IMODE(src.stat().st_mode))
        for p in sorted(src.rglob("*")):
            g = f"{dst}/{p.relative_to(src)}"
            if p.is_symlink():
                self.add_symlink(g, os.readlink(p))
            elif p.is_dir():
                self.add_dir(g, stat.S_IMODE(p.stat().st_mode))
            elif p.is_file():
                self.add_host_file(g, p)

    def add_busybox(self, busybox="/bin/busybox"):
        """A static busybox at /bin/busybox with a symlink per applet."""
        bb = Path(busybox)
        if not bb.is_file():
            raise VmError(f"{bb} not found: install the busybox-static "
                          "package")
        if not is_static_elf(bb):
            raise VmError(f"{bb} is not statically linked: install "
                          "busybox-static")
        self.add_host_file("/bin/busybox", bb, 0o755)
        r = _run([str(bb), "--list-full"])
        if r.returncode != 0:
            raise VmError(f"{bb} --list-full failed")
        for applet in r.stdout.split():
            if applet != "bin/busybox":
                self.add_symlink("/" + applet, "/bin/busybox")
        # The kernel hands init /dev/console before devtmpfs is mounted.
        self.add_chardev("/dev/console", 5, 1)
        for d in ("proc", "sys", "tmp", "run", "root", "etc"):
            self.add_dir("/" + d)

    def add_modules(self, kernel, names, listfile="/etc/ph/modules"):
        """Adds the modules and their dependencies as /lib/modules/NAME.ko
        and writes their load order, one name per line, to listfile."""
        order = kernel.resolve_modules(names)
        for n in order:
            self.add_file(f"/lib/modules/{n}.ko", kernel.module_bytes(n))
        self.add_file(listfile, "".join(n + "\n" for n in order))
        return order

    def write(self, out):
        """Writes the archive (uncompressed newc) and returns its size."""
        out = Path(out)
        tmp = out.with_name(out.name + ".tmp")
        ino = 1
        with open(tmp, "wb") as f:
            # Directories sort before their contents by plain path order.
            for rel in sorted(self._entries):
                mode, data, rdev = self._entries[rel]
                if isinstance(data, Path):
                    data = data.read_bytes()
                _cpio_entry(f, rel, mode, data or b"", rdev, ino, self.mtime)
                ino += 1
            _cpio_entry(f, "TRAILER!!!", 0, b"", 0, 0, 0)
            size = f.tell()
        os.rename(tmp, out)
        return size


def _cpio_entry(f, name, mode, data, rdev, ino, mtime):
    nb = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, mtime,
              len(data),
              0, 0, rdev >> 8, rdev & 0xFF, len(nb), 0)
    hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
    f.write(hdr + nb)
    f.write(b"\0" * (-(len(hdr) + len(nb)) % 4))
    f.write(data)
    f.write(b"\0" * (-len(data) % 4))


def is_static_elf(path):
    """True for an ELF executable without a PT_INTERP (dynamic loader)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        if len(table) >= (i + 1) * phentsize:
            ptype, = struct.unpack_from("<I", table, i * phentsize)
            if ptype == 3:  # PT_INTERP
                return False
    return True


# ---------------------------------------------------------------------------
# QEMU
# ---------------------------------------------------------------------------


class RunResult:
    """What one guest boot produced."""

    def __init__(self):
        self.lines = []          # console lines, without line ends
        self.exit_code = None    # QEMU's exit status (None when killed)
        self.timed_out = False
        self.no_poweroff = False  # PH-DONE seen but QEMU stayed up
        self.wall_s = 0.0
        self.userspace_s = None  # host seconds from QEMU start to PH-BOOT
        self.panic = False
        self.boots = 0           # PH-BOOT lines (more than one: rebooted)
        self.too_many_boots = False


def qemu_command(vmlinuz, initrd, memory_mib=1536, smp=2, append=(),
                 extra_args=(), cpu="qemu64", reboot=False):
    """The QEMU command line: TCG only, no NIC, no default devices, the
    serial console on stdio, and no reboot so a guest panic ends QEMU
    (reboot=True lets a guest reboot; run_qemu's max_boots bounds it).

    The plain qemu64 CPU model is the default because TCG runs the guest's
    memcpy several times faster without AVX (vsock loopback throughput is
    about 5x that under -cpu max)."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise VmError("qemu-system-x86_64 not found: install the "
                      "qemu-system-x86 package")
    cmdline = ["console=ttyS0", "panic=-1", "oops=panic", "quiet",
               "loglevel=3", "rdinit=/init"] + list(append)
    return [qemu, "-accel", "tcg", "-cpu", cpu, "-m", str(memory_mib),
            "-smp", str(smp), "-nodefaults", "-no-user-config",
            "-display", "none", "-monitor", "none", "-serial", "stdio",
            "-nic", "none"] + ([] if reboot else ["-no-reboot"]) + [
            "-kernel", str(vmlinuz), "-initrd", str(initrd),
            "-append", " ".join(cmdline)] + list(extra_args)


def run_qemu(cmd, log_path, timeout_s, on_line=None, poweroff_grace_s=20,
             max_boots=1):
    """Runs QEMU, copying the console to log_path as it comes.

    Kills QEMU (and reports timed_out) when timeout_s passes, and kills it
    poweroff_grace_s after PH-DONE if it does not exit by itself.  on_line,
    when given, sees each console line as it arrives.  A guest that boots
    more than max_boots times (a reboot loop) is killed too.
    """
    res = RunResult()
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        buf = b""
        eof = False
        try:
            while not eof:
                now = time.monotonic()
                if now >= deadline:
                    if res.lines and res.lines[-1].startswith("PH-DONE"):
                        res.no_poweroff = True
                    else:
                        res.timed_out = True
                    break
                if not sel.select(timeout=min(1.0, deadline - now)):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    eof = True
                log.write(chunk)
                log.flush()
                buf += chunk
                parts = buf.split(b"\n")
                buf = b"" if eof else parts.pop()
                for raw in parts:
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    res.lines.append(line)
                    if line.startswith("PH-BOOT"):
                        res.boots += 1
                        if res.userspace_s is None:
                            res.userspace_s = time.monotonic() - t0
                        if res.boots > max_boots:
                            res.too_many_boots = True
                            eof = True
                    if "Kernel panic" in line:
                        res.panic = True
                    if line.startswith("PH-DONE"):
                        deadline = min(deadline,
                                       time.monotonic() + poweroff_grace_s)
                    if on_line:
                        on_line(line)
        finally:
            sel.close()
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
            proc.stdout.close()
    res.exit_code = None if (res.timed_out or res.no_poweroff) \
        else proc.returncode
    res.wall_s = time.monotonic() - t0
    return res


# ---------------------------------------------------------------------------
# Console protocol
# ---------------------------------------------------------------------------
#
# The guest prints, each on a line of its own:
#   PH-BOOT uptime=SECONDS
#   PH-SCRIPT name=NAME status=start|end [rc=N]
#   PH-RESULT name=NAME status=pass|fail [key=value ...] [msg=free text]
#   PH-METRIC name=NAME key=value ...
#   PH-DONE
# A value runs to the next space; msg= takes the rest of the line.

_RECORD = re.compile(r"(PH-(?:BOOT|SCRIPT|RESULT|METRIC|DONE))\b(.*)$")


def parse_fields(text):
    fields = {}
    rest = text.strip()
    while rest:
        if rest.startswith("msg="):
            fields["msg"] = rest[4:]
            break
        tok, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        key, sep, val = tok.partition("=")
        if sep:
            fields[key] = val
    return fields


class Console:
    """The PH-* records of one boot, in order."""

    def __init__(self, lines):
        self.boot = None
        self.done = False
        self.results = []   # dicts with name, status, ...
        self.metrics = []
        self.scripts = {}   # name -> {"start": bool, "rc": int or None}
        for line in lines:
            # Kernel messages can land in front of a record on the same
            # line; the record itself still starts with PH-.
            m = _RECORD.search(line)
            if not m:
                continue
            kind, fields = m.group(1), parse_fields(m.group(2))
            if kind == "PH-BOOT":
                self.boot = fields
            elif kind == "PH-DONE":
                self.done = True
            elif kind == "PH-RESULT":
                self.results.append(fields)
            elif kind == "PH-METRIC":
                self.metrics.append(fields)
            elif kind == "PH-SCRIPT":
                s = self.scripts.setdefault(fields.get("name", "?"),
                                            {"start": False, "rc": None})
                if fields.get("status") == "start":
                    s["start"] = True
                elif fields.get("status") == "end":
                    try:
                        s["rc"] = int(fields.get("rc", ""))
                    except ValueError:
                        s["rc"] = -1

