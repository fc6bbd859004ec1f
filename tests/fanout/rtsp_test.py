#!/usr/bin/env python3
"""hxfr-fanout's RTSP server with ffprobe as the players, on loopback.

The real hxfrd and hxfr-send publishing scanout 0 (640x360, 30 fps);
hxfr-fanout serves rtsp://127.0.0.1:PORT/scanout/0. Checks:

  - two clients at once (one over UDP, one interleaved over TCP) each
    decode at least 60 frames, starting with an IDR;
  - while they play: a malformed request, a request that announces a body
    and never sends it, and a DESCRIBE of a scanout that is not offered are
    answered or closed one by one, and the server still answers OPTIONS;
  - a client that vanishes mid-stream (its connection reset while RTP
    flows, no TEARDOWN) is cleaned up (its outlet leaves) and costs the
    others nothing;
  - a client joining late starts at an IDR (first packet and first frame);
  - hxfrd subscribed once and encoded exactly the frames hxfr-send
    published: one encode per frame whatever the number of clients.

Costs about 10-15 s (ffprobe decoding 640x360 three times).
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanouttest import (Procs, fail, finish, log, log_count, log_lines,  # noqa: E402
                        need_env, start_fanout, start_host, wait_log)

FRAMES = 75
DEADLINE_S = 100


def ffprobe(procs, url, transport, frames):
    """An ffprobe that decodes `frames` packets' worth and prints every
    packet's flags and every frame's type as JSON."""
    return procs.start([os.environ['FFPROBE'], '-v', 'error', '-rtsp_transport', transport,
                        '-select_streams', 'v:0', '-show_packets', '-show_frames',
                        '-show_entries', 'packet=flags:frame=key_frame,pict_type',
                        '-read_intervals', '%%+#%d' % frames, '-of', 'json', url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def result(p, who, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        fail('%s did not finish within %d s' % (who, timeout))
    if p.returncode != 0:
        fail('%s exited %d: %s' % (who, p.returncode, err.decode(errors='replace')[-500:]))
    try:
        data = json.loads(out)
    except ValueError:
        fail('%s printed no JSON: %r' % (who, out[:300]))
    # With both -show_packets and -show_frames, ffprobe lists them in one
    # array, in the order it read and decoded them.
    both = data.get('packets_and_frames', [])
    packets = [x for x in both if x.get('type') == 'packet'] or data.get('packets', [])
    frames = [x for x in both if x.get('type') == 'frame'] or data.get('frames', [])
    log('%s: %d packets, %d frames decoded, first packet %s, first frame %s' %
        (who, len(packets), len(frames), packets[0] if packets else None,
         frames[0] if frames else None))
    return packets, frames


def check_starts_at_idr(who, packets, frames, problems):
    if len(frames) < 60:
        problems.append('%s decoded only %d frames' % (who, len(frames)))
        return
    if not packets or 'K' not in packets[0].get('flags', ''):
        problems.append('%s: the first packet is not a keyframe: %s' % (who, packets[:1]))
    if frames[0].get('key_frame') != 1 or frames[0].get('pict_type') != 'I':
        problems.append('%s: the first frame is not an IDR: %s' % (who, frames[0]))


def rtsp_exchange(port, data, wait_close=False):
    """Sends data on a fresh connection; returns what came back until the
    server closed or 5 s of quiet."""
    s = socket.create_connection(('127.0.0.1', port), timeout=5)
    try:
        s.sendall(data)
        if wait_close:
            s.shutdown(socket.SHUT_WR)
        got = b''
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            got += chunk
            if not wait_close and b'\r\n\r\n' in got:
                break
        return got
    finally:
        s.close()


def vanishing_client(port):
    """A minimal RTSP client over one TCP connection (RTP interleaved):
    DESCRIBE, SETUP, PLAY, then it reads until RTP packets arrive and
    drops the connection with a reset (SO_LINGER 0), no TEARDOWN."""
    url = 'rtsp://127.0.0.1:%d/scanout/0' % port
    s = socket.create_connection(('127.0.0.1', port), timeout=20)
    buf = b''

    def request(method, target, seq, extra=''):
        nonlocal buf
        s.sendall(('%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n' % (method, target, seq, extra)).encode())
        while b'\r\n\r\n' not in buf:
            chunk = s.recv(65536)
            if not chunk:
                fail('the server closed the connection during %s' % method)
            buf += chunk
        head, buf = buf.split(b'\r\n\r\n', 1)
        text = head.decode(errors='replace')
        if not text.startswith('RTSP/1.0 200'):
            fail('%s answered %r' % (method, text.split('\r\n')[0]))
        length = 0
        for line in text.split('\r\n'):
            if line.lower().startswith('content-length:'):
                length = int(line.split(':')[1])
        while len(buf) < length:
            buf += s.recv(65536)
        body, buf = buf[:length], buf[length:]
        return text, body.decode(errors='replace')

    _, sdp = request('DESCRIBE', url, 1, 'Accept: application/sdp\r\n')
    control = [ln.split(':', 1)[1].strip() for ln in sdp.split('\r\n')
               if ln.startswith('a=control:') and 'stream' in ln]
    if not control:
        fail('no stream control in the SDP: %r' % sdp[:300])
    target = control[0] if control[0].startswith('rtsp:') else url + '/' + control[0]
    head, _ = request('SETUP', target, 2, 'Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n')
    session = [ln.split(':', 1)[1].split(';')[0].strip() for ln in head.split('\r\n')
               if ln.lower().startswith('session:')][0]
    request('PLAY', url, 3, 'Session: %s\r\n' % session)
    rtp = 0
    while rtp < 20:
        while len(buf) < 4 or buf[0] != 0x24 or len(buf) < 4 + int.from_bytes(buf[2:4], 'big'):
            if len(buf) >= 4 and buf[0] != 0x24:
                fail('not an interleaved packet: %r' % buf[:16])
            chunk = s.recv(65536)
            if not chunk:
                fail('the server closed the stream')
            buf += chunk
        n = int.from_bytes(buf[2:4], 'big')
        rtp += buf[1] == 0
        buf = buf[4 + n:]
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()
    log('a client got %d RTP packets and vanished (reset, no TEARDOWN)' % rtp)


def hostile_requests(port, problems):
    url = 'rtsp://127.0.0.1:%d' % port
    cases = [
        ('garbage', b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + b'\xff' * 500 + b'\r\n\r\n',
         True),
        ('a request line without a version', b'DESCRIBE ' + url.encode() + b'/scanout/0\r\n\r\n',
         True),
        ('a body that never comes',
         ('DESCRIBE %s/scanout/0 RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 100000000\r\n\r\nabc'
          % url).encode(), True),
        ('a scanout that is not offered',
         ('DESCRIBE %s/scanout/99 RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n'
          % url).encode(), False),
        ('a scanout that is offered but not enabled',
         ('DESCRIBE %s/scanout/1 RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n'
          % url).encode(), False),
    ]
    want = {'a scanout that is not offered': ' 404 ',
            'a scanout that is offered but not enabled': ' 503 '}
    for name, data, close in cases:
        got = rtsp_exchange(port, data, wait_close=close)
        status = got.split(b'\r\n', 1)[0].decode(errors='replace')
        log('%s: %r' % (name, status or 'closed'))
        if name in want and want[name] not in status:
            problems.append('%s: answered %r, not%s' % (name, status, want[name]))
    got = rtsp_exchange(port, ('OPTIONS %s/scanout/0 RTSP/1.0\r\nCSeq: 3\r\n\r\n' % url).encode())
    if not got.startswith(b'RTSP/1.0 200'):
        problems.append('OPTIONS after the hostile requests: %r' % got[:100])


def main():
    need_env('HXFR_FANOUT', 'HXFRD', 'HXFR_SEND', 'FFPROBE')
    start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix='hxfr-fanout-rtsp-')
    procs = Procs()
    try:
        return run(tmp, procs, start)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        log('done in %.1f s' % (time.monotonic() - start))


def run(tmp, procs, start):
    connect, hostlog, pub = start_host(procs, tmp, publisher='hxfr-send')
    fan, line, fanlog = start_fanout(procs, tmp, connect, ['--rtsp', '127.0.0.1:0', '-s', '0-1'],
                                     ready='serving rtsp://')
    port = int(line.split('rtsp://127.0.0.1:')[1].split('/')[0])
    url = 'rtsp://127.0.0.1:%d/scanout/0' % port
    log('hxfr-fanout serves %s' % url)
    problems = []

    c1 = ffprobe(procs, url, 'udp', FRAMES)
    c2 = ffprobe(procs, url, 'tcp', FRAMES)
    wait_log(fanlog, '(2 outlets)', 'two clients at once')
    hostile_requests(port, problems)
    # A client that vanishes mid-stream: reset once RTP flows to it.
    joined = log_count(fanlog, ' joined scanout 0 ')
    vanishing_client(port)
    wait_log(fanlog, ' left scanout 0: ', "the vanished client's cleanup", count=1)
    if log_count(fanlog, ' joined scanout 0 ') != joined + 1:
        problems.append('the vanishing client did not join scanout 0')
    for who, c in (('client 1 (udp)', c1), ('client 2 (tcp)', c2)):
        packets, frames = result(c, who, max(1, DEADLINE_S - (time.monotonic() - start)))
        check_starts_at_idr(who, packets, frames, problems)

    # A late joiner: the stream has been running for seconds.
    c4 = ffprobe(procs, url, 'udp', FRAMES)
    packets, frames = result(c4, 'late client (udp)', max(1, DEADLINE_S - (time.monotonic() - start)))
    check_starts_at_idr('late client', packets, frames, problems)

    # The publisher stops: hxfrd says how many frames it encoded.
    procs.stop(pub)
    out = pub.stdout.read().decode(errors='replace')
    try:
        published = json.loads(out.strip().splitlines()[-1])['frames']
    except (ValueError, IndexError, KeyError):
        fail('no JSON summary from hxfr-send: %r' % out[-300:])
    wait_log(hostlog, 'frames, ', 'the end of scanout 0')
    ended = log_lines(hostlog, 'keepalives')
    subs = log_lines(hostlog, 'subscribed to scanout 0')
    log('hxfr-send published %d frames; hxfrd: %s; %s' % (published, ended, subs))
    encoded = int(ended[-1].split(' after ')[1].split(' frames')[0])
    if encoded != published:
        problems.append('hxfrd encoded %d frames for %d published' % (encoded, published))
    if len(subs) != 1:
        problems.append('hxfrd saw %d subscriptions of scanout 0, not 1' % len(subs))
    procs.stop(fan)
    for line in log_lines(fanlog, 'left scanout') + log_lines(fanlog, 'closed'):
        log(line)
    return finish(problems, 'rtsp test')


if __name__ == '__main__':
    sys.exit(main())
