#!/usr/bin/env python3
"""hxfr-fanout through Janus to headless Chromium, on one machine.

Starts the real hxfrd with a publisher (scanout 0, 640x360, 30 fps),
Janus 1.1 from the configuration in tests/fanout/janus/ (its HTTP port
replaced by a free one), and hxfr-fanout sending scanout 0 as RTP to two
mountpoints: mountpoint 1 from the configuration file and mountpoint 2
created here through the Janus API. Two Chromium browsers at once play
them with web/janus.html over WebRTC, one talking to Janus over HTTP, the
other over WebSocket, and through the page's test hook:

  - each decodes at least 60 frames (getStats framesDecoded), H.264, at
    the published size;
  - one encode serves both: hxfrd has exactly one subscriber of scanout 0;
  - a keyframe request from the page (Janus "switch": Janus sends a PLI to
    hxfr-fanout's RTCP socket) reaches hxfrd as KEYFRAME_REQ;
  - a browser that vanishes (SIGKILL) affects only itself: the other keeps
    decoding.

Skips (exit 77) only when janus or chromium is not installed. Costs about
15-25 s and two Chromium processes on 2 cores.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from urllib.parse import quote
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanouttest import (Procs, fail, finish, kill_leftovers, log, log_count,  # noqa: E402
                        log_lines, need_env, start_fanout, start_host)

DEADLINE_S = 100
FRAMES = 75
KEYFRAME_AT = 30
WIDTH, HEIGHT = 640, 360
HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = 'hxfr-fanout'  # the configured mountpoint's secret (janus.plugin.streaming.jcfg)


def find(names):
    for n in names:
        if n and shutil.which(n):
            return shutil.which(n)
    return None


def free_tcp_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class JanusApi:
    """The Janus HTTP API, as a test client: one session and one handle on
    the streaming plugin."""

    def __init__(self, base):
        self.base = base
        self.tx = 0
        self.session = self.post('', {'janus': 'create'})['data']['id']
        self.handle = self.post('/%d' % self.session,
                                {'janus': 'attach', 'plugin': 'janus.plugin.streaming'})['data']['id']

    def post(self, path, body):
        self.tx += 1
        body['transaction'] = 't%d' % self.tx
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                     headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=10) as r:
            reply = json.loads(r.read())
        if reply.get('janus') == 'error':
            fail('Janus API %s: %s' % (body, reply))
        return reply

    def request(self, body):
        """A synchronous streaming-plugin request; returns its data."""
        reply = self.post('/%d/%d' % (self.session, self.handle), {'janus': 'message', 'body': body})
        data = reply.get('plugindata', {}).get('data', {})
        if data.get('error'):
            fail('streaming plugin %s: %s' % (body, data))
        return data

    def video_ports(self, mp):
        info = self.request({'request': 'info', 'id': mp, 'secret': SECRET})['info']
        for m in info.get('media', []):
            if m.get('type') == 'video':
                return m['port'], m['rtcpport']
        fail('mountpoint %d has no video stream: %s' % (mp, info))

    def destroy(self):
        try:
            self.post('/%d' % self.session, {'janus': 'destroy'})
        except OSError:
            pass


def set_port(path, line, port):
    with open(path) as f:
        text = f.read()
    if line not in text:
        fail('%s has no "%s" line' % (path, line))
    with open(path, 'w') as f:
        f.write(text.replace(line, line.split('=')[0] + '= %d' % port))


def start_janus(procs, tmp):
    """Janus from a copy of tests/fanout/janus with free HTTP and WebSocket
    ports. Another test may take a port between our check and Janus' bind:
    then Janus exits, and we try again with others. Returns the HTTP and
    WebSocket API URLs and Janus' log."""
    janus = find([os.environ.get('JANUS', ''), 'janus'])
    for attempt in range(3):
        conf = os.path.join(tmp, 'janus-conf-%d' % attempt)
        shutil.copytree(os.path.join(HERE, 'janus'), conf)
        http_port, ws_port = free_tcp_port(), free_tcp_port()
        set_port(os.path.join(conf, 'janus.transport.http.jcfg'), 'port = 8088', http_port)
        set_port(os.path.join(conf, 'janus.transport.websockets.jcfg'), 'ws_port = 8188', ws_port)
        jlog = os.path.join(tmp, 'janus-%d.log' % attempt)
        with open(jlog + '.stderr', 'w') as f:
            p = procs.start([janus, '-F', conf, '-o', '-N', '-L', jlog],
                            stdout=subprocess.DEVNULL, stderr=f)
        end = time.monotonic() + 30
        while time.monotonic() < end and p.poll() is None:
            if (log_count(jlog, 'HTTP webserver started') and
                    log_count(jlog, 'Websockets server started') and
                    log_count(jlog, 'Streaming plugin initialized')):
                log('Janus on ports %d (HTTP), %d (WebSocket), attempt %d' %
                    (http_port, ws_port, attempt + 1))
                return ('http://127.0.0.1:%d/janus' % http_port, 'ws://127.0.0.1:%d' % ws_port,
                        jlog)
            time.sleep(0.05)
        log('Janus did not start (attempt %d): %s' % (attempt + 1, log_lines(jlog, 'ERR')[-3:]))
        procs.stop(p)
    fail('Janus did not start')


