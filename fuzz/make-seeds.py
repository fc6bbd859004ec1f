#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz targets (run once; the output is
committed). Layouts match the targets:

  fuzz_parser:   u8 max_body selector, u32 chunking seed, then an HXFR stream
  fuzz_geometry: u8 format index (>= 8: raw fourcc follows), u32 fourcc,
                 u32 width, u32 height, u32 stride, u32 max_dim
  fuzz_gpu:      u8 mode, then guest-RAM steps or a vhost-user stream (fuzz_gpu.c)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = 0x52465848


def msg(mtype, payload, flags=0, session=1, body=b""):
    return struct.pack("<IBBHI", MAGIC, mtype, flags, session, len(payload) + len(body)) + payload + body


def units(*nals):
    return b"".join(struct.pack("<I", len(n)) + n for n in nals)


def frame_request(w, h, fmt, stride, flags=0, rid=0, pixels=b""):
    payload = struct.pack("<IIIIIqqB7x", rid, w, h, fmt, stride, 1000, 16666667, 0)
    return msg(0x01, payload, flags, body=pixels)


ARGB, XBGR, NV12, I420 = 0x34325241, 0x34324258, 0x3231564E, 0x32315559

sps = b"\x00\x00\x00\x01\x67\x42\xc0\x1e"
pps = b"\x00\x00\x00\x01\x68\xce\x3c\x80"
idr = b"\x00\x00\x01\x65\x88\x84\x00\x33"

streams = {
    "ping": msg(0x10, b"", session=0x0102),
    "pong": msg(0x11, b""),
    "keyframe_req": msg(0x03, b""),
    "frame_request": frame_request(1920, 1080, ARGB, 7680, rid=7),
    "frame_request_pixels": frame_request(2, 2, XBGR, 8, flags=1, pixels=bytes(range(16))),
    "frame_request_shm": frame_request(64, 64, NV12, 64, flags=2, rid=3),
    "frame_response": msg(0x02, struct.pack("<qqB3xI", 1000, 1000, 1, 3), body=units(sps, pps, idr)),
    "frame_response_empty": msg(0x02, struct.pack("<qqB3xI", 5, 5, 0, 0)),
    "config_req": msg(0x04, struct.pack("<IIIIIBBBIB", 1280, 720, 4000000, 60, 1, 100, 31, 1, 120, 0)),
    "config_resp": msg(0x05, struct.pack("<IIIIIBBBBI32s", 1280, 720, 4000000, 30, 1, 66, 40, 0, 0, 60, b"libx264")),
    "enable_scanout": msg(0x20, struct.pack("<IIII", 1, 1024, 768, 60)),
    "disable_scanout": msg(0x21, struct.pack("<I", 1)),
    "scanout_resp": msg(0x22, struct.pack("<II64s", 1, 1, b"Virtual-1")),
    "subscribe": msg(0x30, struct.pack("<I", 2)),
    "subscribe_resp": msg(0x31, struct.pack("<II", 2, 1)),
    "hello": msg(0x40, struct.pack("<IIII", 1, 0x1F, 4096, 2160)),
    "hello_resp": msg(0x41, struct.pack("<IIII", 1, 0x09, 1920, 1080)),
    "error": msg(0xFF, struct.pack("<i256s", -6, b"not configured")),
}
streams["all"] = b"".join(streams.values())
# A few hostile ones so the error paths are reached from the start.
streams["bad_magic"] = b"GET / HTTP/1.1\r\n\r\n"
streams["huge_payload"] = struct.pack("<IBBHI", MAGIC, 0x01, 1, 0, 0xFFFFFFFF)
streams["units_overrun"] = msg(0x02, struct.pack("<qqB3xI", 0, 0, 0, 1), body=struct.pack("<I", 99) + b"\x00\x00\x01")

