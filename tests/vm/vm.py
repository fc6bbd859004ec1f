#!/usr/bin/env python3
"""End-to-end tests across a real QEMU guest boundary.

Builds (once, cached in the build folder) a guest from Debian's
linux-image-amd64 kernel and a busybox-static initramfs that carries the
guest binaries with every shared library they need, boots it under QEMU
(TCG), runs one scenario inside and checks on the host what came back.

  vm.py run SCENARIO    one meson test (exit 0 pass, 1 fail, 77 skip)
  vm.py shell           boot the same guest with the console on the terminal
  vm.py prepare         only fetch the kernel and build the initramfs

Inputs come from the environment (meson passes them):
  HXFR_VM_CACHE   folder for the kernel and initramfs (the build folder)
  HXFR_VM_PROBE   hxfr-vm-probe, the plumbing check program
  HXFRD, HXFR_SEND  the real binaries, when they are built
  HXFR_VM_TIMEOUT seconds before a guest counts as hung (default 150)
  HXFR_VM_KEEP=1  keep the temporary folder even when the test passes

A guest reports on its console between @@HXFR-...@@ markers (see
guest/init and guest/scenarios.sh); a kernel panic, a timeout or a missing
marker fails the test and prints the whole console.
"""

import argparse
import contextlib
import ctypes
import fcntl
import glob
import hashlib
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))

# Kernel modules the guest loads, in dependency order once resolved. Which of
# them are modules (and not built in) is read from the package itself.
WANTED_MODULES = [
    'virtio_pci', 'virtio_console', 'virtio_net',
    'vsock', 'vmw_vsock_virtio_transport_common', 'vsock_loopback',
    'vmw_vsock_virtio_transport',
    'virtio_gpu',
]
# Loaded only when the guest has a virtio-gpu device (see guest/init): these
# and whatever they need that the others do not.
GPU_MODULES = ['virtio_gpu']


def kernel_stamp_ok(stamp):
    """True if the unpacked kernel in the cache was made for the modules
    wanted now (the stamp's last line lists them)."""
    try:
        with open(stamp) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    return bool(lines) and lines[-1] == 'modules: ' + ' '.join(WANTED_MODULES)


class Failure(Exception):
    """A test failure with a message for the log."""


def log(msg):
    print(f'vm: {msg}', flush=True)


@contextlib.contextmanager
def locked(path):
    """Holds an exclusive lock on path: parallel tests share one cache."""
    with open(path, 'a+') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when this test process dies, so
    a test killed by meson's timeout leaves no QEMU or hxfrd behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def run_cmd(args, **kw):
    return subprocess.run(args, check=False, capture_output=True, text=True, **kw)


# --- kernel -----------------------------------------------------------------

def apt_download(name, dest):
    """apt-get download NAME into dest; runs apt-get update once if the
    package lists are missing or stale. Returns the .deb path."""
    for attempt in range(2):
        r = run_cmd(['apt-get', 'download', name], cwd=dest)
        debs = glob.glob(os.path.join(dest, f'{name}_*.deb'))
        if r.returncode == 0 and debs:
            return debs[0]
        if attempt == 0:
            log(f'apt-get download {name} failed ({r.stderr.strip()}); running apt-get update')
            run_cmd(['apt-get', 'update', '-qq'])
    raise Failure(f'cannot download {name}: {r.stderr.strip()}')