def main():
    chromium = find([os.environ.get('CHROMIUM', ''), 'chromium', 'chromium-browser'])
    janus = find([os.environ.get('JANUS', ''), 'janus'])
    if not chromium or not janus:
        print('janus or chromium is not installed: skipping the Janus test')
        return 77
    need_env('HXFRD', 'VIEW_PUBLISH', 'HXFR_FANOUT', 'HXFR_WEB')
    start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix='hxfr-fanout-janus-')
    procs = Procs()
    profiles = [os.path.join(tmp, 'chromium-%d' % i) for i in range(2)]
    try:
        return run(chromium, tmp, procs, profiles, start)
    finally:
        procs.stop_all()
        for prof in profiles:
            kill_leftovers(prof)
        shutil.rmtree(tmp, ignore_errors=True)
        log('done in %.1f s' % (time.monotonic() - start))


def run(chromium, tmp, procs, profiles, start):
    connect, hostlog, _ = start_host(procs, tmp, '%dx%d' % (WIDTH, HEIGHT))
    api_url, ws_url, jlog = start_janus(procs, tmp)
    api = JanusApi(api_url)
    port1, rtcp1 = api.video_ports(1)
    # Mountpoint 2 through the API, the way a deployment script would.
    created = api.request({'request': 'create', 'type': 'rtp', 'id': 2, 'secret': SECRET,
                           'description': 'hxfr scanout 0 (created by the test)',
                           'media': [{'type': 'video', 'mid': 'v', 'port': 0, 'rtcpport': 0,
                                      'iface': '127.0.0.1', 'pt': 96, 'codec': 'h264',
                                      'fmtp': 'profile-level-id=42e01f;packetization-mode=1'}]})
    if created.get('streaming') != 'created':
        fail('mountpoint 2 was not created: %s' % created)
    port2, rtcp2 = api.video_ports(2)
    log('mountpoints: 1 on %d/%d (configured), 2 on %d/%d (created)' % (port1, rtcp1, port2, rtcp2))

    fan, _, fanlog = start_fanout(procs, tmp, connect, [
        '--no-rtsp', '--rtp', '0=127.0.0.1:%d:%d' % (port1, rtcp1),
        '--rtp', '0=127.0.0.1:%d:%d' % (port2, rtcp2)], ready='(RTCP %d)' % rtcp2)

    state = {'final': {}, 'keyframe_count': None, 'alive': {}}
    lock = threading.Lock()
    finals = threading.Event()
    web = os.environ['HXFR_WEB']
    pages = {'/janus.html': 'text/html', '/janus.js': 'text/javascript'}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split('?')[0]
            if path not in pages:
                self.send_error(404)
                return
            with open(os.path.join(web, path.lstrip('/')), 'rb') as f:
                body = f.read()
            self.send_response(200)
            self.send_header('Content-Type', pages[path])
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get('Content-Length', '0'))
            body = self.rfile.read(min(n, 1 << 20))
            try:
                rep = json.loads(body)
            except ValueError:
                rep = {'phase': 'bad', 'raw': body[:200].decode(errors='replace')}
            who = self.path.split('who=')[-1]
            with lock:
                if rep.get('phase') == 'keyframe':
                    # Before answering: the page asks only after this reply.
                    state['keyframe_count'] = log_count(hostlog, 'KEYFRAME_REQ')
                elif rep.get('phase') == 'final':
                    state['final'][who] = rep
                    if len(state['final']) == 2:
                        finals.set()
                elif rep.get('phase') == 'alive':
                    state['alive'][who] = rep
            self.send_response(200)
            self.send_header('Content-Length', '0')
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = 'http://127.0.0.1:%d' % server.server_address[1]
        browsers = []
        # b0 speaks the HTTP API (long poll), b1 the WebSocket one.
        for i, (mp, jurl, extra) in enumerate([(1, api_url, '&keyframe_at=%d' % KEYFRAME_AT),
                                               (2, ws_url, '')]):
            url = ('%s/janus.html?janus=%s&mountpoint=%d&report=%s&frames=%d%s' %
                   (base, quote(jurl, safe=''), mp,
                    quote('%s/report?who=b%d' % (base, i), safe=''), FRAMES, extra))
            browsers.append(procs.start([
                chromium, '--headless', '--no-sandbox', '--disable-gpu',
                '--disable-background-networking', '--disable-component-update',
                '--disable-sync', '--no-first-run', '--disable-quic', '--no-proxy-server',
                '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
                '--autoplay-policy=no-user-gesture-required',
                '--allow-loopback-in-peer-connection',
                '--disable-features=WebRtcHideLocalIpsWithMdns',
                '--user-data-dir=' + profiles[i], url],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if not finals.wait(timeout=max(1, DEADLINE_S - (time.monotonic() - start))):
            fail('reports within %d s: %s; Janus errors: %s' %
                 (DEADLINE_S, sorted(state['final']), log_lines(jlog, 'ERR')[-5:]))

        # The keyframe request from page b0 reaches the host.
        kf_before = state['keyframe_count']
        kf_after = kf_before
        while kf_before is not None and time.monotonic() - start < DEADLINE_S:
            kf_after = log_count(hostlog, 'KEYFRAME_REQ')
            if kf_after > kf_before:
                break
            time.sleep(0.05)

        # Browser b1 vanishes; b0 must go on decoding.
        procs.stop(browsers[1], signal.SIGKILL)
        kill_leftovers(profiles[1])
        with lock:
            base_frames = state['alive'].get('b0', state['final']['b0'])['frames_decoded']
        while True:
            with lock:
                now = state['alive'].get('b0', {}).get('frames_decoded', 0)
            if now >= base_frames + 30:
                break
            if time.monotonic() - start > DEADLINE_S:
                fail('browser b0 stopped decoding after b1 vanished (%d, then %d)' % (base_frames, now))
            time.sleep(0.05)
        log('b0 decoded %d more frames after b1 vanished' % (now - base_frames))
    finally:
        server.shutdown()
        server.server_close()
        api.destroy()

    problems = []
    for who, rep in sorted(state['final'].items()):
        log('%s: %s' % (who, json.dumps(rep)[:800]))
        if rep.get('frames_decoded', 0) < 60:
            problems.append('%s decoded only %s frames' % (who, rep.get('frames_decoded')))
        if (rep.get('width'), rep.get('height')) != (WIDTH, HEIGHT):
            problems.append('%s played %sx%s' % (who, rep.get('width'), rep.get('height')))
        if 'H264' not in str(rep.get('codec', '')):
            problems.append('%s codec %r' % (who, rep.get('codec')))
        if rep.get('errors'):
            problems.append('%s page errors: %s' % (who, rep['errors']))
    subs = log_lines(hostlog, 'subscribed to scanout 0')
    log('hxfrd: %s' % subs)
    if len(subs) != 1:
        problems.append('hxfrd saw %d subscriptions of scanout 0, not 1' % len(subs))
    log('KEYFRAME_REQ at the page\'s request: %s, then %s' % (kf_before, kf_after))
    if kf_before is None:
        problems.append('the page never reported its keyframe request')
    elif kf_after <= kf_before:
        problems.append('the page\'s keyframe request did not reach hxfrd as KEYFRAME_REQ')
    if state['final'].get('b0', {}).get('frames_after_keyframe_request', 0) < 10:
        problems.append('b0 did not go on decoding after its keyframe request')
    procs.stop(fan)
    for line in log_lines(fanlog, 'left scanout') + log_lines(fanlog, 'closed'):
        log(line)
    return finish(problems, 'janus test')


if __name__ == '__main__':
    sys.exit(main())
