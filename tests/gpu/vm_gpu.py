#!/usr/bin/env python3
"""hxfr-gpu as the GPU of a real QEMU guest (meson test vm-gpu, suite slow).

One QEMU (10, TCG) with -device vhost-user-gpu-pci on hxfr-gpu, two boots:

  boot 1  the virtio-gpu driver binds; fbcon's picture, hashed in the guest,
          equals QMP screendumps; a DRM client (hxfr-gpu-guest: dumb buffer,
          DRM_IOCTL_VIRTGPU_RESOURCE_INFO, modeset, the desktop pattern
          frame after frame with DIRTYFB) and hxfr-gpu's in-place view of
          that resource are byte-identical, and so is the screendump;
          Virtual-2 is hot-plugged from the host (hxfr-gpu's control socket;
          hxfr-gpu rings QEMU's D-Bus display) and a modeset on it works;
          Virtual-1 is resized to 1024x768 and a modeset at the new
          preferred mode works; between the first DRM client and the
          hot-plug, hxfr-gpu as the guest's HXFR server (issue #13's
          checks, tests/gpu/vm_hxfr.py: pull from dumb buffers over
          virtio-serial and TCP, push with a host subscriber, the still
          screen, Helix's ENABLE/DISABLE flow on Virtual-2)
  QMP system_reset
  boot 2  the driver binds again, the fbcon and DRM checks pass again; then
          hxfr-gpu is killed: QEMU must stay up, and what the guest sees is
          recorded in the log

Uses tests/vm/vm.py for the kernel and the initramfs. Environment: HXFR_GPU
(the binary), HXFR_GPU_GUEST (hxfr-gpu-guest), HXFR_SEND (hxfr-send, for the
guest), HXFR_GPU_VMCHECK (hxfr-gpu-vmcheck), HXFR_VM_CACHE; exit 0 pass,
1 fail, 77 skip (no qemu-system-x86_64 or no D-Bus display in it).
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'vm'))
import vm  # noqa: E402
import vm_hxfr  # noqa: E402

SKIP = 77
Failure = vm.Failure
log = vm.log


class Console:
    """QEMU's serial console, read by a thread; waits for markers."""

    def __init__(self, proc, path):
        self.lines = []
        self.cond = threading.Condition()
        self.f = open(path, 'w')
        self.proc = proc
        self.t0 = time.monotonic()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode('utf-8', 'replace').rstrip('\r\n')
            with self.cond:
                self.lines.append(line)
                self.f.write(line + '\n')
                self.f.flush()
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait(self, pattern, start, timeout):
        """The first match of pattern in a line at index >= start: (match,
        index). Fails on timeout or when QEMU exits first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    m = rx.search(self.lines[i])
                    if m:
                        return m, i + 1
                    if 'Kernel panic' in self.lines[i]:
                        raise Failure('guest kernel panic')
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f'guest did not print /{pattern}/ within {timeout:.0f} s')
                if self.proc.poll() is not None:
                    raise Failure(f'QEMU exited ({self.proc.returncode}) before /{pattern}/')
                self.cond.wait(min(left, 1.0))

    def text(self):
        with self.cond:
            return '\n'.join(self.lines)


class Qmp:
    def __init__(self, path):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise Failure(f'QMP socket {path} never came up')
                time.sleep(0.1)
        self.f = self.s.makefile('rw')
        self.f.readline()
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        self.f.write(json.dumps({'execute': name, 'arguments': args}) + '\n')
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise Failure(f'QMP closed during {name}')
            r = json.loads(line)
            if 'return' in r:
                return r['return']
            if 'error' in r:
                raise Failure(f'QMP {name}: {r["error"]}')

    def close(self):
        self.s.close()


def control(path, command):
    """One command on hxfr-gpu's control socket: (text lines, data bytes)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    s.sendall((command + '\n').encode())
    buf = b''
    while True:
        nl = buf.find(b'\n')
        if nl >= 0 and buf.startswith(b'data '):
            want = nl + 1 + int(buf[5:nl])
            if len(buf) >= want:
                s.close()
                return '', buf[nl + 1:want]
        elif buf.endswith(b'ok\n') or (buf.startswith(b'error') and buf.endswith(b'\n')):
            s.close()
            text = buf.decode()
            if text.startswith('error'):
                raise Failure(f'control {command!r}: {text.strip()}')
            return text, b''
        chunk = s.recv(1 << 20)
        if not chunk:
            raise Failure(f'control socket closed during {command!r}')
        buf += chunk


