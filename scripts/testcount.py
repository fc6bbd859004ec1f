#!/usr/bin/env python3
"""Counts one meson test run for scripts/test.sh: passed, failed, skipped.

    testcount.py TESTLOG TESTS [--no-skip LABEL=GLOB]... [--present] [--allow-skip]

TESTLOG is meson's meson-logs/testlog.json, TESTS the output of `meson
introspect --tests` for the same build (it says which tests speak TAP).

A TAP test (tests/harness.h) counts per subtest: "ok" passed, "not ok"
failed, "ok ... # SKIP why" skipped. Subtests the plan promised but never
reported (the binary died) count as failed, and a TAP test that meson failed
without any failing subtest (a crash at exit, a leak report, a timeout)
counts one more failure. Any other test counts once: OK passed, SKIP (exit
77) skipped, anything else failed.

--no-skip LABEL=GLOB names tests that can run on this machine and so may
not skip in CI: a skip among them (of the test or of one of its subtests)
is still counted as skipped, and the broken rule adds one failure. With
--present each such group must also be in the build (else one failure).
--allow-skip (a developer's machine without QEMU, Chromium or GStreamer)
keeps the skips and reports a missing group as one more skip instead.

Prints one line per failure ("failed: ...") and skip ("skipped: ..."),
then a last line "PASSED FAILED SKIPPED".
"""
import fnmatch
import json
import re
import sys

TAP_RESULT = re.compile(r'^(not )?ok\b(?:\s+\d+)?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(.*))?$')
TAP_PLAN = re.compile(r'^1\.\.(\d+)\s*(?:#\s*(.*))?$')
MESON_PASS = ('OK', 'EXPECTEDFAIL')


def directive(text):
    """('SKIP'|'TODO'|None, reason) from the text after '#' of a TAP line."""
    if not text:
        return None, ''
    word, _, rest = text.partition(' ')
    word = word.upper()
    if word.startswith('SKIP'):
        return 'SKIP', rest.strip() or '(no reason given)'
    if word.startswith('TODO'):
        return 'TODO', rest.strip()
    return None, ''


def last_line(text):
    lines = [l.strip() for l in (text or '').splitlines() if l.strip()]
    return lines[-1][:160] if lines else '(no output)'


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.lines = []

    def fail(self, what):
        self.failed += 1
        self.lines.append('failed: ' + what)

    def skip(self, what):
        self.skipped += 1
        self.lines.append('skipped: ' + what)


def count_tap(entry, tally, skips):
    name = entry['name']
    plan = None
    seen = failed = 0
    for line in (entry.get('stdout') or '').splitlines():
        line = line.rstrip()
        m = TAP_PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            kind, why = directive(m.group(2))
            if plan == 0 and kind == 'SKIP':
                tally.skip('%s: %s' % (name, why))
                skips.append((name, why))
            continue
        if line.startswith('Bail out!'):
            tally.fail('%s: %s' % (name, line))
            failed += 1
            continue
        m = TAP_RESULT.match(line)
        if not m:
            continue
        seen += 1
        sub = m.group(2) or '#%d' % seen
        kind, why = directive(m.group(3))
        if kind == 'SKIP':
            tally.skip('%s / %s: %s' % (name, sub, why))
            skips.append(('%s / %s' % (name, sub), why))
        elif m.group(1) and kind != 'TODO':
            tally.fail('%s / %s' % (name, sub))
            failed += 1
        else:
            tally.passed += 1
    if plan is not None and seen < plan:
        for _ in range(plan - seen):
            tally.failed += 1
        tally.lines.append('failed: %s: %d of %d subtests never reported' %
                           (name, plan - seen, plan))
        failed += plan - seen
    if plan is None and seen == 0 and entry.get('result') in MESON_PASS:
        tally.fail('%s: no TAP output' % name)
        failed += 1
    if entry.get('result') not in MESON_PASS + ('SKIP',) and failed == 0:
        tally.fail('%s: %s (exit status %s)' % (name, entry.get('result'),
                                                entry.get('returncode')))


def main(argv):
    args = argv[1:]
    if len(args) < 2:
        sys.stderr.write(__doc__)
        return 2
    log_path, tests_path, rest = args[0], args[1], args[2:]
    groups, present, allow_skip = [], False, False
    while rest:
        a = rest.pop(0)
        if a == '--no-skip' and rest:
            label, _, glob = rest.pop(0).partition('=')
            groups.append((label, glob))
        elif a == '--present':
            present = True
        elif a == '--allow-skip':
            allow_skip = True
        else:
            sys.stderr.write('testcount.py: unknown argument %s\n' % a)
            return 2

    with open(tests_path) as f:
        protocols = {t['name']: t.get('protocol', 'exitcode') for t in json.load(f)}
    tally = Tally()
    ran = []
    with open(log_path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            # meson logs "project:suite / name"; introspection has the name.
            name = entry['name'] = entry['name'].split(' / ', 1)[-1]
            skips = []
            if protocols.get(name) == 'tap':
                count_tap(entry, tally, skips)
            elif entry.get('result') in MESON_PASS:
                tally.passed += 1
            elif entry.get('result') == 'SKIP':
                why = last_line(entry.get('stdout'))
                tally.skip('%s: %s' % (name, why))
                skips.append((name, why))
            else:
                tally.fail('%s: %s (exit status %s)' % (name, entry.get('result'),
                                                        entry.get('returncode')))
            ran.append((name, skips))

    for label, glob in groups:
        members = [(n, s) for n, s in ran if fnmatch.fnmatchcase(n, glob)]
        if not members and present:
            built = [n for n in protocols if fnmatch.fnmatchcase(n, glob)]
            what = '%s tests (%s): %s' % (label, glob, 'did not run' if built else
                                          'not part of this build (see the meson setup log)')
            if allow_skip:
                tally.skip(what)
            else:
                tally.fail(what + '; they can run here, so CI needs them')
            continue
        skipped = [s for _, ss in members for s in ss]
        if skipped and not allow_skip:
            tally.fail('%s tests may not skip in CI (%d skipped, first: %s: %s); '
                       'HXFR_TEST_ALLOW_SKIP=1 accepts that on a machine without them' %
                       (label, len(skipped), skipped[0][0], skipped[0][1]))

    for l in tally.lines:
        print(l)
    print(tally.passed, tally.failed, tally.skipped)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
