"""Helpers shared by the hxfr-fanout tests (rtsp_test.py, janus_test.py):
the processes they start (stopped in reverse order, whatever happens),
waiting for a line from a process, the real hxfrd with a publisher, and
counting lines in a log. Nothing here sleeps to wait for something to be
ready: processes say when they are."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'view'))
import browser_test  # noqa: E402  (its Procs, wait_ready, kill_leftovers)

START_S = browser_test.START_S  # for one helper process to say it is ready


def log(msg):
    print('# ' + msg, flush=True)


def fail(msg):
    log('FAIL: ' + msg)
    raise SystemExit(1)


def need_env(*names):
    for n in names:
        if not os.environ.get(n):
            fail('%s is not set (run through meson test)' % n)


class Procs(browser_test.Procs):
    """Everything started here, stopped in reverse order at the end
    (tests/view/browser_test.py), and one process stopped on demand."""

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            return p.wait()


def wait_line(fd, needle, what):
    """Reads fd (a pipe) until a line containing needle arrives
    (tests/view/browser_test.py's wait_ready); returns what was read."""
    return browser_test.wait_ready(fd, needle, what)


kill_leftovers = browser_test.kill_leftovers


def finish(problems, what):
    """Logs every problem and fails, or says the test passed."""
    if problems:
        for p in problems:
            log('problem: ' + p)
        fail('%d problem(s)' % len(problems))
    log(what + ' passed')
    return 0


def wait_log(path, needle, what, timeout=START_S, count=1):
    """Waits until path holds count lines containing needle (the file is
    written by a running process; polled every 50 ms)."""
    end = time.monotonic() + timeout
    while True:
        if log_count(path, needle) >= count:
            return
        if time.monotonic() > end:
            fail('%s: no %r in %s within %d s' % (what, needle, path, timeout))
        time.sleep(0.05)


def log_count(path, needle):
    try:
        with open(path, errors='replace') as f:
            return sum(1 for line in f if needle in line)
    except FileNotFoundError:
        return 0


def log_lines(path, needle):
    try:
        with open(path, errors='replace') as f:
            return [line.rstrip('\n') for line in f if needle in line]
    except FileNotFoundError:
        return []


def start_host(procs, tmp, size='640x360', fps=30, publisher='view-publish'):
    """The real hxfrd (debug log: it names every KEYFRAME_REQ) and a
    publisher of the pattern into scanout 0 (view-publish, or hxfr-send).
    Returns the socket URI, the daemon's log path and the publisher."""
    sock = os.path.join(tmp, 'host.sock')
    hostlog = os.path.join(tmp, 'hxfrd.log')
    rfd, wfd = os.pipe()
    try:
        with open(hostlog, 'w') as f:
            procs.start([os.environ['HXFRD'], '--listen', 'unix:' + sock, '--ready-fd', str(wfd),
                         '--log-level', 'debug'], stdout=subprocess.DEVNULL, stderr=f,
                        pass_fds=(wfd,))
        os.close(wfd)
        wfd = -1
        wait_line(rfd, '\n', 'hxfrd')
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)
    if os.environ.get('HXFR_SEND') and publisher == 'hxfr-send':
        # hxfr-send counts what it published: its summary (on SIGTERM)
        # says how many frames the host encoded for it.
        pub = procs.start([os.environ['HXFR_SEND'], '--connect', 'unix:' + sock, '--scanout', '0',
                           '--size', size, '--fps', str(fps), '--frames', '0', '--json',
                           '--output', os.devnull], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
        wait_line(pub.stderr.fileno(), 'publishing into scanout 0', 'hxfr-send')
    else:
        pub = procs.start([os.environ['VIEW_PUBLISH'], '--connect', 'unix:' + sock, '--scanout',
                           '0', '--size', size, '--fps', str(fps)], stdout=subprocess.PIPE)
        wait_line(pub.stdout.fileno(), 'publishing', 'the publisher')
    return 'unix:' + sock, hostlog, pub


def start_fanout(procs, tmp, connect, args, ready='hxfr-fanout: '):
    """hxfr-fanout with its log in tmp/fanout.log; returns (process, the
    first stdout line, log path)."""
    fanlog = os.path.join(tmp, 'fanout.log')
    with open(fanlog, 'w') as f:
        p = procs.start([os.environ['HXFR_FANOUT'], '--connect', connect, '-v'] + args,
                        stdout=subprocess.PIPE, stderr=f)
    line = wait_line(p.stdout.fileno(), ready, 'hxfr-fanout')
    return p, line, fanlog

