"""hxfr-gpu as a real guest's HXFR server: issue #13's checks, run inside
vm-gpu's first boot (tests/gpu/vm_gpu.py calls Hxfr; no boot of its own),
against the real guest kernel's virtio-gpu driver:

  pull    hxfr-send --source drm in the guest (two virtio-gpu dumb buffers,
          resource ids from DRM_IOCTL_VIRTGPU_RESOURCE_INFO, no pixels
          sent) over virtio-serial (a chardev on hxfr-gpu's UNIX socket),
          then over user-mode TCP; the H.264 it got back decodes on the
          host, frame i at PSNR >= 40 dB against pattern frame i rendered
          here; hxfr-gpu copied no pixel from a socket
  push    a host subscriber of scanout 0 (no ENABLE: the guest drives it
          from boot) while a DRM client draws the desktop pattern on
          Virtual-1 with DIRTYFB: the last frame arrives at PSNR >= 40 dB;
          hxfr-gpu counts 0 whole-frame copies and held the guest's flushes
  static  the screen then stays still: no encode but keepalives while
          nothing is flushed, and a subscriber joining gets an IDR of what
          the scanout shows
  helix   ENABLE_SCANOUT 1 on a connection that then closes: the guest sees
          Virtual-2 connected at the size asked (hxfr-gpu rings QEMU's D-Bus
          display), draws on it; a subscriber on another connection gets it;
          DISABLE_SCANOUT from a third connection is answered and the guest
          sees Virtual-2 disconnected

The guest half is gpuhxfr_checks in tests/vm/guest/scenarios.sh; the host's
decoder is hxfr-gpu-vmcheck (tests/gpu/vmcheck.c).
"""

import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'vm'))
import vm  # noqa: E402

Failure = vm.Failure
log = vm.log

SIZE = (640, 360)  # the pull frames and Virtual-2's size: small for TCG
FRAMES = 8         # per pull run and per drawing
MAGIC = 0x52465848
ENABLE, DISABLE, SCANOUT_RESP = 0x20, 0x21, 0x22


def hxfr_msg(sock, mtype, payload):
    sock.sendall(struct.pack('<IBBHI', MAGIC, mtype, 0, 0, len(payload)) + payload)


def hxfr_recv(sock):
    def exact(n):
        b = b''
        while len(b) < n:
            c = sock.recv(n - len(b))
            if not c:
                raise Failure('hxfr-gpu closed the connection')
            b += c
        return b
    magic, mtype, _flags, _sid, size = struct.unpack('<IBBHI', exact(12))
    if magic != MAGIC:
        raise Failure('bad HXFR magic from hxfr-gpu')
    return mtype, exact(size)


def scanout_command(path, mtype, scanout, w=0, h=0):
    """ENABLE_SCANOUT or DISABLE_SCANOUT on a fresh connection, which then
    closes (as Helix's in-guest manager does): (success, connector)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(path)
    if mtype == ENABLE:
        hxfr_msg(s, ENABLE, struct.pack('<IIII', scanout, w, h, 60))
    else:
        hxfr_msg(s, DISABLE, struct.pack('<I', scanout))
    t, body = hxfr_recv(s)
    s.close()
    if t != SCANOUT_RESP or len(body) != 72:
        raise Failure(f'answer 0x{t:02x} ({len(body)} bytes) to scanout command 0x{mtype:02x}')
    sid, ok = struct.unpack('<II', body[:8])
    return ok == 1, body[8:].split(b'\0')[0].decode()


class Subscriber:
    """A plain SUBSCRIBE on its own connection that reads and counts what
    is pushed (a viewer left open on a still screen)."""

    def __init__(self, path, scanout):
        self.units = 0
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(60)
        self.s.connect(path)
        hxfr_msg(self.s, 0x30, struct.pack('<I', scanout))
        t, body = hxfr_recv(self.s)
        if t != 0x31 or struct.unpack('<II', body[:8])[1] != 1:
            raise Failure(f'SUBSCRIBE {scanout} refused')
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                t, _ = hxfr_recv(self.s)
                if t == 0x02:
                    self.units += 1
        except (Failure, OSError):
            pass

    def close(self):
        self.s.close()


class Outputs:
    """read_guest_outputs() over the console's @@HXFR-OUT@@ reports."""

    def __init__(self, console):
        self.c = console

    def output_reports(self):
        return [(int(n), d) for n, d in
                re.findall(r'@@HXFR-OUT (\d+) ([0-9a-f]{64})@@', self.c.text())]


