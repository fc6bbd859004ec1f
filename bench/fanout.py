#!/usr/bin/env python3
"""Fan-out bench: host CPU per scanout with 1, 4 and 16 viewers over RTSP
and over Janus, and the first-frame time of a new viewer.

    python3 bench/fanout.py [--build build/release] [--seconds 8]
                            [--size 1280x720] [--fps 30] [--json FILE]

One hxfrd with hxfr-send publishing scanout 0 (the desktop pattern), one
hxfr-fanout serving RTSP and sending RTP to a Janus mountpoint (Janus from
tests/fanout/janus/). For each viewer count the viewers are started, the
bench waits until every one of them plays, then reads the CPU time that
hxfrd, hxfr-fanout and Janus used over --seconds (from /proc/PID/stat,
user + system, in percent of one core). Viewers:

  - RTSP: ffmpeg -rtsp_transport tcp -i URL -c copy -f null - (receives
    and depayloads, does not decode: the viewers' cost stays off the
    measured processes' cores as far as 2 cores allow);
  - Janus: one headless Chromium with N viewer pages (web/janus.html) in
    iframes, each its own WebRTC peer connection to Janus.

First frame (p50 of --joins joins each, one viewer at a time, stream
running): RTSP: wall time of `ffmpeg -i URL -frames:v 1 -f null -`
(process start to first decoded frame, RTSP handshake included); Janus:
the page's time from navigation to its first frame shown
(requestVideoFrameCallback), Janus API, ICE and DTLS included.

Ratios compare only within one run (the machine's load moves).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'fanout'))
from fanouttest import Procs, log, log_count, start_fanout, start_host, wait_log  # noqa: E402
from fanouttest import kill_leftovers  # noqa: E402
from janus_test import JanusApi, find, start_janus  # noqa: E402

TICK = os.sysconf('SC_CLK_TCK')


def cpu_s(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def measure(pids, seconds):
    t0 = time.monotonic()
    c0 = {k: cpu_s(p) for k, p in pids.items()}
    time.sleep(seconds)
    dt = time.monotonic() - t0
    return {k: round(100 * (cpu_s(p) - c0[k]) / dt, 1) for k, p in pids.items()}


class Reports:
    """The viewer pages POST their reports here; it also serves the pages."""

    def __init__(self):
        self.lock = threading.Lock()
        self.finals = {}
        web = os.path.join(ROOT, 'web')
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split('?')[0]
                if path == '/many.html':
                    params = parse_qs(self.path.split('?', 1)[1])
                    n = int(params['n'][0])
                    frames = ''.join(
                        '<iframe width="320" height="200" src="janus.html?%s&report=%s"></iframe>' %
                        (params['args'][0], quote('/report?who=v%d' % i, safe=''))
                        for i in range(n))
                    body = ('<!doctype html><html><body>%s</body></html>' % frames).encode()
                    ctype = 'text/html'
                elif path in ('/janus.html', '/janus.js'):
                    with open(os.path.join(web, path[1:]), 'rb') as f:
                        body = f.read()
                    ctype = 'text/html' if path.endswith('html') else 'text/javascript'
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get('Content-Length', '0'))
                rep = json.loads(self.rfile.read(min(n, 1 << 20)) or b'{}')
                who = self.path.split('who=')[-1]
                if rep.get('phase') == 'final':
                    with outer.lock:
                        outer.finals[who] = rep
                self.send_response(200)
                self.send_header('Content-Length', '0')
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = 'http://127.0.0.1:%d' % self.server.server_address[1]

    def wait(self, n, timeout=180):
        """Waits until n viewers have played 30 frames; returns their reports
        (fewer when some did not make it in time: the caller reports that)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.finals) >= n:
                    return dict(self.finals)
            time.sleep(0.05)
        with self.lock:
            log('only %d of %d viewers played within %d s' % (len(self.finals), n, timeout))
            return dict(self.finals)


