#!/usr/bin/env python3
"""hxfr-view in a real browser: headless Chromium loads the viewer page,
which decodes the test double's stream with WebCodecs. Through the page's
test hook (?report=...) it checks:

  - at least 60 frames decoded, the canvas shows the pattern's known colours
    at the positions lib/pattern's hxfr_pattern_probe names (view-pattern);
  - a forced decoder reset makes the page ask for a keyframe, the request
    reaches the host double as KEYFRAME_REQ, and decoding resumes;
  - hostile WebSocket clients sending garbage, oversized and binary messages
    afterwards are closed while the page keeps decoding on its one
    connection;
  - when the gateway restarts, the page reconnects and decodes again.

With --e2e the stream comes from the real hxfrd, fed by view-publish, instead
of the test double. Skips (exit 77) only when chromium is not installed.
Bounded in time; kills everything it started.
"""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEADLINE_S = 100         # the whole test, well inside meson's 120 s
START_S = 30             # for one helper process to say it is ready
WIDTH, HEIGHT = 640, 360
FRAMES = 75
RESET_AT = 30
TOLERANCE = 40           # per channel: YUV 4:2:0 round trip and colour matrix
# --e2e: the real hxfrd and a publisher (view-publish) instead of the double.
E2E = '--e2e' in sys.argv[1:]


def log(msg):
    print('# ' + msg, flush=True)


def fail(msg):
    log('FAIL: ' + msg)
    raise SystemExit(1)


def find_chromium():
    for name in (os.environ.get('CHROMIUM') or '', 'chromium', 'chromium-browser'):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Procs:
    """Everything started here, stopped in reverse order at the end."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 5
        for p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()


def wait_ready(fd, needle, what):
    """Reads fd (a pipe) until a line containing needle arrives; fails on
    EOF or after START_S. A socket file exists from bind(), before
    listen(): only the process itself can say it accepts connections."""
    end = time.monotonic() + START_S
    out = b''
    while needle.encode() not in out:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            fail('%s not ready within %d s' % (what, START_S))
        chunk = os.read(fd, 4096)
        if not chunk:
            fail('%s exited before it was ready: %r' % (what, out[-200:]))
        out += chunk
    return out.decode(errors='replace')


def kill_leftovers(marker):
    """Chromium helpers that left the process group: find them by the
    unique --user-data-dir on their command line and kill them by pid."""
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def log_count(path, prefix):
    try:
        with open(path) as f:
            return sum(1 for line in f if line.startswith(prefix))
    except FileNotFoundError:
        return 0


def ws_handshake(port, path='/ws/0'):
    s = socket.create_connection(('127.0.0.1', port), timeout=5)
    s.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n'
               'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
               'Sec-WebSocket-Version: 13\r\n\r\n' % (path, port)).encode())
    head = b''
    while b'\r\n\r\n' not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    if not head.startswith(b'HTTP/1.1 101'):
        s.close()
        return None
    return s


def masked_frame(opcode, payload):
    key = b'\x11\x22\x33\x44'
    n = len(payload)
    if n < 126:
        hdr = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        hdr = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, 'big')
    else:
        hdr = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, 'big')
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def closed_by_peer(s, timeout=10):
    """True once the gateway closes the connection: EOF, a reset, or a
    close frame (the server's frames are parsed; they are never masked)."""
    end = time.monotonic() + timeout
    buf = b''
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            return True
        if not d:
            return True
        buf += d
        while len(buf) >= 2:
            n = buf[1] & 0x7f
            h = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, h = int.from_bytes(buf[2:4], 'big'), 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, h = int.from_bytes(buf[2:10], 'big'), 10
            if len(buf) < h + n:
                break
            if buf[0] & 0x0f == 8:
                return True
            buf = buf[h + n:]


def hostile_clients(port):
    """Each misbehaving client must be closed by the gateway."""
    cases = [
        ('garbage', b'\xde\xad\xbe\xef' * 64),
        ('oversized text', masked_frame(1, b'k' * 200000)),
        ('binary message', masked_frame(2, b'keyframe')),
        ('unknown command', masked_frame(1, b'rm -rf /')),
    ]
    for name, data in cases:
        s = ws_handshake(port)
        if s is None:
            fail('hostile client %s: handshake refused' % name)
        try:
            s.sendall(data)
        except OSError:
            pass
        if not closed_by_peer(s):
            fail('the gateway kept a client that sent %s' % name)
        s.close()
        log('hostile client (%s) was closed' % name)


def main():
    chromium = find_chromium()
    if not chromium:
        print('chromium is not installed: skipping the browser test')
        return 77
    for var in ('HXFR_VIEW', 'VIEW_PATTERN') + (('HXFRD', 'VIEW_PUBLISH') if E2E
                                                  else ('VIEW_FAKEHOST',)):
        if not os.environ.get(var):
            fail('%s is not set (run through meson test)' % var)
    start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix='hxfr-view-browser-')
    procs = Procs()
    server = None
    profile = os.path.join(tmp, 'chromium-profile')
    try:
        return run(chromium, tmp, profile, procs, start, lambda s: None)
    finally:
        procs.stop_all()
        kill_leftovers(profile)
        shutil.rmtree(tmp, ignore_errors=True)
        log('done in %.1f s' % (time.monotonic() - start))


