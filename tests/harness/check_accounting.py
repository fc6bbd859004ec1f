#!/usr/bin/env python3
"""Checks the harness's TAP lines (tests/harness.h) and their counting
(scripts/testcount.py): a skip is reported as '# SKIP why' and counted as
skipped, never as passed; an exit(77) without SKIP() is a failure; the
no-skip groups turn a skip into a failure unless --allow-skip.

    check_accounting.py HARNESS_SAMPLE TESTCOUNT_PY
"""
import json
import os
import subprocess
import sys
import tempfile


def fail(msg):
    print('FAIL: ' + msg)
    sys.exit(1)


def run_sample(exe, env_extra=None):
    hold_r, hold_w = os.pipe()
    env = dict(os.environ, HXFR_SAMPLE_HOLD_FD=str(hold_r))
    for k in ('HXFR_TEST_FILTER', 'HXFR_TEST_TIMEOUT', 'HXFR_TEST_TIMEOUT_SCALE'):
        env.pop(k, None)
    env.update(env_extra or {})
    p = subprocess.run([exe], env=env, pass_fds=(hold_r,), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=20)
    os.close(hold_r)
    os.close(hold_w)  # the sample's forked child exits now
    return p


def count(testcount, entries, tests, *args):
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, 'testlog.json')
        with open(log, 'w') as f:
            for e in entries:
                f.write(json.dumps(e) + '\n')
        intro = os.path.join(d, 'tests.json')
        with open(intro, 'w') as f:
            json.dump(tests, f)
        p = subprocess.run([sys.executable, testcount, log, intro] + list(args),
                           stdout=subprocess.PIPE, text=True, check=True)
    lines = p.stdout.splitlines()
    return tuple(int(x) for x in lines[-1].split()), lines[:-1]