def chromium_argv(chromium, profile, url):
    return [chromium, '--headless', '--no-sandbox', '--disable-gpu',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--no-first-run', '--disable-quic', '--no-proxy-server',
            '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
            '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
            '--disable-features=WebRtcHideLocalIpsWithMdns', '--user-data-dir=' + profile, url]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build', 'release'))
    ap.add_argument('--seconds', type=float, default=8)
    ap.add_argument('--size', default='1280x720')
    ap.add_argument('--fps', type=int, default=30)
    ap.add_argument('--viewers', default='1,4,16')
    ap.add_argument('--joins', type=int, default=7)
    ap.add_argument('--json')
    a = ap.parse_args()
    os.environ.setdefault('HXFRD', os.path.join(a.build, 'src/daemon/hxfrd'))
    os.environ.setdefault('HXFR_SEND', os.path.join(a.build, 'tools/hxfr-send'))
    os.environ.setdefault('HXFR_FANOUT', os.path.join(a.build, 'src/fanout/hxfr-fanout'))
    chromium = find(['chromium', 'chromium-browser'])
    counts = [int(v) for v in a.viewers.split(',')]
    tmp = tempfile.mkdtemp(prefix='hxfr-fanout-bench-')
    procs = Procs()
    profiles = []
    results = {'size': a.size, 'fps': a.fps, 'seconds': a.seconds, 'rtsp': [], 'janus': [],
               'build': a.build, 'loadavg_start': [round(v, 1) for v in os.getloadavg()]}
    try:
        connect, _, pub = start_host(procs, tmp, a.size, a.fps, publisher='hxfr-send')
        hxfrd_pid = procs.procs[0].pid
        api_url, ws_url, _ = start_janus(procs, tmp)
        janus_pid = procs.procs[-1].pid
        api = JanusApi(api_url)
        port, rtcp = api.video_ports(1)
        fan, line, fanlog = start_fanout(procs, tmp, connect, [
            '--rtsp', '127.0.0.1:0', '-s', '0', '--rtp', '0=127.0.0.1:%d:%d' % (port, rtcp)],
            ready='(RTCP')
        url = 'rtsp://127.0.0.1:%s/scanout/0' % line.split('rtsp://127.0.0.1:')[1].split('/')[0]
        pids = {'hxfrd': hxfrd_pid, 'hxfr-fanout': fan.pid, 'janus': janus_pid}
        wait_log(fanlog, 'subscribed at', 'the subscription')
        base = measure(pids, a.seconds)
        results['baseline'] = base
        log('no viewers (one RTP sender to Janus, no Janus viewer): %s' % base)

        outlets = 1  # the RTP sender
        for n in counts:
            clients = [procs.start(['ffmpeg', '-nostdin', '-loglevel', 'error', '-rtsp_transport',
                                    'tcp', '-i', url, '-c', 'copy', '-f', 'null', '-'],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for _ in range(n)]
            wait_log(fanlog, '(%d outlets)' % (outlets + n), '%d RTSP viewers' % n, timeout=60)
            m = measure(pids, a.seconds)
            results['rtsp'].append({'viewers': n, 'cpu_percent': m})
            log('RTSP, %2d viewers: %s' % (n, m))
            left = log_count(fanlog, '(%d outlets)' % outlets)
            for c in clients:
                procs.stop(c)
            wait_log(fanlog, '(%d outlets)' % outlets, 'RTSP viewers gone', timeout=60,
                     count=left + 1)

        reports = Reports()
        # WebSocket: one Chromium runs at most 6 HTTP connections per host,
        # and every HTTP viewer holds a long poll.
        args = quote('janus=%s&mountpoint=1&frames=30' % quote(ws_url, safe=''), safe='')
        for n in counts:
            reports.finals = {}
            profile = os.path.join(tmp, 'chromium-%d' % n)
            profiles.append(profile)
            browser = procs.start(chromium_argv(chromium, profile, '%s/many.html?n=%d&args=%s' %
                                                (reports.base, n, args)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            played = len(reports.wait(n))
            m = measure(pids, a.seconds)
            results['janus'].append({'viewers': n, 'playing': played, 'cpu_percent': m})
            log('Janus, %2d viewers: %s' % (n, m))
            procs.stop(browser)
            kill_leftovers(profile)

        # First frame, one new viewer at a time.
        # ffmpeg probes the stream before its first frame (about a second
        # of analyzeduration): the second series turns that off, which
        # leaves process start, the RTSP handshake and our side.
        rtsp_ff, rtsp_ff_noprobe = [], []
        for _ in range(a.joins):
            for series, extra in ((rtsp_ff, []),
                                  (rtsp_ff_noprobe, ['-probesize', '32', '-analyzeduration', '0'])):
                t0 = time.monotonic()
                subprocess.run(['ffmpeg', '-nostdin', '-loglevel', 'error'] + extra +
                               ['-rtsp_transport', 'tcp', '-i', url, '-frames:v', '1', '-f',
                                'null', '-'], check=True, timeout=30)
                series.append((time.monotonic() - t0) * 1000)
        janus_ff = []
        for j in range(a.joins):
            reports.finals = {}
            profile = os.path.join(tmp, 'chromium-ff-%d' % j)
            profiles.append(profile)
            browser = procs.start(chromium_argv(chromium, profile, '%s/many.html?n=1&args=%s' %
                                                (reports.base, args)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rep = reports.wait(1, timeout=60)
            if rep:
                janus_ff.append(list(rep.values())[0].get('first_frame_ms') or float('nan'))
            procs.stop(browser)
            kill_leftovers(profile)
        results['first_frame_ms'] = {
            'rtsp_p50': round(statistics.median(rtsp_ff)), 'rtsp_all': [round(v) for v in rtsp_ff],
            'rtsp_noprobe_p50': round(statistics.median(rtsp_ff_noprobe)),
            'rtsp_noprobe_all': [round(v) for v in rtsp_ff_noprobe],
            'janus_p50': round(statistics.median(janus_ff)),
            'janus_all': [round(v) for v in janus_ff]}
        log('first frame: %s' % results['first_frame_ms'])
        results['loadavg_end'] = [round(v, 1) for v in os.getloadavg()]
        procs.stop(pub)
    finally:
        procs.stop_all()
        for p in profiles:
            kill_leftovers(p)
        shutil.rmtree(tmp, ignore_errors=True)

    print('\n| viewers | RTSP: hxfrd | hxfr-fanout | Janus: hxfrd | hxfr-fanout | janus |')
    print('|---|---|---|---|---|---|')
    b = results['baseline']
    print('| 0 | %s | %s | %s | %s | %s |' % (b['hxfrd'], b['hxfr-fanout'], b['hxfrd'],
                                            b['hxfr-fanout'], b['janus']))
    for r, j in zip(results['rtsp'], results['janus']):
        print('| %d%s | %s | %s | %s | %s | %s |' % (
            r['viewers'], '' if j.get('playing', r['viewers']) == r['viewers'] else
            ' (Janus: %d playing)' % j['playing'],
            r['cpu_percent']['hxfrd'], r['cpu_percent']['hxfr-fanout'],
            j['cpu_percent']['hxfrd'], j['cpu_percent']['hxfr-fanout'], j['cpu_percent']['janus']))
    ff = results['first_frame_ms']
    print('\nload average (1, 5, 15 min) at the start %s, at the end %s' %
          (results['loadavg_start'], results['loadavg_end']))
    print('\nfirst frame of a new viewer, p50 of %d joins: RTSP %d ms (ffmpeg without stream '
          'probing: %d ms), Janus %d ms' % (a.joins, ff['rtsp_p50'], ff['rtsp_noprobe_p50'],
                                            ff['janus_p50']))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