class Hxfr:
    """#13's part of a vm_gpu.Run: what hxfr-gpu and QEMU get in addition,
    and the checks (run.ask/answer/marker/console/gpu_log are vm_gpu's)."""

    def __init__(self, run, send_bin, check_bin):
        self.run = run
        self.send_bin = send_bin
        self.check_bin = check_bin
        self.sock = run.p('hxfr.sock')
        self.port = None

    def guest_files(self):
        return {'hxfr-send': self.send_bin}

    def gpu_args(self):
        return ['--listen', f'unix:{self.sock}', '--listen', 'tcp:127.0.0.1:0',
                '--stats-interval', '1', '--keepalive-ms', '500', '--workers', '1']

    def cmdline(self):
        """The guest's settings; hxfr-gpu has said which TCP port it got."""
        m = re.search(r'serving HXFR on tcp:127\.0\.0\.1:(\d+)', self.stats()[0])
        if not m:
            raise Failure('hxfr-gpu did not say which TCP port it serves')
        self.port = int(m.group(1))
        return f' hxfr.port={self.port} hxfr.frames={FRAMES} hxfr.size={SIZE[0]}x{SIZE[1]}'

    def qemu_args(self):
        """On vm_gpu's virtio-serial bus: org.hxfr.0 (hxfr-gpu's UNIX socket,
        as a chardev) and org.hxfr.out (the pulled streams); user-mode
        networking for the TCP run."""
        return ['-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0',
                '-chardev', f'socket,id=hx,path={self.sock}',
                '-device', 'virtserialport,bus=vser0.0,chardev=hx,name=org.hxfr.0'] + \
            vm.out_port_devices(self.run.p('guest-out.bin'))

    def vmcheck(self, *args, timeout=300):
        r = subprocess.run([self.check_bin] + [str(a) for a in args], capture_output=True,
                           text=True, timeout=timeout)
        line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ''
        if r.returncode != 0:
            raise Failure(f'vmcheck {" ".join(map(str, args))} failed: {line} {r.stderr}')
        return line

    def watcher(self, scanout, index, first_idr=False):
        args = [self.check_bin, 'watch', f'unix:{self.sock}', scanout, index, 300]
        if first_idr:
            args.append('--first-idr')
        return subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def watched(self, proc, what):
        out, err = proc.communicate(timeout=330)
        log(f'{what}: subscriber saw {out.strip()} {err.strip()}')
        if proc.returncode != 0:
            raise Failure(f'{what}: the subscriber did not get the picture: {out} {err}')

    def stats(self, since=0, nth=-1):
        """The 'stats gpu:' and scanouts figures hxfr-gpu logged after byte
        since of its log: the latest (nth -1) or the nth; None while there
        are not that many."""
        self.run.gpu_log.flush()
        with open(self.run.p('hxfr-gpu.log'), errors='replace') as f:
            whole = f.read()
        text = whole[since:]
        # One statistics block: the scanouts line, then the gpu line.
        blocks = re.findall(r'stats scanouts: .*?(\d+) re-encodes.*\n.*stats gpu: (\d+) flushes, '
                            r'(\d+) encoded, (\d+) skipped, (\d+) damaged px; (\d+) frames from '
                            r'guest memory, (\d+) px converted in place, (\d+) bytes bounced, '
                            r'(\d+) whole-frame copies', text)
        lat = re.findall(r'stats gpu flush latency: .*', whole)
        n = len(blocks) if nth < 0 else nth + 1
        if n == 0 or len(blocks) < n:
            return whole, None, 0, None
        b = [int(x) for x in blocks[n - 1]]
        return whole, tuple(b[1:]), b[0], (lat[-1] if lat else None)

    def wait_stats(self, pred, what, timeout=120, since=0, nth=-1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, g, k, lat = self.stats(since, nth)
            if g and pred(g, k):
                return g, k, lat
            time.sleep(0.5)
        raise Failure(f'hxfr-gpu statistics never showed {what}: {self.stats(since, nth)[1:]}')

    def pull_checks(self):
        for via in ('serial', 'tcp'):
            _, self.run.pos = self.run.console.wait(r'@@HXFR-OUT ', self.run.pos, 600)
            res = re.findall(r'^\{.*"submitted".*\}$', self.run.console.text(), re.M)
            log(f'pull over {via}: guest hxfr-send {res[-1] if res else "(no summary)"}')
            if not res or '"mode": "resource"' not in res[-1] or '"errors": 0,' not in res[-1]:
                raise Failure(f'pull over {via}: hxfr-send did not send resource ids cleanly')
        chunks = vm.read_guest_outputs(Outputs(self.run.console), self.run.p('guest-out.bin'))
        if len(chunks) != 2:
            raise Failure(f'guest sent {len(chunks)} outputs, expected 2')
        for via, data in zip(('virtio-serial', 'user-mode TCP'), chunks):
            path = self.run.p(f'pull-{via.split()[-1].lower()}.h264')
            with open(path, 'wb') as f:
                f.write(data)
            line = self.vmcheck('file', path, FRAMES)
            log(f'pull over {via}: {FRAMES} frames from guest memory decoded, {line}')
        # Both runs' frames came from guest memory, no pixel crossed a socket.
        g, _, _ = self.wait_stats(lambda g, k: g[4] >= 2 * FRAMES, 'the pulled frames')
        deadline = time.monotonic() + 60
        while True:  # the TCP run's connection has closed (serial's stays)
            copied = re.findall(r'disconnected: .*\((\d+) requests, \d+ errors, (\d+) pixel '
                                r'bytes copied\)', self.stats()[0])
            if any(int(req) > FRAMES for req, _ in copied) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if not any(int(req) > FRAMES for req, _ in copied) or any(int(b) for _, b in copied):
            raise Failure(f'pull: hxfr-gpu disconnect lines (requests, pixel bytes): {copied}')
        log(f'pull: {g[4]} frames from guest memory, {g[5]} px converted in place, '
            f'{g[7]} whole-frame copies, 0 pixel bytes copied from the sockets')

    def checks(self):
        """Between the guest's "hxfr?" and its next question."""
        r = self.run
        r.answer('yes')
        self.pull_checks()
        r.boot_mark('boot 1: HXFR pull over virtio-serial and TCP checked')

        # Push: subscribed before the guest draws.
        r.ask('push')
        w = self.watcher(0, FRAMES - 1)
        r.answer('draw')
        r.marker(r'drawn [0-9a-f]{64}')
        self.watched(w, 'push on scanout 0')
        g, _, lat = self.wait_stats(lambda g, k: g[1] >= 1, 'an encoded flush',
                                    since=len(self.stats()[0]), nth=0)
        if g[7] != 0:
            raise Failure(f'hxfr-gpu made {g[7]} whole-frame copies')
        log(f'push: hxfr-gpu stats: {g[0]} flushes, {g[1]} encoded, {g[2]} skipped, {g[3]} '
            f'damaged px, {g[5]} px converted in place, {g[6]} bytes bounced, {g[7]} '
            f'whole-frame copies; {lat}')
        r.boot_mark('boot 1: HXFR push checked')

        # Static: nothing flushed for a while with a viewer open, only
        # keepalives. The guest's last flush was answered (the frame was
        # encoded) before 'drawn'; the second statistics line after this
        # point covers a whole interval that began after it.
        still = len(self.stats()[0])
        viewer = Subscriber(self.sock, 0)
        g1, k1, _ = self.wait_stats(lambda g, k: True, 'figures', since=still, nth=1)
        g2, k2, _ = self.wait_stats(lambda g, k: k >= k1 + 2, 'keepalives on the still screen',
                                    since=still)
        if g2[0] != g1[0] or g2[1] != g1[1]:
            raise Failure(f'the still screen was encoded from flushes: {g1} -> {g2}')
        log(f'static: {k2 - k1} keepalive re-encodes, no flush, no flush encoded '
            f'({g2[1]} encoded flushes before and after); the open viewer got {viewer.units} '
            'units')
        viewer.close()
        j = self.watcher(0, FRAMES - 1, first_idr=True)
        self.watched(j, 'a subscriber joining the still scanout 0')
        r.answer('go')  # the DRM client lets go of the mode
        r.boot_mark('boot 1: HXFR still screen checked')

        # Helix's flow.
        r.ask('helix')
        ok, name = scanout_command(self.sock, ENABLE, 1, SIZE[0], SIZE[1])
        if not ok or name != 'Virtual-2':
            raise Failure(f'ENABLE_SCANOUT 1 answered success {ok}, connector {name!r}')
        log(f'helix: ENABLE_SCANOUT 1 {SIZE[0]}x{SIZE[1]} answered {name}; that connection '
            'closed')
        r.answer('enabled')
        m = r.marker(r'plugged (\S+)')
        if m.group(1) != f'{SIZE[0]}x{SIZE[1]}':
            raise Failure(f'Virtual-2 prefers {m.group(1)}, not the size asked')
        w = self.watcher(1, FRAMES - 1)
        r.marker(r'drawn [0-9a-f]{64}')
        self.watched(w, 'helix: a subscriber of scanout 1 on another connection')
        ok, name = scanout_command(self.sock, DISABLE, 1)
        if not ok:
            raise Failure('DISABLE_SCANOUT 1 from a third connection was refused')
        log(f'helix: DISABLE_SCANOUT 1 from a third connection answered success ({name})')
        r.answer('go')
        r.marker(r'unplugged Virtual-2')
        log('helix: the guest sees Virtual-2 disconnected')
        r.boot_mark('boot 1: HXFR Helix flow checked')