def start_host_double(procs, tmp, sock, hostlog, start):
    """The test double: the pattern through the encoders module, or an
    H.264 file made with the ffmpeg CLI when it has no encoder."""
    host_src = ['--pattern', 'desktop', '--size', '%dx%d' % (WIDTH, HEIGHT)]
    if os.environ.get('VIEW_FAKEHOST_ENCODER') != '1':
        ffmpeg = os.environ.get('FFMPEG') or shutil.which('ffmpeg')
        if not ffmpeg:
            fail('neither the encoders module nor ffmpeg is available')
        h264 = os.path.join(tmp, 'pattern.h264')
        render = subprocess.Popen([os.environ['VIEW_PATTERN'], 'render', 'desktop',
                                   str(WIDTH), str(HEIGHT), '120'], stdout=subprocess.PIPE)
        subprocess.run([ffmpeg, '-nostdin', '-loglevel', 'error', '-f', 'rawvideo',
                        '-pix_fmt', 'bgra', '-s', '%dx%d' % (WIDTH, HEIGHT), '-r', '30',
                        '-i', '-', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune',
                        'zerolatency', '-g', '30', '-bf', '0', '-pix_fmt', 'yuv420p', '-f',
                        'h264', '-y', h264], stdin=render.stdout, check=True, timeout=30)
        render.wait()
        host_src = ['--h264', h264]
    host = procs.start([os.environ['VIEW_FAKEHOST'], '--listen', 'unix:' + sock, '--log',
                        hostlog, '--fps', '30'] + host_src, stdout=subprocess.PIPE)
    wait_ready(host.stdout.fileno(), 'listening on', 'the host double')


def start_real_host(procs, sock, start):
    """The real hxfrd and a publisher of the pattern into scanout 0."""
    rfd, wfd = os.pipe()
    try:
        procs.start([os.environ['HXFRD'], '--listen', 'unix:' + sock, '--ready-fd', str(wfd)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(wfd,))
        os.close(wfd)
        wfd = -1
        wait_ready(rfd, '\n', 'hxfrd')
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)
    pub = procs.start([os.environ['VIEW_PUBLISH'], '--connect', 'unix:' + sock, '--scanout',
                       '0', '--size', '%dx%d' % (WIDTH, HEIGHT), '--fps', '30'],
                      stdout=subprocess.PIPE, text=True)
    line = pub.stdout.readline()
    if 'publishing' not in line:
        fail('the publisher did not start: %r' % line)
    log('hxfrd and the publisher run: ' + line.strip())