geometry = {
    "bgra_1080p": (0, 0, 1920, 1080, 7680, 0),
    "bgrx_padded": (1, 0, 3, 5, 16, 0),
    "rgba_small": (2, 0, 1, 1, 4, 4096),
    "rgbx": (3, 0, 640, 480, 2560, 4096),
    "nv12": (4, 0, 64, 48, 64, 0),
    "i420": (5, 0, 64, 48, 66, 0),
    "odd_i420": (5, 0, 63, 48, 64, 0),
    "overflow": (0, 0, 16, 8192, 0x80000, 0),
    "unknown_format": (8, 0x56595559, 16, 16, 32, 0),
    "huge": (0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
}


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for i, (name, data) in enumerate(streams.items()):
    # Alternate the max_body selector and chunking seeds across seeds.
    write("fuzz_parser", name, struct.pack("<BI", i & 3, 0x9E3779B9 * (i + 1) & 0xFFFFFFFF) + data)
for name, (idx, fourcc, w, h, stride, max_dim) in geometry.items():
    write("fuzz_geometry", name, struct.pack("<BIIIII", idx, fourcc, w, h, stride, max_dim))

# fuzz_host: what a client sends to libhxfr-host (limits there: 256x256,
# window 3, 4 sessions). Valid requests first, then pipelined and hostile.
def px(w, h, bpp):
    return bytes((i * 7) & 0xFF for i in range(w * h * bpp))


host_streams = {
    "ping": msg(0x10, b""),
    "hello_config": msg(0x40, struct.pack("<IIII", 1, 0x1F, 0, 0))
    + msg(0x04, struct.pack("<IIIIIBBBIB", 64, 64, 1000000, 30, 1, 66, 31, 1, 10, 0)),
    "frame_bgra": frame_request(16, 16, ARGB, 64, flags=1, pixels=px(16, 16, 4)),
    "frame_nv12_i420": frame_request(16, 16, NV12, 16, flags=1, pixels=px(16, 24, 1))
    + frame_request(16, 16, I420, 16, flags=1, pixels=px(16, 24, 1)),
    "keyframe_then_frames": msg(0x03, b"")
    + b"".join(frame_request(8, 8, XBGR, 40, flags=1, pixels=px(10, 8, 4)) for _ in range(5)),
    "resource_and_shm": frame_request(16, 16, ARGB, 64, rid=7)
    + frame_request(16, 16, ARGB, 64, flags=2, rid=1),
    "bad_geometry_body": frame_request(0, 16, ARGB, 64, flags=1, pixels=px(16, 16, 4))
    + msg(0x10, b""),
    "scanouts": msg(0x20, struct.pack("<IIII", 1, 64, 64, 60)) + msg(0x30, struct.pack("<I", 1)),
    # Publish into scanout 1 (frames on session 1) while subscribed to it,
    # a subscriber's KEYFRAME_REQ, disable twice, unknown ids.
    "scanout_publish": msg(0x20, struct.pack("<IIII", 1, 16, 16, 60))
    + msg(0x30, struct.pack("<I", 1))
    + frame_request(16, 16, ARGB, 64, flags=1, pixels=px(16, 16, 4))
    + msg(0x03, b"")
    + frame_request(16, 16, ARGB, 64, flags=1, pixels=px(16, 16, 4))
    + msg(0x21, struct.pack("<I", 1)) + msg(0x21, struct.pack("<I", 1))
    + msg(0x30, struct.pack("<I", 2)) + msg(0x20, struct.pack("<IIII", 70000, 16, 16, 0)),
    "bad_magic": b"GET / HTTP/1.1\r\n\r\n",
    "half_frame": frame_request(32, 32, ARGB, 128, flags=1, pixels=px(32, 16, 4))[:-100],
}
# fake_encoder.c fails an encode whose pts is 0x0BADBADBADBADBAD: a
# mid-stream encoder failure between two good frames.
bad_pts = struct.pack("<IIIIIqqB7x", 0, 16, 16, ARGB, 64, 0x0BADBADBADBADBAD, 0, 0)
host_streams["encoder_fails_mid_stream"] = (
    frame_request(16, 16, ARGB, 64, flags=1, pixels=px(16, 16, 4))
    + msg(0x01, bad_pts, 1, body=px(16, 16, 4))
    + frame_request(16, 16, ARGB, 64, flags=1, pixels=px(16, 16, 4)))
# fake_encoder.c refuses to open 250-pixel-wide frames.
host_streams["encoder_fails_to_open"] = frame_request(250, 2, ARGB, 1000, flags=1, pixels=px(250, 2, 4))
# Shared memory (docs/protocol.md section 12): an SHM_FD attach that
# carries no descriptor (a socketpair from the fuzzer never does), an
# attach by a name the server was not given, slots on a session without a
# ring, and the server-to-client shm types sent by a client.
def shm_attach(offset=0, name=b"", flags=0, session=1):
    return msg(0x50, struct.pack("<Q64s", offset, name), flags, session)


host_streams["shm_attach_and_slots"] = (
    shm_attach(flags=1) + shm_attach(0x100000, b"vm0")
    + frame_request(16, 16, ARGB, 64, flags=2, rid=0)
    + frame_request(16, 16, ARGB, 64, flags=2, rid=0xFFFFFFFF)
    + msg(0x51, struct.pack("<IIQ", 4, 0, 4096)) + msg(0x52, struct.pack("<I", 3))
    + msg(0x10, b""))
for name, data in host_streams.items():
    write("fuzz_host", name, data)


# fuzz_gpu: byte 0 even = guest-RAM steps (see fuzz_gpu.c), odd = vhost-user.
def gpu_write(off, data):
    return struct.pack("<BHH", 0, off, len(data)) + data


def gpu_hdr(cmd, flags=0, fence=0):
    return struct.pack("<IIQIB3x", cmd, flags, fence, 0, 0)


def gpu_desc(i, addr, length, flags, nxt):
    return gpu_write(16 * i, struct.pack("<QIHH", addr, length, flags, nxt))


def gpu_cmds(cmds, ring_base=0x0, num=16):
    """Steps that put each (request, reply room) chain on the control ring
    and let the device process it."""
    out = b""
    for k, (req, cap) in enumerate(cmds):
        rq, rs = 0x1000 + 0x200 * k, 0x6000 + 0x500 * k
        out += gpu_write(rq, req)
        out += gpu_desc((2 * k) % num, rq, len(req), 1, (2 * k + 1) % num)
        out += gpu_desc((2 * k + 1) % num, rs, cap, 2, 0)
        out += gpu_write(ring_base + 0x100 + 4 + 2 * (k % num), struct.pack("<H", (2 * k) % num))
        out += gpu_write(ring_base + 0x100 + 2, struct.pack("<H", k + 1))
        out += b"\x01"
    return out


BGRX = 2
display = [
    (gpu_hdr(0x100), 408),
    (gpu_hdr(0x10A, 1, 9) + struct.pack("<II", 0, 0), 1056),
    (gpu_hdr(0x101) + struct.pack("<IIII", 1, BGRX, 16, 16), 24),
    (gpu_hdr(0x106) + struct.pack("<II", 1, 2) + struct.pack("<QII", 0xC000, 512, 0)
     + struct.pack("<QII", 0xC200, 512, 0), 24),
    (gpu_hdr(0x105) + struct.pack("<IIIIQII", 0, 0, 16, 16, 0, 1, 0), 24),
    (gpu_hdr(0x103) + struct.pack("<IIIIII", 0, 0, 16, 16, 0, 1), 24),
    (gpu_hdr(0x104) + struct.pack("<IIIIII", 2, 2, 8, 8, 1, 0), 24),
    (gpu_hdr(0x102) + struct.pack("<II", 1, 0), 24),
]
write("fuzz_gpu", "display", b"\x00" + gpu_write(0xC000, bytes(range(256)) * 4) + gpu_cmds(display))
cursor = [
    (gpu_hdr(0x101) + struct.pack("<IIII", 5, 1, 64, 64), 24),
    (gpu_hdr(0x106) + struct.pack("<II", 5, 1) + struct.pack("<QII", 0xB000, 16384, 0), 24),
    (gpu_hdr(0x105) + struct.pack("<IIIIQII", 0, 0, 64, 64, 0, 5, 0), 24),
]
cur_cmd = gpu_hdr(0x300) + struct.pack("<IIIIIIII", 1, 10, 20, 0, 5, 3, 4, 0)
write("fuzz_gpu", "cursor", b"\x00" + gpu_cmds(cursor) + gpu_write(0x5000, cur_cmd)
      + gpu_write(0x400, struct.pack("<QIHH", 0x5000, len(cur_cmd), 0, 0))
      + gpu_write(0x500 + 4, struct.pack("<H", 0)) + gpu_write(0x502, struct.pack("<H", 1)) + b"\x02"
      + b"\x05" + struct.pack("<BHH", 1, 1280, 720) + b"\x03" + b"\x04")
hostile = b"\x00" + gpu_desc(0, 0x1000, 24, 1, 0) + gpu_write(0x104, struct.pack("<H", 0)) \
    + gpu_write(0x102, struct.pack("<H", 1)) + b"\x01" \
    + gpu_desc(1, 0x2000, 48, 4, 0) + gpu_write(0x2000, struct.pack("<QIHH", 0x1000, 24, 1, 1)
                                                 + struct.pack("<QIHH", 0x3000, 24, 2, 0)) \
    + gpu_write(0x1000, gpu_hdr(0x101) + struct.pack("<IIII", 7, BGRX, 32768, 32768)) \
    + gpu_write(0x106, struct.pack("<H", 1)) + gpu_write(0x102, struct.pack("<H", 2)) + b"\x01" \
    + gpu_write(0x102, struct.pack("<H", 60)) + b"\x01"
write("fuzz_gpu", "hostile", hostile)


def vu(req, payload=b"", flags=1):
    return struct.pack("<III", req, flags, len(payload)) + payload


write("fuzz_gpu", "vhost", b"\x01" + vu(1) + vu(15) + vu(16, struct.pack("<Q", 0x2209))
      + vu(17) + vu(3) + vu(2, struct.pack("<Q", (1 << 32) | (1 << 30) | (1 << 40) | 2))
      + vu(24, struct.pack("<III", 0, 16, 0) + bytes(16))
      + vu(25, struct.pack("<III", 0, 16, 0) + struct.pack("<IIII", 0, 1, 0, 0))
      + vu(8, struct.pack("<II", 0, 64)) + vu(10, struct.pack("<II", 0, 3))
      + vu(9, struct.pack("<IIQQQQ", 0, 0, 0x1000, 0x2000, 0x3000, 0))
      + vu(18, struct.pack("<II", 0, 1)) + vu(11, struct.pack("<II", 0, 0))
      + vu(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, 0, 0))
      + vu(34) + vu(12, struct.pack("<Q", 0x100)) + vu(99, b"", 1 | 8) + vu(2, b"x", 2))