def main():
    exe, testcount = sys.argv[1], sys.argv[2]
    p = run_sample(exe)
    print(p.stdout, end='')
    print(p.stderr, end='', file=sys.stderr)
    lines = p.stdout.splitlines()
    expect = [
        '1..7',
        'ok 1 - passes',
        'ok 2 - skips_with_a_reason # SKIP no frobnicator on this machine',
        'not ok 3 - fails',
        'not ok 4 - exits_77_without_skip',
    ]
    if lines[:5] != expect:
        fail('TAP lines %r, expected %r' % (lines[:5], expect))
    if not (lines[5].startswith('ok 5 - skips_with_a_child_alive # SKIP skipped while child ')
            and lines[5].endswith(' runs')):
        fail('line 6: %r' % lines[5])
    if lines[6:8] != ['ok 6 - reports_its_alarm', 'ok 7 - reports_the_default_alarm']:
        fail('lines 7-8: %r' % lines[6:8])
    if lines[8] != '# 3 passed, 2 failed, 2 skipped':
        fail('summary %r' % lines[8])
    if p.returncode != 1:
        fail('exit status %d with failures, expected 1' % p.returncode)
    if 'exits_77_without_skip: exited 77 without SKIP()' not in p.stderr:
        fail('no diagnostic for the exit(77) without SKIP()')

    # Every test's alarm scaled by HXFR_TEST_TIMEOUT_SCALE (the sanitizer
    # stage's slowdown); a value that is not a factor in 1..100 scales by 1.
    for env, own, default in (({}, 5, 60), ({'HXFR_TEST_TIMEOUT': '7'}, 5, 7),
                              ({'HXFR_TEST_TIMEOUT': '7', 'HXFR_TEST_TIMEOUT_SCALE': '3'}, 15, 21),
                              ({'HXFR_TEST_TIMEOUT_SCALE': '4'}, 20, 240),
                              ({'HXFR_TEST_TIMEOUT_SCALE': 'x'}, 5, 60),
                              ({'HXFR_TEST_TIMEOUT_SCALE': '0'}, 5, 60),
                              ({'HXFR_TEST_TIMEOUT_SCALE': '4000'}, 5, 60)):
        a = run_sample(exe, dict(env, HXFR_TEST_FILTER='alarm'))
        want = ['own alarm %d' % own, 'default alarm %d' % default]
        got = [l for l in a.stderr.splitlines() if l.startswith(('own alarm ', 'default alarm '))]
        # Rounded to the nearest second: a loaded machine may lose one.
        ok = len(got) == 2 and all(
            g.rsplit(' ', 1)[0] == w.rsplit(' ', 1)[0]
            and int(w.split()[-1]) - 1 <= int(g.split()[-1]) <= int(w.split()[-1])
            for g, w in zip(got, want))
        if a.returncode != 0 or not ok:
            fail('alarms with %r: %r (status %d), expected %r' % (env, got, a.returncode, want))

    # Only skips and passes: exit 0, and meson would call it OK.
    q = run_sample(exe, {'HXFR_TEST_FILTER': 'skips_with_a_reason'})
    if q.returncode != 0 or 'ok 1 - skips_with_a_reason # SKIP' not in q.stdout:
        fail('a skip-only run: status %d, %r' % (q.returncode, q.stdout))

    tests = [{'name': 'sample', 'protocol': 'tap'}, {'name': 'vm-x', 'protocol': 'exitcode'},
             {'name': 'other', 'protocol': 'exitcode'}]
    sample = {'name': 'hxfr:unit / sample', 'result': 'FAIL', 'returncode': 1, 'stdout': p.stdout}
    got, detail = count(testcount, [sample], tests)
    if got != (3, 2, 2):
        fail('testcount: %r for the sample, expected (3, 2, 2): %r' % (got, detail))

    # Whole-test skips (exit 77 of a script) and the no-skip groups.
    vm_skip = {'name': 'vm-x', 'result': 'SKIP', 'returncode': 77,
               'stdout': 'SKIP: qemu-system-x86_64 is not installed\n'}
    other = {'name': 'other', 'result': 'OK', 'returncode': 0, 'stdout': ''}
    got, detail = count(testcount, [vm_skip, other], tests)
    if got != (1, 0, 1) or 'skipped: vm-x: SKIP: qemu-system-x86_64 is not installed' not in detail:
        fail('testcount: a plain skip: %r %r' % (got, detail))
    got, detail = count(testcount, [vm_skip, other], tests, '--no-skip', 'VM=vm-*')
    if got != (1, 1, 1) or not any(l.startswith('failed: VM tests may not skip') for l in detail):
        fail('testcount: a VM skip under --no-skip: %r %r' % (got, detail))
    got, detail = count(testcount, [vm_skip, other], tests, '--no-skip', 'VM=vm-*',
                        '--allow-skip')
    if got != (1, 0, 1):
        fail('testcount: a VM skip with --allow-skip: %r %r' % (got, detail))
    # A TAP subtest skip inside a no-skip group counts too.
    got, detail = count(testcount, [sample], tests, '--no-skip', 'S=sample')
    if got != (3, 3, 2):
        fail('testcount: a subtest skip under --no-skip: %r %r' % (got, detail))
    # A group missing from the build.
    got, detail = count(testcount, [other], tests, '--no-skip', 'G=gst', '--present')
    if got != (1, 1, 0):
        fail('testcount: a missing group: %r %r' % (got, detail))
    got, detail = count(testcount, [other], tests, '--no-skip', 'G=gst', '--present',
                        '--allow-skip')
    if got != (1, 0, 1):
        fail('testcount: a missing group with --allow-skip: %r %r' % (got, detail))
    # A TAP binary that died after two of five subtests, and one that
    # passed every subtest but failed at exit (a leak report).
    died = {'name': 'sample', 'result': 'FAIL', 'returncode': -11,
            'stdout': '1..5\nok 1 - a\nok 2 - b\n'}
    got, _ = count(testcount, [died], tests)
    if got != (2, 3, 0):
        fail('testcount: a TAP binary that died: %r' % (got,))
    leaked = {'name': 'sample', 'result': 'FAIL', 'returncode': 23,
              'stdout': '1..1\nok 1 - a\n'}
    got, _ = count(testcount, [leaked], tests)
    if got != (1, 1, 0):
        fail('testcount: a TAP binary failing at exit: %r' % (got,))
    print('harness accounting: ok')


if __name__ == '__main__':
    main()