def run(chromium, tmp, profile, procs, start, _):
    sock = os.path.join(tmp, 'host.sock')
    hostlog = os.path.join(tmp, 'host.log')

    if E2E:
        start_real_host(procs, sock, start)
    else:
        start_host_double(procs, tmp, sock, hostlog, start)

    view = procs.start([os.environ['HXFR_VIEW'], '--connect', 'unix:' + sock,
                        '--http', '127.0.0.1:0'], stdout=subprocess.PIPE, text=True)
    line = view.stdout.readline()
    if 'http://127.0.0.1:' not in line:
        fail('hxfr-view did not start: %r' % line)
    port = int(line.split('http://127.0.0.1:')[1].split('/')[0])
    log('hxfr-view on port %d' % port)

    # Pixels of fixed colour in every frame of the pattern.
    out = subprocess.run([os.environ['VIEW_PATTERN'], 'probe', 'desktop', str(WIDTH),
                          str(HEIGHT), '24'], capture_output=True, text=True, check=True)
    probes = []
    for ln in out.stdout.split('\n'):
        if ln.strip():
            x, y, r, g, b = (int(v) for v in ln.split())
            probes.append((x, y, (r, g, b)))
    if len(probes) < 4:
        fail('too few probe points: %d' % len(probes))

    # The report server: the page POSTs here.
    state = {'reset_count': None, 'final': None, 'reset_report': None, 'alive': []}
    alive_lock = threading.Lock()
    got_final = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get('Content-Length', '0'))
            body = self.rfile.read(min(n, 1 << 20))
            try:
                rep = json.loads(body)
            except ValueError:
                rep = {'phase': 'bad', 'raw': body[:200].decode(errors='replace')}
            if rep.get('phase') == 'alive':
                with alive_lock:
                    state['alive'].append(rep)
            elif rep.get('phase') == 'reset':
                # Before answering: the page resets only after this reply,
                # so every KEYFRAME_REQ from the reset comes after this count.
                state['reset_count'] = log_count(hostlog, 'KEYFRAME_REQ')
                state['reset_report'] = rep
            else:
                state['final'] = rep
                got_final.set()
            self.send_response(200)
            self.send_header('Content-Length', '0')
            self.end_headers()

        def log_message(self, *args):
            pass

    kf_after = None
    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        report_url = 'http://127.0.0.1:%d/report' % server.server_address[1]
        probe_arg = ';'.join('%d,%d' % (x, y) for x, y, _ in probes)
        url = ('http://127.0.0.1:%d/scanout/0?report=%s&frames=%d&reset_at=%d&probe=%s'
               '&grid=4x3' % (port, report_url, FRAMES, RESET_AT, probe_arg))
        chrome = procs.start([
            chromium, '--headless', '--no-sandbox', '--disable-gpu',
            '--disable-background-networking', '--disable-component-update',
            '--disable-sync', '--no-first-run', '--disable-quic',
            '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
            '--no-proxy-server', '--user-data-dir=' + profile, url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        remaining = DEADLINE_S - (time.monotonic() - start)
        if not got_final.wait(timeout=max(1, remaining)):
            fail('no report from the page within %d s (chromium %s)' %
                 (DEADLINE_S, 'running' if chrome.poll() is None else 'exited'))
        final_frames = state['final'].get('frames_decoded', 0)
        # The forced reset's keyframe request must reach the host; wait for
        # it before the hostile clients below join (joining asks for
        # keyframes too).
        kf_after = None
        if state['reset_count'] is not None and not E2E:
            while time.monotonic() - start < DEADLINE_S:
                kf_after = log_count(hostlog, 'KEYFRAME_REQ')
                if kf_after > state['reset_count']:
                    break
                time.sleep(0.05)

        # While the page keeps decoding, hostile clients come and go; each
        # is closed, and the page must go on on its one connection.
        hostile_clients(port)
        while True:
            with alive_lock:
                alive = [a for a in state['alive']
                         if a.get('frames_decoded', 0) >= final_frames + 60]
            if alive:
                break
            if time.monotonic() - start > DEADLINE_S:
                fail('the page stopped decoding after the hostile clients')
            time.sleep(0.05)
        if alive[0].get('connects') != 1:
            fail('the page lost its connection while hostile clients were closed')
        log('page still decoding after the hostile clients: %s' % json.dumps(alive[0]))

        # The gateway restarts (same port): the page reconnects by itself
        # and decodes again.
        view.send_signal(signal.SIGTERM)
        if view.wait(timeout=10) != 0:
            fail('hxfr-view did not exit cleanly on SIGTERM')
        view.stdout.close()
        restarted_at = max(a.get('frames_decoded', 0) for a in state['alive'])
        view = procs.start([os.environ['HXFR_VIEW'], '--connect', 'unix:' + sock,
                            '--http', '127.0.0.1:%d' % port], stdout=subprocess.DEVNULL)
        while True:
            with alive_lock:
                again = [a for a in state['alive'] if a.get('connects', 0) >= 2 and
                         a.get('frames_decoded', 0) >= restarted_at + 30]
            if again:
                break
            if time.monotonic() - start > DEADLINE_S:
                fail('the page did not resume after the gateway restarted')
            time.sleep(0.05)
        log('page resumed after a gateway restart: %s' % json.dumps(again[0]))
    finally:
        server.shutdown()
        server.server_close()

    rep = state['final']
    log('report: ' + json.dumps({k: v for k, v in rep.items() if k not in ('grid',)})[:1500])
    problems = []
    if rep.get('frames_decoded', 0) < 60:
        problems.append('only %s frames decoded' % rep.get('frames_decoded'))
    if (rep.get('width'), rep.get('height')) != (WIDTH, HEIGHT):
        problems.append('canvas is %sx%s' % (rep.get('width'), rep.get('height')))
    if not str(rep.get('codec', '')).startswith('avc1.'):
        problems.append('codec %r' % rep.get('codec'))
    if rep.get('connects') != 1:
        problems.append('the page connected %s times' % rep.get('connects'))
    unexpected = [e for e in rep.get('errors', []) if 'test hook' not in e]
    if unexpected:
        problems.append('page errors: %s' % unexpected)

    # Latency figures: there, ordered stage by stage, and not before the
    # gateway got the frame (within the clock offset's error, half the best
    # ping round trip, plus a millisecond of rounding).
    lat = rep.get('latency')
    if not lat or lat.get('frames', 0) < 1:
        problems.append('the page shows no latency figures: %r' % lat)
    else:
        slack = (lat.get('clock_rtt_ms') or 0) / 2 + 1
        for pct in ('p50', 'p99'):
            r, d, p = (lat[k][pct] for k in ('received', 'decoded', 'painted'))
            if not (-slack <= r <= d <= p):
                problems.append('latency %s not ordered: received %.1f, decoded %.1f, painted '
                                '%.1f (slack %.1f)' % (pct, r, d, p, slack))
        log('latency (%s, %d frames): received %.1f/%.1f decoded %.1f/%.1f painted %.1f/%.1f '
            'ms p50/p99' % (lat['from'], lat['frames'], lat['received']['p50'],
                            lat['received']['p99'], lat['decoded']['p50'], lat['decoded']['p99'],
                            lat['painted']['p50'], lat['painted']['p99']))

    # Colours at the probe points.
    samples = {(p['x'], p['y']): tuple(p['rgb']) for p in rep.get('pixels', [])}
    worst = 0
    for x, y, want in probes:
        got = samples.get((x, y))
        if got is None:
            problems.append('no sample at %d,%d' % (x, y))
            continue
        diff = max(abs(a - b) for a, b in zip(got, want))
        worst = max(worst, diff)
        if diff > TOLERANCE:
            problems.append('pixel %d,%d is %s, want %s' % (x, y, got, want))
    log('%d probe points, worst channel difference %d' % (len(probes), worst))

    # The forced reset: a keyframe request reached the host, decoding went on.
    # (With the real hxfrd there is no request log; the decoder must still
    # have resumed at a new keyframe.)
    if E2E:
        if rep.get('frames_after_reset', 0) < 5 or rep.get('keyframes_decoded', 0) < 2:
            problems.append('decoding did not resume at a keyframe after the reset')
    elif state['reset_count'] is None:
        problems.append('the page never reported its forced reset')
    else:
        log('KEYFRAME_REQ at reset: %d, after it: %s' % (state['reset_count'], kf_after))
        if kf_after is None or kf_after <= state['reset_count']:
            problems.append('no KEYFRAME_REQ reached the host after the forced reset')
        if rep.get('keyframe_requests_sent', 0) < 1:
            problems.append('the page sent no keyframe request')
        if rep.get('frames_after_reset', 0) < 5:
            problems.append('decoding did not resume after the reset')
        if rep.get('keyframes_decoded', 0) < 2:
            problems.append('only %s keyframes decoded' % rep.get('keyframes_decoded'))
    if problems:
        for p in problems:
            log('problem: ' + p)
        fail('%d problem(s)' % len(problems))
    log('browser test passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