def elf_modinfo(path):
    """The key=value strings of a kernel module's .modinfo section."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:4] != b'\x7fELF' or data[4] != 2:
        raise Failure(f'{path}: not an ELF64 module')
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3a)

    def section(i):
        name, _type, _flags, _addr, off, size = struct.unpack_from(
            '<IIQQQQ', data, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    info = {}
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b'\0', stroff + name)
        if data[stroff + name:end] != b'.modinfo':
            continue
        for entry in data[off:off + size].split(b'\0'):
            key, sep, value = entry.decode('utf-8', 'replace').partition('=')
            if sep:
                info.setdefault(key, value)
    return info


def resolve_modules(moddir, wanted):
    """Maps wanted module names (plus dependencies) to .ko files, in load
    order; built-in modules are left out."""
    builtin = set()
    with open(os.path.join(moddir, 'modules.builtin')) as f:
        for line in f:
            builtin.add(os.path.basename(line.strip()).removesuffix('.ko').replace('-', '_'))
    files = {}
    for root, _dirs, names in os.walk(os.path.join(moddir, 'kernel')):
        for n in names:
            if n.endswith('.ko'):
                files[n[:-3].replace('-', '_')] = os.path.join(root, n)
    order = []

    def visit(name, chain):
        name = name.replace('-', '_')
        if name in order or name in builtin:
            return
        if name in chain:
            raise Failure(f'module dependency cycle: {chain + [name]}')
        if name not in files:
            raise Failure(f'kernel module {name} is neither built in nor in the package')
        deps = elf_modinfo(files[name]).get('depends', '')
        for d in filter(None, deps.split(',')):
            visit(d, chain + [name])
        order.append(name)

    for w in wanted:
        visit(w, [])
    return [(n, files[n]) for n in order]


def fetch_kernel(cache):
    """Downloads and unpacks the guest kernel once. Returns its folder,
    holding vmlinuz, config, modules/*.ko, modules.order and gpu-modules
    (the modules only a virtio-gpu device needs)."""
    kdir = os.path.join(cache, 'kernel')
    stamp = os.path.join(kdir, 'stamp')
    if kernel_stamp_ok(stamp):
        return kdir
    os.makedirs(cache, exist_ok=True)
    with locked(os.path.join(cache, 'kernel.lock')):
        if kernel_stamp_ok(stamp):
            return kdir
        t0 = time.monotonic()
        tmp = tempfile.mkdtemp(prefix='kernel-', dir=cache)
        try:
            meta = apt_download('linux-image-amd64', tmp)
            r = run_cmd(['dpkg-deb', '-f', meta, 'Depends'])
            m = re.search(r'(linux-image-[0-9][^\s,(]*)', r.stdout)
            if r.returncode != 0 or not m:
                raise Failure(f'linux-image-amd64 names no kernel package: {r.stdout}{r.stderr}')
            deb = apt_download(m.group(1), tmp)
            root = os.path.join(tmp, 'root')
            r = run_cmd(['dpkg-deb', '-x', deb, root])
            if r.returncode != 0:
                raise Failure(f'dpkg-deb -x {deb}: {r.stderr}')
            vmlinuz = glob.glob(os.path.join(root, 'boot', 'vmlinuz-*'))
            if len(vmlinuz) != 1:
                raise Failure(f'{deb} holds {len(vmlinuz)} kernels')
            version = os.path.basename(vmlinuz[0])[len('vmlinuz-'):]
            moddir = os.path.join(root, 'lib', 'modules', version)
            mods = resolve_modules(moddir, WANTED_MODULES)
            others = {n for n, _ in resolve_modules(
                moddir, [w for w in WANTED_MODULES if w not in GPU_MODULES])}
            gpu_only = [n for n, _ in mods if n not in others]
            if os.path.exists(kdir):
                shutil.rmtree(kdir)
            os.makedirs(os.path.join(kdir, 'modules'))
            shutil.copy(vmlinuz[0], os.path.join(kdir, 'vmlinuz'))
            shutil.copy(os.path.join(root, 'boot', f'config-{version}'),
                        os.path.join(kdir, 'config'))
            for name, path in mods:
                shutil.copy(path, os.path.join(kdir, 'modules', name + '.ko'))
            with open(os.path.join(kdir, 'modules.order'), 'w') as f:
                f.write(''.join(n + '\n' for n, _ in mods))
            with open(os.path.join(kdir, 'gpu-modules'), 'w') as f:
                f.write(''.join(n + '\n' for n in gpu_only))
            with open(stamp, 'w') as f:
                f.write(f'{os.path.basename(deb)}\n{version}\nmodules: {" ".join(WANTED_MODULES)}\n')
            log(f'kernel {version} unpacked in {time.monotonic() - t0:.1f} s '
                f'({len(mods)} modules: {" ".join(n for n, _ in mods)})')
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return kdir


# --- initramfs --------------------------------------------------------------

class Cpio:
    """Writes a cpio archive in the "newc" format the kernel unpacks. Every
    entry is owned by root, whoever builds it; no device nodes are needed
    because the guest mounts devtmpfs."""

    def __init__(self, f):
        self.f = f
        self.ino = 1
        self.seen = set()

    def _entry(self, name, mode, data=b'', nlink=1):
        name = name.lstrip('/')
        hdr = '070701' + ''.join(f'{v:08x}' for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        self.ino += 1
        out = hdr.encode() + name.encode() + b'\0'
        out += b'\0' * (-len(out) % 4)
        self.f.write(out)
        self.f.write(data)
        self.f.write(b'\0' * (-len(data) % 4))

    def dir(self, name):
        name = name.strip('/')
        if not name or name in self.seen:
            return
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        self._entry(name, 0o040755, nlink=2)

    def file(self, name, data, mode=0o644):
        name = name.strip('/')
        if name in self.seen:
            return
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        name = name.strip('/')
        if name in self.seen:
            return
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        self._entry(name, 0o120777, target.encode())

    def finish(self):
        self._entry('TRAILER!!!', 0, nlink=1)


def ldd_closure(binary):
    """Every shared object binary needs, the dynamic loader included, as
    absolute paths (empty for a static binary)."""
    r = run_cmd(['ldd', binary])
    if r.returncode != 0:
        if 'not a dynamic executable' in r.stdout + r.stderr:
            return []
        raise Failure(f'ldd {binary}: {r.stderr}')
    libs = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if 'not found' in line:
            raise Failure(f'{binary}: missing library: {line}')
        m = re.match(r'\S+ => (/\S+)', line) or re.match(r'(/\S+) \(', line)
        if m:
            libs.append(m.group(1))
    return libs


def add_file_with_links(cpio, path, depth=0):
    """Adds path at the location it is named by; when path is a symlink (as
    library sonames and the loader in /lib64 are), the link and whatever it
    names go in, so that the guest resolves it the same way."""
    if depth > 8:
        raise Failure(f'too many levels of symbolic links at {path}')
    if os.path.islink(path):
        target = os.readlink(path)
        cpio.symlink(path, target)
        if not os.path.isabs(target):
            target = os.path.join(os.path.dirname(path), target)
        add_file_with_links(cpio, os.path.normpath(target), depth + 1)
        return
    with open(path, 'rb') as f:
        cpio.file(path, f.read(), os.stat(path).st_mode & 0o777)


def build_initramfs(cache, kdir, binaries):
    """Builds (or reuses) an initramfs holding busybox, the kernel modules,
    the guest scripts and binaries (name -> path) with their libraries.
    The image is rebuilt when any input is newer. Returns its path."""
    busybox = shutil.which('busybox') or '/bin/busybox'
    scripts = [os.path.join(HERE, 'guest', 'init'), os.path.join(HERE, 'guest', 'scenarios.sh')]
    inputs = ([busybox, os.path.abspath(__file__), os.path.join(kdir, 'stamp')] + scripts
              + list(binaries.values()))
    for p in inputs:
        if not os.path.exists(p):
            raise Failure(f'initramfs input missing: {p}')
    key = hashlib.sha256(repr(sorted(binaries.items())).encode()).hexdigest()[:12]
    image = os.path.join(cache, f'initramfs-{key}.cpio')
    newest = max(os.stat(p).st_mtime for p in inputs)
    if os.path.exists(image) and os.stat(image).st_mtime >= newest:
        return image
    with locked(os.path.join(cache, 'initramfs.lock')):
        if os.path.exists(image) and os.stat(image).st_mtime >= newest:
            return image
        t0 = time.monotonic()
        tmp = image + '.tmp'
        with open(tmp, 'wb') as f:
            cpio = Cpio(f)
            for d in ('bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'tmp', 'run',
                      'etc', 'root', 'hxfr/bin'):
                cpio.dir(d)
            with open(busybox, 'rb') as b:
                cpio.file('bin/busybox', b.read(), 0o755)
            for lib in ldd_closure(busybox):
                add_file_with_links(cpio, lib)
            with open(scripts[0], 'rb') as s:
                cpio.file('init', s.read(), 0o755)
            with open(scripts[1], 'rb') as s:
                cpio.file('hxfr/scenarios.sh', s.read(), 0o644)
            cpio.file('etc/passwd', b'root:x:0:0:root:/root:/bin/sh\n')
            cpio.file('etc/group', b'root:x:0:\n')
            with open(os.path.join(kdir, 'modules.order'), 'rb') as m:
                order = m.read()
            cpio.file('etc/hxfr/modules', order)
            with open(os.path.join(kdir, 'gpu-modules'), 'rb') as m:
                cpio.file('etc/hxfr/gpu-modules', m.read())
            for name in order.decode().split():
                with open(os.path.join(kdir, 'modules', name + '.ko'), 'rb') as m:
                    cpio.file(f'lib/modules/hxfr/{name}.ko', m.read())
            for name, path in sorted(binaries.items()):
                with open(path, 'rb') as b:
                    cpio.file(f'hxfr/bin/{name}', b.read(), 0o755)
                for lib in ldd_closure(path):
                    add_file_with_links(cpio, lib)
            cpio.finish()
        os.replace(tmp, image)
        log(f'initramfs {os.path.basename(image)}: {os.stat(image).st_size >> 20} MiB '
            f'in {time.monotonic() - t0:.1f} s')
    return image


# --- running a guest --------------------------------------------------------

class Guest:
    """One QEMU run: console captured line by line (with the time each
    marker appeared), a hard timeout, and the parsed reports."""

    def __init__(self, work, kernel, initrd, params, devices, memory='512M'):
        self.work = work
        self.console_path = os.path.join(work, 'console.log')
        self.cmdline = ('console=ttyS0 quiet loglevel=3 panic=-1 '
                        + ' '.join(f'hxfr.{k}={v}' for k, v in params.items()))
        self.args = ['qemu-system-x86_64', '-accel', 'tcg', '-m', memory, '-smp', '1',
                     '-nodefaults', '-nographic', '-no-reboot', '-serial', 'stdio',
                     '-kernel', kernel, '-initrd', initrd, '-append', self.cmdline] + devices
        self.lines = []
        self.marks = {}
        self.elapsed = 0.0
        self.status = None

    def run(self, timeout):
        t0 = time.monotonic()
        with open(self.console_path, 'w') as console:
            proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    preexec_fn=die_with_parent)

            def reader():
                for raw in proc.stdout:
                    line = raw.decode('utf-8', 'replace').rstrip('\r\n')
                    self.lines.append(line)
                    console.write(line + '\n')
                    m = re.search(r'@@HXFR-([A-Z]+)', line)
                    if m and m.group(1) not in self.marks:
                        self.marks[m.group(1)] = time.monotonic() - t0

            th = threading.Thread(target=reader, daemon=True)
            th.start()
            try:
                self.status = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.status = None
            th.join(timeout=5)
        self.elapsed = time.monotonic() - t0

    def console(self):
        return '\n'.join(self.lines)

    def check_boot(self):
        """Raises Failure unless the guest booted, ran its scenario and
        powered off by itself."""
        text = self.console()
        if 'Kernel panic' in text:
            raise Failure('guest kernel panic')
        if self.status is None:
            raise Failure(f'guest did not power off within the timeout ({self.elapsed:.0f} s)')
        if 'INIT' not in self.marks:
            raise Failure(f'guest /init never ran (qemu exit status {self.status})')
        if 'DONE' not in self.marks:
            raise Failure(f'guest stopped before its scenario finished (qemu status {self.status})')

    def status_code(self):
        m = re.findall(r'@@HXFR-STATUS (\d+)@@', self.console())
        return int(m[-1]) if m else None

    def results(self):
        """The JSON objects printed between @@HXFR-BEGIN@@ and @@HXFR-END@@."""
        out = []
        inside = False
        for line in self.lines:
            if '@@HXFR-BEGIN@@' in line:
                inside = True
            elif '@@HXFR-END' in line:
                inside = False
            elif inside and line.lstrip().startswith('{'):
                try:
                    out.append(json.loads(line.strip()))
                except json.JSONDecodeError as e:
                    raise Failure(f'guest printed bad JSON ({e}): {line}') from e
        return out

    def output_reports(self):
        """(size, sha256) of each output the guest announced, in order."""
        return [(int(n), h) for n, h in
                re.findall(r'@@HXFR-OUT (\d+) ([0-9a-f]{64})@@', self.console())]


def out_port_devices(path):
    """A virtio-serial bus whose port org.hxfr.out writes into a host file."""
    return ['-chardev', f'file,id=hxfrout,path={path}',
            '-device', 'virtserialport,bus=vser0.0,chardev=hxfrout,name=org.hxfr.out']


def serial_bus():
    return ['-device', 'virtio-serial-pci,id=vser0']


def read_guest_outputs(guest, path):
    """The outputs the guest sent one after the other through org.hxfr.out,
    each checked against the size and SHA-256 it announced on the console."""
    reps = guest.output_reports()
    if not reps:
        raise Failure('guest announced no output on org.hxfr.out')
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) != sum(n for n, _ in reps):
        raise Failure(f'org.hxfr.out: host has {len(data)} bytes, the guest sent '
                      f'{sum(n for n, _ in reps)}')
    chunks = []
    off = 0
    for n, digest in reps:
        chunk = data[off:off + n]
        if hashlib.sha256(chunk).hexdigest() != digest:
            raise Failure(f'org.hxfr.out: output {len(chunks)} ({n} bytes) arrived damaged')
        chunks.append(chunk)
        off += n
    return chunks


class EchoServer:
    """Host end of the plumbing checks: echoes every byte on each accepted
    connection (the QEMU chardev, or the guest's TCP connection)."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.listen(4)
        self.bytes = 0
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn):
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                self.bytes += len(data)
                conn.sendall(data)

    def close(self):
        self.sock.close()


def probe_expected(count, block):
    """The bytes hxfr-vm-probe sends (and so must get back): see
    pattern_byte() in probe.c."""
    out = bytearray()
    for b in range(count):
        out += bytes(((i * 31) ^ (b * 131) ^ (i >> 8)) & 0xff for i in range(block))
    return bytes(out)


# --- scenarios --------------------------------------------------------------

class Ctx:
    """What a scenario gets: the work folder, the cache and the binaries."""

    def __init__(self, work, cache, timeout):
        self.work = work
        self.cache = cache
        self.timeout = timeout
        self.frames = 30
        self.size = '640x360'
        self.block = 65536
        self.kdir = None

    def env_binary(self, var, required=True):
        path = os.environ.get(var, '')
        if not path or not os.path.exists(path):
            if required:
                raise Failure(f'{var} is not set to a built binary ({path!r})')
            return None
        return path

    def guest(self, binaries, params, devices, memory='512M'):
        self.kdir = self.kdir or fetch_kernel(self.cache)
        initrd = build_initramfs(self.cache, self.kdir, binaries)
        g = Guest(self.work, os.path.join(self.kdir, 'vmlinuz'), initrd, params, devices, memory)
        log(f'qemu: {" ".join(g.args)}')
        g.run(self.timeout)
        log(f'guest ran {g.elapsed:.1f} s (init at {g.marks.get("INIT", -1):.1f} s, '
            f'scenario done at {g.marks.get("DONE", -1):.1f} s)')
        return g


def check_probe_echo(results, uri_prefix, chunk, count, block):
    res = [r for r in results if r.get('mode') == 'echo' and r['uri'].startswith(uri_prefix)]
    if not res:
        raise Failure(f'guest printed no probe result for {uri_prefix}')
    r = res[-1]
    log(f'guest result: {json.dumps(r)}')
    if r['error'] != 0 or r['sent'] != count or r['received'] != count or r['mismatches']:
        raise Failure(f'echo through {uri_prefix} failed: {r}')
    if chunk != probe_expected(count, block):
        raise Failure(f'{uri_prefix}: the bytes the guest received are not the bytes it sent')


IVSHMEM_SIZE = 4 << 20


@contextlib.contextmanager
def shm_file(ctx, tag):
    """A fresh IVSHMEM_SIZE file in /dev/shm (removed afterwards)."""
    path = os.path.join('/dev/shm', f'hxfr-vm-{tag}-{os.getpid()}-{os.path.basename(ctx.work)}')
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, IVSHMEM_SIZE)
        yield path, fd
    finally:
        os.close(fd)
        os.unlink(path)


def ivshmem_devices(path):
    return ['-object', f'memory-backend-file,id=hm,share=on,mem-path={path},size={IVSHMEM_SIZE}',
            '-device', 'ivshmem-plain,memdev=hm']


def scenario_plumbing(ctx):
    """The transports and the shared memory without any hxfr code, in one
    boot: a byte stream echoed through a virtio-serial port, TCP over
    user-mode networking and AF_VSOCK loopback, and a greeting exchanged
    through the ivshmem BAR. Tells a broken VM set-up from a broken hxfr."""
    out_path = os.path.join(ctx.work, 'guest-out.bin')
    sock_path = os.path.join(ctx.work, 'echo.sock')
    us = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    us.bind(sock_path)
    serial_echo = EchoServer(us)
    ts = socket.socket()
    ts.bind(('127.0.0.1', 0))
    port = ts.getsockname()[1]
    tcp_echo = EchoServer(ts)
    try:
        with shm_file(ctx, 'plumbing') as (shm, fd):
            os.pwrite(fd, b'hxfr-ivshmem-host\0', 0)
            g = ctx.guest(probe_binaries(ctx),
                          {'scenario': 'plumbing', 'frames': ctx.frames, 'block': ctx.block,
                           'port': port, 'vsock_port': 5000},
                          ['-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0']
                          + ivshmem_devices(shm) + serial_bus()
                          + ['-chardev', f'socket,id=c0,path={sock_path}',
                             '-device', 'virtserialport,bus=vser0.0,chardev=c0,name=org.hxfr.0']
                          + out_port_devices(out_path))
            answer = os.pread(fd, 64, 4096)
    finally:
        serial_echo.close()
        tcp_echo.close()
    g.check_boot()
    chunks = read_guest_outputs(g, out_path)
    if len(chunks) != 4:
        raise Failure(f'guest sent {len(chunks)} outputs, expected 4')
    results = g.results()
    check_probe_echo(results, 'serial:', chunks[0], ctx.frames, ctx.block)
    check_probe_echo(results, 'tcp:', chunks[1], ctx.frames, ctx.block)
    check_probe_echo(results, 'vsock:', chunks[2], ctx.frames, ctx.block)
    log(f'host echoed {serial_echo.bytes} bytes through the chardev, {tcp_echo.bytes} over TCP')
    res = [r for r in results if r.get('mode') == 'ivshmem']
    if not res or res[-1]['error'] != 0 or not res[-1]['greeting_ok']:
        raise Failure(f'guest could not use the ivshmem BAR: {res}')
    log(f'guest result: {json.dumps(res[-1])}')
    if res[-1]['size'] != IVSHMEM_SIZE:
        raise Failure(f'BAR 2 is {res[-1]["size"]} bytes, the backing file {IVSHMEM_SIZE}')
    if not answer.startswith(b'hxfr-ivshmem-guest\0'):
        raise Failure(f'the guest answer is not in the host file: {answer!r}')
    if not chunks[3].startswith(b'hxfr-ivshmem-host\0'):
        raise Failure('the guest did not read the host greeting')
    if g.status_code() != 0:
        raise Failure(f'guest scenario exited with {g.status_code()}')


class HostDaemon:
    """The real hxfrd on the host, its log in WORK/hxfrd.log. It reports
    readiness on --ready-fd with the URI it actually listens on (the port
    the kernel chose for tcp:127.0.0.1:0)."""

    def __init__(self, binary, work, listens, extra=()):
        self.log_path = os.path.join(work, 'hxfrd.log')
        rfd, wfd = os.pipe()
        self.args = [binary]
        for uri in listens:
            self.args += ['--listen', uri]
        self.args += ['--ready-fd', str(wfd)] + list(extra)
        log(f'host: {" ".join(self.args)}')
        self.logf = open(self.log_path, 'w')
        try:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self.logf,
                                         stderr=subprocess.STDOUT, pass_fds=[wfd],
                                         preexec_fn=die_with_parent)
        finally:
            os.close(wfd)
        ready = b''
        deadline = time.monotonic() + 20
        with os.fdopen(rfd, 'rb', buffering=0) as r:
            while time.monotonic() < deadline:
                if not select.select([r], [], [], 0.5)[0]:
                    continue
                chunk = r.read(4096)
                if not chunk:
                    break
                ready += chunk
        self.uris = ready.decode(errors='replace').split()
        if not self.uris:
            self.stop()
            raise Failure(f'hxfrd did not report readiness (exit status {self.proc.returncode})')
        log(f'host hxfrd listens on {" ".join(self.uris)}')

    def stop(self):
        """Stops hxfrd with SIGTERM; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.logf.closed:
            self.logf.close()
        return self.proc.returncode

    def log_text(self):
        with open(self.log_path, errors='replace') as f:
            return f.read()


def log_errors(text):
    """Lines of an hxfrd log that report an error or a crash: the [error]
    level, hxfrd's own fatal messages, sanitizer and crash reports."""
    bad = re.compile(r'\[error\]|^hxfrd: |Sanitizer|runtime error|Segmentation fault|Aborted')
    return [line for line in text.splitlines() if bad.search(line)]


def check_h264(data, work, frames, size):
    """Decodes the Annex B stream with ffprobe: it must hold exactly frames
    decodable pictures of the given size, without decoder errors."""
    path = os.path.join(work, 'received.h264')
    with open(path, 'wb') as f:
        f.write(data)
    if shutil.which('ffprobe') is None:
        raise Failure('ffprobe is not installed (Debian package ffmpeg)')
    r = run_cmd(['ffprobe', '-v', 'error', '-f', 'h264', '-count_frames', '-select_streams', 'v:0',
                 '-show_entries', 'stream=codec_name,width,height,nb_read_frames',
                 '-of', 'json', path])
    if r.returncode != 0 or r.stderr.strip():
        raise Failure(f'ffprobe found errors in the returned H.264: {r.stderr.strip()}')
    streams = json.loads(r.stdout).get('streams', [])
    if not streams:
        raise Failure('the returned H.264 holds no video stream')
    st = streams[0]
    got = (int(st.get('nb_read_frames', 0)), f'{st.get("width")}x{st.get("height")}')
    log(f'host decoded {got[0]} frames of {got[1]} ({len(data)} bytes of H.264)')
    if got != (frames, size):
        raise Failure(f'returned H.264 decodes to {got[0]} frames of {got[1]}, '
                      f'expected {frames} of {size}')


def check_send_summary(g, frames):
    """The --json summary of hxfr-send: every frame submitted and encoded."""
    res = [r for r in g.results() if 'submitted' in r]
    if not res:
        raise Failure('guest printed no hxfr-send summary')
    r = res[-1]
    log(f'guest hxfr-send: {json.dumps(r)}')
    if r.get('frames') != frames or r.get('submitted') != frames or r.get('errors') != 0:
        raise Failure(f'hxfr-send did not get every frame back: {r}')
    if r.get('keyframes', 0) < 1:
        raise Failure(f'hxfr-send received no keyframe: {r}')


def probe_binaries(ctx):
    return {'hxfr-vm-probe': ctx.env_binary('HXFR_VM_PROBE')}


def send_binaries(ctx, with_daemon=False):
    b = probe_binaries(ctx)
    b['hxfr-send'] = ctx.env_binary('HXFR_SEND')
    if with_daemon:
        b['hxfrd'] = ctx.env_binary('HXFRD')
    return b


def finish_hxfr(ctx, g, out_path):
    """Common checks of an hxfr scenario once the guest is off: the guest
    sent and got back every frame, and the H.264 it received decodes to
    that many pictures on the host."""
    g.check_boot()
    check_send_summary(g, ctx.frames)
    if g.status_code() != 0:
        raise Failure(f'guest scenario exited with {g.status_code()}')
    chunks = read_guest_outputs(g, out_path)
    if len(chunks) != 1:
        raise Failure(f'guest sent {len(chunks)} outputs, expected 1')
    check_h264(chunks[0], ctx.work, ctx.frames, ctx.size)


def check_daemon_log(text, status, where):
    errors = log_errors(text)
    if errors:
        raise Failure(f'{where} hxfrd logged errors:\n' + '\n'.join(errors[:20]))
    if status != 0:
        raise Failure(f'{where} hxfrd exited with {status} on SIGTERM, not 0')


def scenario_serial(ctx):
    """hxfr-send in the guest writes to a virtio-serial port whose host end
    is a QEMU chardev connected to hxfrd's UNIX socket."""
    sock = os.path.join(ctx.work, 'hxfrd.sock')
    out_path = os.path.join(ctx.work, 'guest-out.bin')
    daemon = HostDaemon(ctx.env_binary('HXFRD'), ctx.work, [f'unix:{sock}'])
    try:
        g = ctx.guest(send_binaries(ctx),
                      {'scenario': 'serial', 'frames': ctx.frames, 'size': ctx.size},
                      serial_bus() + [
                          '-chardev', f'socket,id=c0,path={sock}',
                          '-device', 'virtserialport,bus=vser0.0,chardev=c0,name=org.hxfr.0',
                      ] + out_port_devices(out_path))
    finally:
        status = daemon.stop()
    finish_hxfr(ctx, g, out_path)
    check_daemon_log(daemon.log_text(), status, 'host')


def scenario_tcp(ctx):
    """hxfr-send in the guest connects to tcp:10.0.2.2:PORT, which QEMU's
    user-mode network forwards to hxfrd on the host's 127.0.0.1:PORT; hxfrd
    picks the port (tcp:127.0.0.1:0) and reports it."""
    out_path = os.path.join(ctx.work, 'guest-out.bin')
    daemon = HostDaemon(ctx.env_binary('HXFRD'), ctx.work, ['tcp:127.0.0.1:0'])
    try:
        m = [re.match(r'tcp:127\.0\.0\.1:(\d+)$', u) for u in daemon.uris]
        if not any(m):
            raise Failure(f'hxfrd reported no TCP endpoint: {daemon.uris}')
        port = int(next(x for x in m if x).group(1))
        g = ctx.guest(send_binaries(ctx),
                      {'scenario': 'tcp', 'frames': ctx.frames, 'size': ctx.size, 'port': port},
                      ['-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0']
                      + serial_bus() + out_port_devices(out_path))
    finally:
        status = daemon.stop()
    finish_hxfr(ctx, g, out_path)
    check_daemon_log(daemon.log_text(), status, 'host')


def scenario_ivshmem(ctx):
    """Zero copy across the guest boundary: hxfr-send writes a ring into
    the ivshmem BAR and renders each frame into a slot; only the requests
    and the H.264 travel over virtio-serial. hxfrd maps the same backing
    file (--shm vm0=PATH) and encodes from it, so its log must show the
    connection without a single pixel byte copied."""
    sock = os.path.join(ctx.work, 'hxfrd.sock')
    out_path = os.path.join(ctx.work, 'guest-out.bin')
    with shm_file(ctx, 'ring') as (shm, _fd):
        daemon = HostDaemon(ctx.env_binary('HXFRD'), ctx.work, [f'unix:{sock}'],
                            ['--shm', f'vm0={shm}'])
        try:
            g = ctx.guest(send_binaries(ctx),
                          {'scenario': 'ivshmem', 'frames': ctx.frames, 'size': ctx.size,
                           'region': 'vm0'},
                          ivshmem_devices(shm) + serial_bus() + [
                              '-chardev', f'socket,id=c0,path={sock}',
                              '-device', 'virtserialport,bus=vser0.0,chardev=c0,name=org.hxfr.0',
                          ] + out_port_devices(out_path))
        finally:
            status = daemon.stop()
    finish_hxfr(ctx, g, out_path)
    summary = [r for r in g.results() if 'submitted' in r][-1]
    if summary.get('mode') != 'shm-region':
        raise Failure(f'hxfr-send did not use the shared-memory region: {summary}')
    text = daemon.log_text()
    check_daemon_log(text, status, 'host')
    copied = [int(n) for n in re.findall(r'disconnected: .*?(\d+) pixel bytes copied', text)]
    if not copied:
        raise Failure('hxfrd logged no client disconnect with its copy count')
    if any(copied):
        raise Failure(f'hxfrd copied pixel bytes despite the shared ring: {copied}')
    log('hxfrd encoded every frame from the ivshmem ring: 0 pixel bytes copied')


def scenario_vsock(ctx):
    """hxfrd and hxfr-send both in the guest, over AF_VSOCK loopback (the
    host kernel here has no vhost-vsock; see docs/vm.md for a real host)."""
    out_path = os.path.join(ctx.work, 'guest-out.bin')
    g = ctx.guest(send_binaries(ctx, with_daemon=True),
                  {'scenario': 'vsock', 'frames': ctx.frames, 'size': ctx.size, 'port': 5000},
                  serial_bus() + out_port_devices(out_path), memory='1G')
    finish_hxfr(ctx, g, out_path)
    m = re.search(r'@@HXFR-LOG-BEGIN hxfrd@@\n(.*?)@@HXFR-LOG-END hxfrd (\d+)@@', g.console(),
                  re.S)
    if not m:
        raise Failure('guest printed no hxfrd log')
    check_daemon_log(m.group(1), int(m.group(2)), 'guest')


SCENARIOS = {
    'plumbing': scenario_plumbing,
    'serial': scenario_serial,
    'tcp': scenario_tcp,
    'vsock': scenario_vsock,
    'ivshmem': scenario_ivshmem,
}


# --- commands ---------------------------------------------------------------

def cache_dir():
    cache = os.environ.get('HXFR_VM_CACHE')
    if not cache:
        raise Failure('HXFR_VM_CACHE is not set (run through meson test or scripts/vm-shell.sh)')
    os.makedirs(cache, exist_ok=True)
    return cache


def run_in_workdir(name, body):
    """Runs body(work) in a fresh work folder. A Failure (or an OSError, a
    subprocess timeout) prints FAIL, the guest console and the tail of
    every other *.log there, keeps the folder and returns 1; otherwise it
    prints PASS with the time taken, removes the folder (kept with
    HXFR_VM_KEEP=1) and returns 0."""
    work = tempfile.mkdtemp(prefix=f'hxfr-vm-{name}-')
    t0 = time.monotonic()
    try:
        body(work)
    except (Failure, OSError, subprocess.TimeoutExpired) as e:
        print(f'FAIL {name}: {e}')
        console = os.path.join(work, 'console.log')
        if os.path.exists(console):
            print('----- guest console -----')
            with open(console, errors='replace') as f:
                sys.stdout.write(f.read())
            print('----- end of console -----')
        for extra in sorted(glob.glob(os.path.join(work, '*.log'))):
            if extra != console:
                print(f'----- {os.path.basename(extra)} -----')
                with open(extra, errors='replace') as f:
                    sys.stdout.write(f.read()[-20000:])
        print(f'work folder kept: {work}')
        return 1
    log(f'PASS {name} in {time.monotonic() - t0:.1f} s')
    if os.environ.get('HXFR_VM_KEEP') == '1':
        log(f'work folder kept: {work}')
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def cmd_run(name):
    if shutil.which('qemu-system-x86_64') is None:
        print('SKIP: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)')
        return SKIP
    timeout = float(os.environ.get('HXFR_VM_TIMEOUT', '150'))
    return run_in_workdir(name, lambda work: SCENARIOS[name](Ctx(work, cache_dir(), timeout)))


def cmd_shell(binaries, args):
    """Boots the test guest with its console on this terminal and the same
    devices as the tests: org.hxfr.0 (to a host UNIX socket), org.hxfr.out
    (to a host file), user-mode networking and an ivshmem region."""
    if shutil.which('qemu-system-x86_64') is None:
        print('vm: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)')
        return 1
    cache = cache_dir()
    kdir = fetch_kernel(cache)
    image = build_initramfs(cache, kdir, binaries)
    work = tempfile.mkdtemp(prefix='hxfr-vm-shell-')
    out = args.out or os.path.join(work, 'guest-out.bin')
    shm = args.shm or os.path.join('/dev/shm', f'hxfr-vm-shell-{os.getuid()}')
    if not os.path.exists(shm):
        with open(shm, 'wb') as f:
            f.truncate(IVSHMEM_SIZE)
    hxfrd = None
    serial = args.serial
    tcp = None
    if serial is None and 'hxfrd' in binaries:
        # One host hxfrd for every path: the serial port's socket, TCP for
        # the user-mode network, and the ivshmem file as region vm0.
        serial = os.path.join(work, 'hxfrd.sock')
        hxfrd = HostDaemon(binaries['hxfrd'], work, [f'unix:{serial}', 'tcp:127.0.0.1:0'],
                           ['--shm', f'vm0={shm}'])
        tcp = next((u for u in hxfrd.uris if u.startswith('tcp:')), None)
    port0 = (['-chardev', f'socket,id=c0,path={serial}'] if serial
             else ['-chardev', 'null,id=c0'])
    qemu = ['qemu-system-x86_64', '-accel', 'tcg', '-m', '1G', '-smp', '1', '-nodefaults',
            '-nographic', '-no-reboot', '-serial', 'mon:stdio', '-kernel',
            os.path.join(kdir, 'vmlinuz'), '-initrd', image,
            '-append', 'console=ttyS0 quiet loglevel=3 panic=-1',
            '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0',
            '-object', f'memory-backend-file,id=hm,share=on,mem-path={shm},size={IVSHMEM_SIZE}',
            '-device', 'ivshmem-plain,memdev=hm'] + serial_bus() + port0 + [
            '-device', 'virtserialport,bus=vser0.0,chardev=c0,name=org.hxfr.0'] + \
        out_port_devices(out) + args.qemu_args
    print(f'vm: org.hxfr.0 -> {serial or "(not connected)"}; org.hxfr.out -> {out}; '
          f'ivshmem -> {shm}')
    if hxfrd is not None:
        port = tcp.rsplit(':', 1)[1] if tcp else 'PORT'
        print(f'vm: host hxfrd log: {work}/hxfrd.log. In the guest, for example:\n'
              '  hxfr-send --connect serial:/dev/virtio-ports/org.hxfr.0 --size 640x360 '
              '--frames 30 --output /tmp/out.h264\n'
              f'  . /hxfr/scenarios.sh; net_up; hxfr-send --connect tcp:10.0.2.2:{port} '
              '--size 640x360 --frames 30\n'
              '  hxfr-send --connect serial:/dev/virtio-ports/org.hxfr.0 --shm-region vm0 '
              '--size 640x360 --frames 30')
    print('vm: leave with poweroff -f (or Ctrl-A x)')
    try:
        rc = subprocess.call(qemu)
    finally:
        if hxfrd is not None:
            hxfrd.stop()
    print(f'vm: qemu exited with {rc}; files are in {work}')
    return rc


def cmd_prepare(binaries):
    cache = cache_dir()
    kdir = fetch_kernel(cache)
    image = build_initramfs(cache, kdir, binaries)
    print(image)
    return 0


def env_binaries():
    """The guest binaries that exist, from the environment."""
    binaries = {}
    for var, name in (('HXFR_VM_PROBE', 'hxfr-vm-probe'), ('HXFRD', 'hxfrd'),
                      ('HXFR_SEND', 'hxfr-send')):
        if os.environ.get(var) and os.path.exists(os.environ[var]):
            binaries[name] = os.environ[var]
    return binaries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('run', help='run one scenario as a test')
    r.add_argument('scenario', choices=sorted(SCENARIOS))
    sub.add_parser('prepare', help='fetch the kernel, build the initramfs')
    sh = sub.add_parser('shell', help='boot the guest interactively')
    sh.add_argument('--serial', help='UNIX socket for org.hxfr.0 (default: a fresh hxfrd)')
    sh.add_argument('--out', help='host file behind org.hxfr.out')
    sh.add_argument('--shm', help='ivshmem backing file (default /dev/shm/hxfr-vm-shell-UID)')
    sh.add_argument('qemu_args', nargs='*', help='extra QEMU arguments (after --)')
    args = ap.parse_args()
    try:
        if args.cmd == 'run':
            return cmd_run(args.scenario)
        if args.cmd == 'shell':
            return cmd_shell(env_binaries(), args)
        return cmd_prepare(env_binaries())
    except Failure as e:
        print(f'vm: {e}')
        return 1


if __name__ == '__main__':
    sys.exit(main())
