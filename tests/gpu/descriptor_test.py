#!/usr/bin/env python3
"""What libvirt relies on to start hxfr-gpu by itself (meson test
gpu-descriptor, suite unit; meson introspect
makes it 1 s idle, 4 s at load 15): the back-end descriptor that
`meson install` puts in share/qemu/vhost-user/ (vhost-user.json schema:
type "gpu" and the installed binary's absolute path), and the
capabilities the binary prints (valid JSON, "type": "gpu", only the
features vhost-user.rst defines for a GPU, none of which hxfr-gpu has).

Environment (meson test): HXFR_GPU (the built binary), HXFR_GPU_JSON (the
built descriptor), HXFR_BUILD_ROOT. Exit 0 pass, 1 fail.
"""

import json
import os
import subprocess
import sys


def fail(msg):
    print(f'FAIL gpu-descriptor: {msg}')
    sys.exit(1)


def main():
    binary = os.environ['HXFR_GPU']
    desc_path = os.environ['HXFR_GPU_JSON']
    build = os.environ['HXFR_BUILD_ROOT']
    with open(desc_path) as f:
        desc = json.load(f)
    if desc.get('type') != 'gpu' or not isinstance(desc.get('description'), str):
        fail(f'descriptor {desc_path} lacks type "gpu" or a description: {desc}')
    if not os.path.isabs(desc.get('binary', '')):
        fail(f'descriptor binary is not an absolute path: {desc.get("binary")!r}')

    # Where `meson install` puts the descriptor and the program.
    r = subprocess.run(['meson', 'introspect', build, '--installed'], capture_output=True,
                       text=True, check=True)
    installed = json.loads(r.stdout)
    dest = {os.path.realpath(k): v for k, v in installed.items()}
    want = dest.get(os.path.realpath(desc_path))
    if want is None or not want.endswith('/share/qemu/vhost-user/50-hxfr-gpu.json'):
        fail(f'the descriptor installs to {want!r}, not share/qemu/vhost-user/50-hxfr-gpu.json')
    if dest.get(os.path.realpath(binary)) != desc['binary']:
        fail(f'the descriptor names {desc["binary"]!r}, the program installs to '
             f'{dest.get(os.path.realpath(binary))!r}')
    print(f'descriptor: {want} -> {desc["binary"]}')

    # libvirt runs BINARY --print-capabilities and parses the JSON.
    r = subprocess.run([binary, '--print-capabilities'], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        fail(f'--print-capabilities exited {r.returncode}: {r.stderr}')
    caps = json.loads(r.stdout)
    if caps.get('type') != 'gpu' or not isinstance(caps.get('features'), list):
        fail(f'capabilities are not a GPU back-end\'s: {caps}')
    unknown = set(caps['features']) - {'virgl', 'render-node'}
    if unknown or caps['features']:
        fail(f'hxfr-gpu has no virgl and no render node, yet claims {caps["features"]}')
    print(f'capabilities: {json.dumps(caps)}')
    print('PASS gpu-descriptor')


if __name__ == '__main__':
    main()