def ppm_pixels(path):
    """(width, height, RGB bytes) of a binary PPM (what screendump writes)."""
    with open(path, 'rb') as f:
        data = f.read()
    m = re.match(rb'P6\s+(\d+)\s+(\d+)\s+255\s', data)
    if not m:
        raise Failure('screendump is not a P6 PPM')
    w, h = int(m.group(1)), int(m.group(2))
    return w, h, data[m.end():m.end() + w * h * 3]


def xrgb_to_rgb(raw):
    rgb = bytearray(len(raw) // 4 * 3)
    rgb[0::3] = raw[2::4]
    rgb[1::3] = raw[1::4]
    rgb[2::3] = raw[0::4]
    return bytes(rgb)


class Run:
    def __init__(self, work, cache, gpu_bin, guest_bin, send_bin, check_bin):
        self.work = work
        self.cache = cache
        self.gpu_bin = gpu_bin
        self.guest_bin = guest_bin
        self.p = lambda name: os.path.join(work, name)
        self.pos = 0
        self.timings = {}
        self.hxfr = vm_hxfr.Hxfr(self, send_bin, check_bin)

    def ask(self, what, timeout=300):
        _, self.pos = self.console.wait(rf'@@HXFR-GPU {re.escape(what)}\?@@', self.pos, timeout)

    def answer(self, text):
        self.ctl.sendall((text + '\n').encode())

    def marker(self, pattern, timeout=300):
        m, self.pos = self.console.wait(rf'@@HXFR-GPU {pattern}@@', self.pos, timeout)
        return m

    def screendump(self, head=0):
        path = self.p('shot.ppm')
        args = {'filename': path}
        if head:
            args.update(device='gpu0', head=head)
        self.qmp.cmd('screendump', **args)
        return ppm_pixels(path)

    def screen_equals(self, what, w, h, sha, head=0, timeout=60, crop=False):
        """Polls screendumps until one equals (size and SHA-256 of the RGB
        pixels): the guest's last update may still be on its way. With
        crop, the top-left w x h of a larger screen is compared (fbdev
        shows one framebuffer on every output, its visible part as large
        as the smallest mode)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            sw, sh, px = self.screendump(head)
            if crop and sw >= w and sh >= h and (sw, sh) != (w, h):
                px = b''.join(px[y * sw * 3:y * sw * 3 + w * 3] for y in range(h))
                sw, sh = w, h
            last = (sw, sh, hashlib.sha256(px).hexdigest())
            if last == (w, h, sha):
                log(f'{what}: screendump of head {head} equals the guest picture ({w}x{h})')
                return
            time.sleep(0.5)
        raise Failure(f'{what}: screendump {last[0]}x{last[1]} {last[2][:12]} never equals the '
                      f'guest picture {w}x{h} {sha[:12]}')

    def fbcon(self, phase):
        m = self.marker(r'fb (\d+) (\d+) ([0-9a-f]{64})')
        w, h, sha = int(m.group(1)), int(m.group(2)), m.group(3)
        self.screen_equals(f'fbcon ({phase})', w, h, sha, crop=True)
        self.ask('fb-checked')
        self.answer('ok')

    def draw(self, what, scanout, size=None):
        m = self.marker(r'drawn ([0-9a-f]{64})')
        res = [json.loads(line) for line in self.console.lines if line.startswith('{"connector"')]
        r = res[-1]
        log(f'{what}: guest {json.dumps(r)}')
        if r['dirty_errors']:
            raise Failure(f'{what}: DIRTYFB failed in the guest')
        if size and (r['width'], r['height']) != size:
            raise Failure(f'{what}: drew {r["width"]}x{r["height"]}, expected {size}')
        rid = r['resource_id']
        # The in-place view (hxfr-gpu reads the guest's backing where it is).
        _, raw = control(self.p('control.sock'), f'read {rid} inplace')
        if hashlib.sha256(raw).hexdigest() != m.group(1):
            raise Failure(f'{what}: hxfr-gpu\'s in-place view of resource {rid} differs from '
                          'what the guest drew')
        info, _ = control(self.p('control.sock'), f'resource {rid}')
        text, _ = control(self.p('control.sock'), 'info')
        if not re.search(rf'scanout {scanout} connected \S+ resource {rid} ', text):
            raise Failure(f'{what}: scanout {scanout} does not show resource {rid}:\n{text}')
        log(f'{what}: in-place view byte-identical ({len(raw)} bytes; {info.splitlines()[0]})')
        self.screen_equals(what, r['width'], r['height'],
                           hashlib.sha256(xrgb_to_rgb(raw)).hexdigest(), head=scanout)
        self.answer('go')  # the client may let go of the mode

    def boot_mark(self, name):
        self.timings[name] = time.monotonic() - self.t0

    def run(self):
        kdir = vm.fetch_kernel(self.cache)
        initrd = vm.build_initramfs(self.cache, kdir, {'hxfr-gpu-guest': self.guest_bin,
                                                        **self.hxfr.guest_files()})
        ctl_listen = socket.socket(socket.AF_UNIX)
        ctl_listen.bind(self.p('ctl.sock'))
        ctl_listen.listen(1)
        rfd, wfd = os.pipe()
        gpu_args = [self.gpu_bin, '--socket-path', self.p('gpu.sock'), '--control',
                    self.p('control.sock'), '--qemu-qmp', self.p('qmp-gpu.sock'),
                    '--max-outputs', '2', '--ready-fd', str(wfd), '-v'] + self.hxfr.gpu_args()
        log(f'host: {" ".join(gpu_args)}')
        self.gpu_log = open(self.p('hxfr-gpu.log'), 'w')
        self.gpu = subprocess.Popen(gpu_args, stdin=subprocess.DEVNULL, stdout=self.gpu_log,
                                    stderr=subprocess.STDOUT, pass_fds=[wfd],
                                    preexec_fn=vm.die_with_parent)
        os.close(wfd)
        with os.fdopen(rfd, 'rb') as r:
            if r.read(6) != b'ready\n':
                raise Failure(f'hxfr-gpu did not start (status {self.gpu.wait()})')
        cmdline = ('console=ttyS0 quiet loglevel=3 panic=-1 vt.global_cursor_default=0 '
                   'hxfr.scenario=gpu' + self.hxfr.cmdline())
        qemu = ['qemu-system-x86_64', '-accel', 'tcg', '-m', '512M', '-smp', '1', '-nodefaults',
                '-serial', 'stdio', '-monitor', 'none', '-display', 'dbus,p2p=yes',
                '-kernel', os.path.join(kdir, 'vmlinuz'), '-initrd', initrd, '-append', cmdline,
                '-object', 'memory-backend-memfd,id=mem,size=512M,share=on',
                '-numa', 'node,memdev=mem',
                '-chardev', f'socket,id=gpu,path={self.p("gpu.sock")}',
                '-device', 'vhost-user-gpu-pci,id=gpu0,chardev=gpu,max_outputs=2',
                '-qmp', f'unix:{self.p("qmp.sock")},server=on,wait=off',
                '-qmp', f'unix:{self.p("qmp-gpu.sock")},server=on,wait=off',
                '-device', 'virtio-serial-pci,id=vser0',
                '-chardev', f'socket,id=ctl,path={self.p("ctl.sock")}',
                '-device', 'virtserialport,bus=vser0.0,chardev=ctl,name=org.hxfr.ctl'] + \
            self.hxfr.qemu_args()
        log(f'qemu: {" ".join(qemu)}')
        self.t0 = time.monotonic()
        self.qemu = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=vm.die_with_parent)
        self.console = Console(self.qemu, self.p('console.log'))
        ctl_listen.settimeout(60)
        self.ctl, _ = ctl_listen.accept()
        ctl_listen.close()
        self.qmp = Qmp(self.p('qmp.sock'))

        # Boot 1.
        self.ask('phase')
        self.answer('a')
        m = self.marker(r'bound (\S+)')
        self.boot_mark('boot 1: driver bound')
        log(f'boot 1: virtio-gpu bound, Virtual-1 prefers {m.group(1)}')
        self.fbcon('boot 1')
        self.draw('boot 1 DRM client on Virtual-1', 0)
        self.boot_mark('boot 1: fbcon and DRM checked')
        self.ask('hxfr')
        self.hxfr.checks()
        self.ask('hotplug')
        control(self.p('control.sock'), 'scanout 1 1280x720')
        self.answer('plugged')
        m = self.marker(r'plugged (\S+)')
        log(f'hot-plug: card0-Virtual-2 connected, prefers {m.group(1)}')
        if m.group(1) != '1280x720':
            raise Failure(f'hot-plugged Virtual-2 prefers {m.group(1)}, not 1280x720')
        self.draw('hot-plugged Virtual-2', 1, (1280, 720))
        self.ask('resize')
        control(self.p('control.sock'), 'scanout 0 1024x768')
        self.answer('resized')
        self.draw('resized Virtual-1', 0, (1024, 768))
        self.boot_mark('boot 1: hot-plug and resize checked')

        # Reboot through QMP.
        self.ask('reboot')
        self.qmp.cmd('system_reset')
        self.ask('phase', timeout=400)
        self.answer('b')
        self.marker(r'bound (\S+)')
        self.boot_mark('boot 2: driver bound')
        log('boot 2: virtio-gpu bound again after system_reset')
        self.fbcon('boot 2')
        self.draw('boot 2 DRM client on Virtual-1', 0, (1024, 768))
        self.boot_mark('boot 2: fbcon and DRM checked')
        self.check_gpu_log()

        # hxfr-gpu killed mid-run.
        self.ask('kill')
        self.gpu.send_signal(signal.SIGKILL)
        self.gpu.wait()
        status = self.qmp.cmd('query-status')
        if status.get('status') != 'running' or self.qemu.poll() is not None:
            raise Failure(f'QEMU is not running after hxfr-gpu died: {status}')
        self.answer('killed')
        m = self.marker(r'after-kill (.*)', timeout=60)
        log(f'after the kill QEMU is {status["status"]}; the guest reports {m.group(1)}')
        dm = re.search(r'@@HXFR-LOG-BEGIN dmesg@@\n(.*?)@@HXFR-LOG-END', self.console.text(), re.S)
        if dm:
            for line in dm.group(1).strip().splitlines():
                log(f'guest dmesg after the kill: {line}')
        self.boot_mark('boot 2: kill recorded')
        self.qmp.cmd('query-status')  # still answering
        self.qmp.cmd('quit')
        self.qemu.wait(timeout=60)

    def check_gpu_log(self):
        self.gpu_log.flush()
        with open(self.p('hxfr-gpu.log'), errors='replace') as f:
            text = f.read()
        bad = [l for l in text.splitlines() if '[error]' in l or 'Sanitizer' in l]
        if bad:
            raise Failure('hxfr-gpu logged errors:\n' + '\n'.join(bad[:20]))
        if 'device reset' not in text or 'doorbell: connected' not in text:
            raise Failure('hxfr-gpu log lacks the device reset or the doorbell connection')

    def stop(self):
        for p in (getattr(self, 'qemu', None), getattr(self, 'gpu', None)):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


# Every wait above is a deadline for something that must happen, not a
# measurement: an idle machine runs the whole test in about 45 s; at a load
# average of 13 on 2 vCPUs (the full CI run) a TCG boot alone took 100-150 s.


def main():
    if shutil.which('qemu-system-x86_64') is None:
        print('SKIP: qemu-system-x86_64 is not installed (scripts/deps.sh installs QEMU 10)')
        return SKIP
    r = vm.run_cmd(['qemu-system-x86_64', '-display', 'help'])
    if 'dbus' not in r.stdout:
        print('SKIP: this QEMU has no D-Bus display (Debian: qemu-system-gui from '
              'bookworm-backports, which scripts/deps.sh installs)')
        return SKIP
    cache = os.environ.get('HXFR_VM_CACHE')
    gpu_bin = os.environ.get('HXFR_GPU')
    guest_bin = os.environ.get('HXFR_GPU_GUEST')
    send_bin = os.environ.get('HXFR_SEND')
    check_bin = os.environ.get('HXFR_GPU_VMCHECK')
    if not cache or not gpu_bin or not guest_bin or not send_bin or not check_bin:
        print('vm-gpu: HXFR_VM_CACHE, HXFR_GPU, HXFR_GPU_GUEST, HXFR_SEND and HXFR_GPU_VMCHECK '
              'must be set (meson test)')
        return 1

    def body(work):
        run = Run(work, cache, gpu_bin, guest_bin, send_bin, check_bin)
        try:
            run.run()
        finally:
            run.stop()
        for name, t in run.timings.items():
            log(f'timing: {name} at {t:.1f} s')

    return vm.run_in_workdir('gpu', body)


if __name__ == '__main__':
    sys.exit(main())
