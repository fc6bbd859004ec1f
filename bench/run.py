#!/usr/bin/env python3
"""hxfr benchmark driver: every contender side by side in one run.

    python3 bench/run.py --build build/release [--out bench/results] [--smoke]

(scripts/bench.sh installs dependencies, makes the release build and runs
this.) For each workload it renders the test pattern once into a raw BGRA
file in /dev/shm (not timed), then runs the contenders in interleaved
rounds (the order rotates every round, so a burst of load from another
process on this shared machine does not always land on the same
contender), then decodes each contender's output once for kbit/s and PSNR.
A scaling run follows. Results: OUT/latest.json, OUT/latest.md,
OUT/latest.png (gnuplot). bench/README.md explains every figure.

--smoke: tiny frames, a few of each, one round; for the meson test that
proves the benchmark still runs. It writes the same files (to --out).
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

THREADS = 2            # x264 threads for every contender (see README)
FPS = 60               # nominal frame rate: kbit/s and VBV are per second at 60 fps
GOP = 60
CRF = 23
PRESET = "ultrafast"
CLK_TCK = os.sysconf("SC_CLK_TCK")

FULL_WORKLOADS = [
    # name, variant, width, height, frames, rounds. More, shorter rounds
    # rather than fewer long ones: a median over rounds shrugs off the load
    # bursts of a shared machine better.
    ("1080p-desktop", "desktop", 1920, 1080, 90, 4),
    ("2160p-desktop", "desktop", 3840, 2160, 30, 4),
    ("1080p-static", "static", 1920, 1080, 90, 3),
    ("1080p-busy", "busy", 1920, 1080, 90, 3),
]
SMOKE_WORKLOADS = [("smoke-desktop", "desktop", 320, 240, 8, 1)]
# hxfr-bench-gpu: width, height, frames, rounds, backing pieces (Linux
# guests give 15-130 pieces for a 1080p framebuffer).
GPU_FULL = (1920, 1080, 60, 5, 32)
GPU_SMOKE = (320, 240, 4, 1, 4)
GPU_LABELS = {
    "device": "TRANSFER_TO_HOST_2D + RESOURCE_FLUSH (device, host copy updated)",
    "device+display": "the same + QEMU display socket (UPDATE built, written, drained)",
    "inplace-i420": "reading the frame in place: ARGBToI420 from the backing pieces",
    "copy": "copying the frame out of the backing (gather into one buffer)",
    "copy-i420": "copying it, then ARGBToI420 from the copy",
}

# id, label, kind, options
CONTENDERS = [
    ("floor", "floor: in-process libyuv + libx264", "floor", {}),
    ("unix-w1", "hxfr inline, UNIX, window 1", "hxfr", {"uri": "unix", "window": 1}),
    ("unix-w4", "hxfr inline, UNIX, window 4", "hxfr", {"uri": "unix", "window": 4}),
    ("tcp-w4", "hxfr inline, TCP loopback, window 4", "hxfr", {"uri": "tcp", "window": 4}),
    ("shm-w1", "hxfr shared memory, window 1", "hxfr",
     {"uri": "unix", "window": 1, "shm": True}),
    ("shm-w4", "hxfr shared memory, window 4", "hxfr",
     {"uri": "unix", "window": 4, "shm": True}),
    ("ffmpeg", "ffmpeg CLI (libx264)", "ffmpeg", {}),
    ("gst-x264enc", "GStreamer x264enc", "gst", {}),
    ("gst-vsockenc", "GStreamer vsockenc via hxfrd", "vsockenc", {}),
]


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def bitrate_for(w, h):
    """hxfr's default bitrate ceiling (hxfr__encoder_config_defaults)."""
    return max(w * h * 4, 5000000)


def x264_settings(w, h):
    """The libx264 settings hxfrd uses (src/encoders/avcodec.c, realtime on):
    preset ultrafast, tune zerolatency, CRF 23 under a VBV cap of the
    default bitrate with a one-second buffer, keyframe every 60 frames
    (minimum left to x264, as libavcodec does), no B-frames, SPS/PPS repeated,
    BT.601 limited range, 2 threads."""
    b = bitrate_for(w, h)
    return {"preset": PRESET, "tune": "zerolatency", "crf": CRF, "vbv_maxrate_kbps": b // 1000,
            "vbv_bufsize_kbit": b // 1000, "keyint": GOP, "bframes": 0,
            "repeat_headers": 1, "threads": THREADS, "colour": "BT.601 (SMPTE 170M), tv range"}


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    i = int(p * (len(sorted_vals) - 1) + 0.5)
    return sorted_vals[min(max(i, 0), len(sorted_vals) - 1)]


def proc_cpu_ms(pid):
    """utime + stime of every thread of pid, ms (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / CLK_TCK


def proc_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def run_measured(argv, env=None, stdout=None, timeout=600):
    """Runs a child to completion. Returns (status, wall s, cpu ms, peak RSS kB, stderr)."""
    err = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=stdout if stdout else subprocess.DEVNULL,
                         stderr=err, stdin=subprocess.DEVNULL)
    deadline = t0 + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.002)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    text = err.read().decode(errors="replace")
    err.close()
    return (p.returncode, wall, (ru.ru_utime + ru.ru_stime) * 1000.0, ru.ru_maxrss, text)


def run_json(argv, env=None, timeout=600):
    out = tempfile.TemporaryFile()
    status, wall, cpu, rss, err = run_measured(argv, env=env, stdout=out, timeout=timeout)
    out.seek(0)
    text = out.read().decode(errors="replace")
    out.close()
    if status != 0:
        raise RuntimeError(f"{os.path.basename(argv[0])} {argv[1]} failed ({status}): "
                           f"{err.strip()[-800:]}")
    return json.loads(text), wall, cpu, rss


class Daemon:
    """A fresh hxfrd per measured run: its CPU time, peak RSS and copy
    counter then belong to that run alone."""

    def __init__(self, exe, tmp, extra=()):
        self.dir = tempfile.mkdtemp(prefix="hxfrd.", dir=tmp)
        self.log_path = os.path.join(self.dir, "hxfrd.log")
        r, w = os.pipe()
        self.logf = open(self.log_path, "wb")
        argv = [exe, "--listen", "unix:" + os.path.join(self.dir, "hxfr.sock"),
                "--listen", "tcp:127.0.0.1:0", "--ready-fd", str(w),
                "--threads", str(THREADS), "--log-level", "info", *extra]
        self.proc = subprocess.Popen(argv, pass_fds=(w,), stdout=subprocess.DEVNULL,
                                     stderr=self.logf, stdin=subprocess.DEVNULL)
        os.close(w)
        lines = b""
        with os.fdopen(r, "rb") as rf:
            lines = rf.read()
        self.uris = lines.decode().split()
        if not self.uris:
            self.proc.wait(timeout=10)
            raise RuntimeError("hxfrd did not start: " + open(self.log_path).read()[-800:])
        self.unix = next(u for u in self.uris if u.startswith("unix:"))
        self.tcp = next(u for u in self.uris if u.startswith("tcp:"))

    def cpu_ms(self):
        return proc_cpu_ms(self.proc.pid)

    def hwm_kb(self):
        return proc_hwm_kb(self.proc.pid)

    def stop(self):
        """SIGTERM, wait; returns (exit code, log text)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.logf.close()
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        shutil.rmtree(self.dir, ignore_errors=True)
        return code, text


COPIED_RE = re.compile(r"client \d+ disconnected: .*\D(\d+) pixel bytes? copied")


def copied_bytes(log_text):
    m = COPIED_RE.findall(log_text)
    if not m:
        return None
    return sum(int(b) for b in m)


class Bench:
    def __init__(self, args):
        self.args = args
        build = os.path.abspath(args.build)
        self.hxfrd = os.environ.get("HXFRD") or os.path.join(build, "src/daemon/hxfrd")
        self.tool = os.environ.get("HXFR_BENCH") or os.path.join(build, "bench/hxfr-bench")
        self.gpu_tool = os.environ.get("HXFR_BENCH_GPU") or os.path.join(build,
                                                                         "bench/hxfr-bench-gpu")
        self.gst_plugin_dir = os.environ.get("HXFR_GST_PLUGIN_DIR") or os.path.join(build, "gst")
        self.tmp = tempfile.mkdtemp(prefix="hxfr-bench.", dir="/dev/shm"
                                    if os.path.isdir("/dev/shm") else None)
        self.availability = {}

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- what can run here ------------------------------------------------

    def probe(self):
        av = {}
        for c in CONTENDERS:
            av[c[0]] = None
        if not os.access(self.hxfrd, os.X_OK):
            for cid, _, kind, _ in CONTENDERS:
                if kind == "hxfr":
                    av[cid] = "hxfrd not built"
        if shutil.which("ffmpeg") is None:
            av["ffmpeg"] = "ffmpeg CLI not installed"
        if shutil.which("gst-launch-1.0") is None:
            av["gst-x264enc"] = av["gst-vsockenc"] = "gst-launch-1.0 not installed"
        # Shared memory: the tool says whether libhxfr-client has it and the
        # daemon whether it accepts a ring; a short real attempt decides.
        probe_raw = os.path.join(self.tmp, "probe.raw")
        run_json([self.tool, "prepare", "--variant", "desktop", "--size", "64x64",
                  "--frames", "2", "--out", probe_raw])
        if av["shm-w4"] is None:
            d = Daemon(self.hxfrd, self.tmp)
            try:
                run_json([self.tool, "client", "--connect", d.unix, "--raw", probe_raw,
                          "--size", "64x64", "--frames", "2", "--window", "1", "--shm"])
            except RuntimeError as e:
                why = str(e).splitlines()[-1] if str(e) else "failed"
                av["shm-w1"] = av["shm-w4"] = why.replace("hxfr-bench: ", "")[-200:]
            finally:
                d.stop()
        if av["gst-vsockenc"] is None:
            env = self.gst_env()
            r = subprocess.run(["gst-inspect-1.0", "vsockenc"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode != 0:
                av["gst-vsockenc"] = "vsockenc element not built"
        os.unlink(probe_raw)
        self.availability = av
        for k, v in av.items():
            if v:
                log(f"{k}: {v}")

    def gst_env(self):
        env = dict(os.environ)
        env["GST_PLUGIN_PATH"] = self.gst_plugin_dir + (
            ":" + env["GST_PLUGIN_PATH"] if env.get("GST_PLUGIN_PATH") else "")
        return env

    # ---- contenders -------------------------------------------------------

    def run_floor(self, wl, raw, out):
        j, _, _, _ = run_json([self.tool, "floor", "--raw", raw, "--size", wl["size"],
                                 "--frames", str(wl["frames"]), "--threads", str(THREADS),
                                 "--out", out])
        return {"latency_ms": j["latency_ms"], "done_ms": j["done_ms"],
                "host_cpu_ms_per_frame": j["cpu_ms_per_frame"],
                # Without the mapped frames, which the daemon does not hold.
                "peak_rss_kb": j["peak_rss_kb"],
                "pixel_bytes_copied_per_frame": None}

    def run_hxfr(self, wl, raw, out, opts):
        d = Daemon(self.hxfrd, self.tmp)
        try:
            uri = d.unix if opts["uri"] == "unix" else d.tcp
            argv = [self.tool, "client", "--connect", uri, "--raw", raw, "--size", wl["size"],
                    "--frames", str(wl["frames"]), "--window", str(opts["window"]),
                    "--out", out]
            if opts.get("shm"):
                argv.append("--shm")
            cpu0 = d.cpu_ms()
            j, _, _, _ = run_json(argv)
            # The daemon may still be closing the connection: its CPU and
            # peak are read after the client exited, before SIGTERM.
            time.sleep(0.05)
            cpu = d.cpu_ms() - cpu0
            hwm = d.hwm_kb()
        finally:
            code, text = d.stop()
        copied = copied_bytes(text)
        return {"latency_ms": j["latency_ms"], "done_ms": j["done_ms"],
                "host_cpu_ms_per_frame": cpu / wl["frames"], "peak_rss_kb": hwm,
                "pixel_bytes_copied_per_frame": None if copied is None
                else copied / wl["frames"],
                "client_cpu_ms_per_frame": j["client_cpu_ms_per_frame"],
                "client_copy_ms_per_frame": j["client_copy_ms_per_frame"],
                "daemon_exit": code}

    def ffmpeg_argv(self, wl, raw, frames):
        w, h = wl["width"], wl["height"]
        s = x264_settings(w, h)
        return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                "-f", "rawvideo", "-pix_fmt", "bgra", "-s", f"{w}x{h}",
                "-framerate", str(FPS), "-i", raw, "-frames:v", str(frames),
                "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", PRESET,
                "-tune", "zerolatency", "-crf", str(CRF),
                "-maxrate", f"{s['vbv_maxrate_kbps']}k", "-bufsize", f"{s['vbv_bufsize_kbit']}k",
                "-g", str(GOP), "-bf", "0", "-forced-idr", "1",
                "-x264-params", "repeat-headers=1", "-threads", str(THREADS),
                "-color_range", "tv", "-colorspace", "smpte170m",
                "-color_primaries", "smpte170m", "-color_trc", "smpte170m",
                "-f", "h264", "-"]

    def gst_argv(self, wl, raw, frames, out, vsock_uri=None):
        w, h = wl["width"], wl["height"]
        s = x264_settings(w, h)
        src = [f"filesrc", f"location={raw}", f"blocksize={w * h * 4}", f"num-buffers={frames}",
               "!", "rawvideoparse", f"width={w}", f"height={h}", "format=bgra",
               f"framerate={FPS}/1", "!"]
        if vsock_uri:
            # vsockenc's own default bitrate is lower than hxfrd's: ask
            # for hxfrd's default so the x264 settings are the same.
            enc = ["vsockenc", f"address={vsock_uri}", "max-in-flight=4",
                   f"bitrate={bitrate_for(w, h)}", f"keyframe-interval={GOP}", "!"]
        else:
            # pass=qual: x264's CRF with quantizer as the rate factor and
            # bitrate as the VBV ceiling; vbv-buf-capacity in ms.
            enc = ["videoconvert", "!",
                   "video/x-raw,format=I420,colorimetry=bt601", "!",
                   "x264enc", f"speed-preset={PRESET}", "tune=zerolatency", "pass=qual",
                   f"quantizer={CRF}", f"bitrate={s['vbv_maxrate_kbps']}",
                   "vbv-buf-capacity=1000", f"key-int-max={GOP}", "bframes=0",
                   f"threads={THREADS}", "byte-stream=true",
                   "option-string=repeat-headers=1", "!",
                   "video/x-h264,stream-format=byte-stream", "!"]
        return ["gst-launch-1.0", "-q", *src, *enc, "filesink", f"location={out}"]

    def run_cli(self, wl, raw, out, kind):
        """CLI contenders: per-frame latency is not observable. Throughput
        and CPU are marginal: a short run of `short` frames is subtracted
        from the full run, so process start-up and encoder open count for
        neither (they would otherwise make these rows look worse)."""
        n, short = wl["frames"], max(2, wl["frames"] // 10)
        res = {}
        env = self.gst_env()
        for frames in (short, n):
            target = out if frames == n else out + ".short"
            if kind == "ffmpeg":
                with open(target, "wb") as f:
                    st, wall, cpu, rss, err = run_measured(self.ffmpeg_argv(wl, raw, frames),
                                                           stdout=f)
            else:
                vs = None
                d = None
                if kind == "vsockenc":
                    d = Daemon(self.hxfrd, self.tmp)
                    vs = d.unix
                try:
                    cpu0 = d.cpu_ms() if d else 0
                    st, wall, cpu, rss, err = run_measured(
                        self.gst_argv(wl, raw, frames, target, vs), env=env)
                    if d:
                        time.sleep(0.05)
                        res.setdefault("dcpu", {})[frames] = d.cpu_ms() - cpu0
                        res["hwm"] = d.hwm_kb()
                finally:
                    if d:
                        _, text = d.stop()
                        res["copied"] = copied_bytes(text)
            if st != 0:
                raise RuntimeError(f"{kind} failed ({st}): {err.strip()[-800:]}")
            res[frames] = (wall, cpu, rss)
        (ws, cs, _), (wn, cn, rssn) = res[short], res[n]
        # With very few frames (smoke mode) or a burst of load during the
        # short run the difference can vanish: then the wall-clock rate
        # (start-up included) is the honest figure.
        use_marginal = wn - ws > 0.2 * wn
        marginal = (n - short) / (wn - ws) if use_marginal else n / wn

        def per_frame(full, part):
            return max(0.0, (full - part) / (n - short) if use_marginal else full / n)
        r = {"latency_ms": None, "done_ms": None, "fps_marginal": marginal,
             "fps_wall": n / wn, "fps_method": "marginal" if use_marginal else "wall",
             "host_cpu_ms_per_frame": per_frame(cn, cs),
             "peak_rss_kb": rssn, "pixel_bytes_copied_per_frame": None}
        if kind == "vsockenc":
            dc = res["dcpu"]
            r["host_cpu_ms_per_frame"] = per_frame(dc[n], dc[short])
            r["client_cpu_ms_per_frame"] = per_frame(cn, cs)
            r["peak_rss_kb"] = res.get("hwm")
            r["pixel_bytes_copied_per_frame"] = (None if res.get("copied") is None
                                                 else res["copied"] / n)
        return r

    def run_contender(self, c, wl, raw, out):
        cid, _, kind, opts = c
        if kind == "floor":
            return self.run_floor(wl, raw, out)
        if kind == "hxfr":
            return self.run_hxfr(wl, raw, out, opts)
        return self.run_cli(wl, raw, out, kind)


    def quality(self, wl, raw, h264):
        j, _, _, _ = run_json([self.tool, "quality", "--raw", raw, "--size", wl["size"],
                               "--frames", str(wl["frames"]), "--h264", h264,
                               "--fps", str(FPS)])
        opts = x264_options(h264)
        return {"kbps": j["kbps"], "psnr_avg": j["psnr_avg"], "psnr_y_avg": j["psnr_y_avg"],
                "psnr_min": j["psnr_min"], "idr_missing_params": j["idr_missing_params"],
                "x264_options": opts}

    # ---- one workload -----------------------------------------------------

    def workload(self, name, variant, w, h, frames, rounds):
        wl = {"name": name, "variant": variant, "width": w, "height": h, "size": f"{w}x{h}",
              "frames": frames, "rounds": rounds,
              "load_average": " ".join(open("/proc/loadavg").read().split()[:3])}
        raw = os.path.join(self.tmp, name + ".raw")
        log(f"{name}: rendering {frames} frames of {variant} at {w}x{h}")
        run_json([self.tool, "prepare", "--variant", variant, "--size", wl["size"],
                  "--frames", str(frames), "--out", raw])
        runs = {c[0]: [] for c in CONTENDERS}
        errors = {}
        active = [c for c in CONTENDERS if not self.availability.get(c[0])]
        try:
            for rnd in range(rounds):
                k = rnd % len(active)
                order = active[k:] + active[:k]
                for c in order:
                    if c[0] in errors:
                        continue
                    out = os.path.join(self.tmp, f"{name}.{c[0]}.{rnd}.h264")
                    try:
                        r = self.run_contender(c, wl, raw, out)
                    except (RuntimeError, ValueError, KeyError, OSError) as e:
                        errors[c[0]] = str(e)
                        log(f"{name} {c[0]}: {e}")
                        continue
                    runs[c[0]].append(r)
                    log(f"{name} round {rnd + 1}/{rounds} {c[0]}: {row_fps(r, frames):.1f} fps")
            rows = []
            for c in CONTENDERS:
                cid, label, kind, _ = c
                row = {"id": cid, "label": label, "kind": kind}
                why = self.availability.get(cid) or errors.get(cid)
                if why:
                    row.update(available=False, reason=why, failed=cid in errors)
                    rows.append(row)
                    continue
                row.update(summarize(runs[cid], frames))
                try:
                    row.update(self.quality(wl, raw, os.path.join(self.tmp,
                                                                  f"{name}.{cid}.0.h264")))
                except (RuntimeError, ValueError) as e:
                    row["quality_error"] = str(e)
                rows.append(row)
            add_ratios(rows)
            wl["rows"] = rows
            return wl
        finally:
            for f in os.listdir(self.tmp):
                if f.startswith(name + "."):
                    os.unlink(os.path.join(self.tmp, f))

    # ---- hxfr-gpu -----------------------------------------------------------

    def gpu(self, w, h, frames, rounds, pieces):
        """hxfr-bench-gpu: TRANSFER+FLUSH handling per frame, QEMU's display
        socket, and reading a frame in place against copying it; its
        variants interleave by round inside one process."""
        if not os.access(self.gpu_tool, os.X_OK):
            log("hxfr-gpu: hxfr-bench-gpu not built (meson option gpu, libyuv)")
            return {"available": False, "reason": "hxfr-bench-gpu not built"}
        log(f"hxfr-gpu: {w}x{h}, {frames} frames x {rounds} rounds, {pieces} backing pieces")
        j, _, _, _ = run_json([self.gpu_tool, "--size", f"{w}x{h}", "--frames", str(frames),
                               "--rounds", str(rounds), "--pieces", str(pieces)])
        j["available"] = True
        j["load_average"] = " ".join(open("/proc/loadavg").read().split()[:3])
        for k, v in j["variants"].items():
            log(f"hxfr-gpu {k}: {v['ms_per_frame']:.2f} ms per frame")
        return j

    # ---- scaling ----------------------------------------------------------

    def scaling(self, counts, w, h, fps, frames):
        raw = os.path.join(self.tmp, "scaling.raw")
        size = f"{w}x{h}"
        run_json([self.tool, "prepare", "--variant", "desktop", "--size", size,
                  "--frames", str(frames), "--out", raw])
        points = []
        try:
            for n in counts:
                d = Daemon(self.hxfrd, self.tmp)
                outs = []
                try:
                    cpu0, t0 = d.cpu_ms(), time.monotonic()
                    procs = []
                    for i in range(n):
                        f = tempfile.TemporaryFile()
                        p = subprocess.Popen([self.tool, "client", "--connect", d.unix,
                                              "--raw", raw, "--size", size, "--frames",
                                              str(frames), "--window", "4", "--fps", str(fps)],
                                             stdout=f, stderr=subprocess.PIPE,
                                             stdin=subprocess.DEVNULL)
                        procs.append((p, f))
                    for p, f in procs:
                        _, err = p.communicate(timeout=600)
                        f.seek(0)
                        if p.returncode != 0:
                            raise RuntimeError("scaling client failed: " + err.decode()[-400:])
                        outs.append(json.loads(f.read()))
                        f.close()
                    wall = time.monotonic() - t0
                    cpu = d.cpu_ms() - cpu0
                finally:
                    d.stop()
                lat = sorted(x for o in outs for x in o["latency_ms"][3:])
                # Delivered rate: frame intervals over the time from the
                # first frame's due time to the last result. A client that
                # keeps up gets just under the paced rate; one that falls
                # behind gets less (catching up after a slow first frame
                # cannot push it above the pace).
                per = [(len(o["done_ms"]) - 1) * 1000.0 / o["done_ms"][-1] for o in outs]
                pt = {"clients": n, "fps_per_client_min": min(per),
                      "fps_per_client_median": statistics.median(per),
                      "fps_total": sum(per), "daemon_cpu_percent": 100.0 * cpu / 1000.0 / wall,
                      "latency_p50_ms": percentile(lat, 0.5),
                      "latency_p99_ms": percentile(lat, 0.99),
                      "saturated": min(per) < 0.95 * fps}
                log(f"scaling {n} clients: {pt['fps_per_client_median']:.1f} fps each, daemon "
                    f"{pt['daemon_cpu_percent']:.0f}% CPU")
                points.append(pt)
        finally:
            os.unlink(raw)
        sat = next((p["clients"] for p in points if p["saturated"]), None)
        return {"width": w, "height": h, "fps": fps, "frames_per_client": frames, "window": 4,
                "points": points, "first_saturated_clients": sat}


def x264_options(path):
    """The settings string x264 writes into its SEI (first IDR)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    m = re.search(rb"options: ([ -~]+)", head)
    return m.group(1).decode() if m else None


def row_fps(r, frames):
    if r.get("fps_marginal") is not None:
        return r["fps_marginal"]
    done = r["done_ms"]
    warm = min(3, frames // 4)
    span = done[frames - 1] - done[warm]
    return (frames - 1 - warm) / (span / 1000.0) if span > 0 else float("nan")


def summarize(runs, frames):
    """Throughput: median over rounds (steady state: the first frames,
    encoder open and first IDR, are left out). Latency: percentiles over the
    frames of all rounds pooled, warm-up frames left out."""
    warm = min(3, frames // 4)
    fps = [row_fps(r, frames) for r in runs]
    s = {"available": True, "rounds": len(runs), "fps": statistics.median(fps),
         "fps_rounds": fps}
    if runs[0]["latency_ms"] is not None:
        lat = sorted(x for r in runs for x in r["latency_ms"][warm:])
        s.update(latency_p50_ms=percentile(lat, 0.5), latency_p99_ms=percentile(lat, 0.99),
                 latency_samples=len(lat))
    else:
        s.update(latency_p50_ms=None, latency_p99_ms=None,
                 latency_note="per-frame latency not observable from outside the CLI")
    if runs[0].get("fps_wall") is not None:
        s["fps_wall_incl_startup"] = statistics.median(r["fps_wall"] for r in runs)
    for k in ("host_cpu_ms_per_frame", "client_cpu_ms_per_frame", "client_copy_ms_per_frame"):
        vals = [r[k] for r in runs if r.get(k) is not None]
        s[k] = statistics.median(vals) if vals else None
    rss = [r["peak_rss_kb"] for r in runs if r.get("peak_rss_kb")]
    s["peak_rss_kb"] = max(rss) if rss else None
    cp = [r["pixel_bytes_copied_per_frame"] for r in runs
          if r.get("pixel_bytes_copied_per_frame") is not None]
    s["pixel_bytes_copied_per_frame"] = max(cp) if cp else None
    return s


def add_ratios(rows):
    """Ratios to the floor are paired by round (contender's fps in round k
    over the floor's fps in round k: both ran minutes apart at most), then
    the median over rounds is taken."""
    floor = next((r for r in rows if r["id"] == "floor" and r.get("available")), None)
    for r in rows:
        if not r.get("available") or not floor:
            continue
        pairs = [a / b for a, b in zip(r["fps_rounds"], floor["fps_rounds"]) if b > 0]
        r["fps_vs_floor_rounds"] = [round(x, 3) for x in pairs]
        # Parity check: x264 writes its full settings into the stream.
        if r.get("x264_options") and floor.get("x264_options"):
            r["x264_options_match_floor"] = r["x264_options"] == floor["x264_options"]
        # The noise-proof view: CPU spent per frame (host + client) over
        # the floor's. On a machine that is CPU-bound, throughput relative
        # to the floor tends to its inverse.
        if r.get("host_cpu_ms_per_frame") and floor.get("host_cpu_ms_per_frame"):
            r["cpu_vs_floor"] = ((r["host_cpu_ms_per_frame"] +
                                  (r.get("client_cpu_ms_per_frame") or 0)) /
                                 floor["host_cpu_ms_per_frame"])
        r["fps_vs_floor"] = statistics.median(pairs) if len(pairs) == len(
            r["fps_rounds"]) else r["fps"] / floor["fps"]
        if r.get("latency_p50_ms") is not None:
            r["added_p50_ms"] = r["latency_p50_ms"] - floor["latency_p50_ms"]
            r["added_p99_ms"] = r["latency_p99_ms"] - floor["latency_p99_ms"]


def goals(workloads):
    """The goals of issue 9, each met or not with its margin."""
    out = []

    def row(wl, cid):
        return next((r for r in wl["rows"] if r["id"] == cid), None)

    def add(name, wl, value, target, met, unit, note=""):
        out.append({"goal": name, "workload": wl["name"] if wl else None,
                    "value": value, "target": target, "unit": unit,
                    "met": met, "note": note})

    def check(wl, cid, name, key, target, met, unit):
        """Goal name on row cid's value key; a row that did not run is noted."""
        r = row(wl, cid)
        if r is None:
            return
        if not r.get("available"):
            add(name, wl, None, target, None, unit, r.get("reason", "not available"))
            return
        add(name, wl, r[key], target, met(r[key]), unit)

    for wl in workloads:
        if wl["variant"] != "desktop":
            continue
        for cid, target in (("unix-w4", 0.90), ("unix-w1", 0.90), ("tcp-w4", 0.90),
                            ("shm-w4", 0.98)):
            check(wl, cid, f"{cid} throughput >= {target:.2f}x floor", "fps_vs_floor",
                  target, lambda v, t=target: v >= t, "x")
        if wl["height"] == 1080 or wl["name"].startswith("smoke"):
            for cid, target in (("unix-w1", 2.0), ("shm-w1", 0.3)):
                check(wl, cid, f"{cid} added latency p50 <= {target} ms", "added_p50_ms",
                      target, lambda v, t=target: v <= t, "ms")
        best = max((r["fps"] for r in wl["rows"] if r.get("available")
                    and r["kind"] == "hxfr"), default=None)
        for cid in ("ffmpeg", "gst-x264enc"):
            r = row(wl, cid)
            if r is None or best is None:
                continue
            if not r.get("available"):
                add(f"hxfr >= 2x {cid} throughput", wl, None, 2.0, None, "x",
                    r.get("reason", "not available"))
                continue
            v = best / r["fps"]
            add(f"hxfr >= 2x {cid} throughput", wl, v, 2.0, v >= 2.0, "x",
                "best hxfr row vs the CLI's marginal throughput")
        r = row(wl, "shm-w4")
        if r is not None:
            if not r.get("available"):
                add("shm copies 0 pixel bytes on the host", wl, None, 0, None, "B/frame",
                    r.get("reason", "not available"))
            else:
                v = r.get("pixel_bytes_copied_per_frame")
                add("shm copies 0 pixel bytes on the host", wl, v, 0,
                    v == 0 if v is not None else None, "B/frame")
    return out


# ---- output ---------------------------------------------------------------

def fmt(v, nd=1):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def markdown(res):
    m = res["meta"]
    lines = [f"# hxfr benchmark results ({m['date']})", "",
             f"Commit `{m['commit']}`, {m['cpus']} CPUs, load average {m['load_before']} before "
             f"and {m['load_after']} after; {m['seconds']:.0f} s in all. x264 settings for every "
             f"contender: {m['x264']}. Throughput is the median over rounds of the steady-state "
             "rate; latency percentiles pool all rounds' frames (warm-up left out). CLI rows: "
             "marginal throughput and CPU (a short run subtracted), latency not observable. "
             "Host CPU: the daemon process (hxfr rows), the encoding process itself (floor, "
             "CLI rows); client CPU: the sending process (hxfr-bench, gst-launch with "
             "vsockenc). Window-4 rows send as fast as the window allows, so their latency "
             "includes waiting behind up to 3 frames; window-1 rows show the round trip. "
             "vs floor: median over rounds of the ratio within each round. CPU vs floor: (host + "
             "client CPU per frame) / the floor's, the figure least disturbed by other load. "
             "See bench/README.md.", ""]
    for wl in res["workloads"]:
        lines += [f"## {wl['name']}: {wl['variant']} pattern {wl['size']} BGRA, "
                  f"{wl['frames']} frames x {wl['rounds']} rounds (load average "
                  f"{wl.get('load_average', 'n/a')} at the start)", "",
                  "| contender | fps | vs floor | p50 ms | p99 ms | added p50 ms | "
                  "host CPU ms/frame | client CPU ms/frame | CPU vs floor | peak RSS MiB | "
                  "pixel B copied/frame | kbit/s | PSNR avg/min dB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in wl["rows"]:
            if not r.get("available"):
                lines.append(f"| {r['label']} | not available: {r.get('reason', '')[:120]} "
                             "| | | | | | | | | | | |")
                continue
            rss = r["peak_rss_kb"] / 1024.0 if r.get("peak_rss_kb") else None
            cp = r.get("pixel_bytes_copied_per_frame")
            lines.append(
                f"| {r['label']} | {fmt(r['fps'])} | {fmt(r.get('fps_vs_floor'), 2)} | "
                f"{fmt(r['latency_p50_ms'], 2)} | {fmt(r['latency_p99_ms'], 2)} | "
                f"{fmt(r.get('added_p50_ms'), 2)} | {fmt(r.get('host_cpu_ms_per_frame'), 2)} | "
                f"{fmt(r.get('client_cpu_ms_per_frame'), 2)} | "
                f"{fmt(r.get('cpu_vs_floor'), 2)} | {fmt(rss, 0)} | {fmt(None if cp is None else int(cp))} | "
                f"{fmt(r.get('kbps'), 0)} | {fmt(r.get('psnr_avg'), 2)} / "
                f"{fmt(r.get('psnr_min'), 2)} |")
        lines.append("")
    lines += ["## Goals", "", "| goal | workload | value | target | met |", "|---|---|---|---|---|"]
    for g in res["goals"]:
        met = "n/a" if g["met"] is None else ("met" if g["met"] else "NOT met")
        val = "n/a" if g["value"] is None else f"{g['value']:.3f} {g['unit']}"
        lines.append(f"| {g['goal']} | {g['workload']} | {val} | {g['target']} | {met} "
                     f"{('(' + g['note'] + ')') if g['note'] else ''} |")
    g = res.get("gpu")
    if g and g.get("available"):
        r = g["ratios"]
        lines += ["", f"## hxfr-gpu: {g['width']}x{g['height']} B8G8R8X8, backing in "
                  f"{g['pieces']} pieces, {g['frames']} frames x {g['rounds']} rounds "
                  f"(load average {g.get('load_average', 'n/a')})", "",
                  "| what | CPU ms per frame | wall ms per frame | wall ms, every round |",
                  "|---|---|---|---|"]
        for k, v in g["variants"].items():
            lines.append(f"| {GPU_LABELS.get(k, k)} | {v['cpu_ms_per_frame']:.2f} | "
                         f"{v['ms_per_frame']:.2f} | "
                         f"{' '.join(f'{x:.2f}' for x in v['rounds_ms'])} |")
        c = g["cpu_ratios"]
        lines += ["", "Ratios within each round (median; CPU time, then wall time): reading in "
                  f"place / copy then convert = {c['inplace_i420_vs_copy_i420']:.2f}, "
                  f"{r['inplace_i420_vs_copy_i420']:.2f}; copy alone / reading in place = "
                  f"{c['copy_vs_inplace_i420']:.2f}, {r['copy_vs_inplace_i420']:.2f}; with QEMU's "
                  f"display / device alone = {c['display_vs_device']:.2f}, "
                  f"{r['display_vs_device']:.2f}. Medians of rounds; CPU is hxfr-bench-gpu's "
                  "own thread (QEMU's reading of the display socket not included)."]
    elif g:
        lines += ["", f"## hxfr-gpu: not available ({g.get('reason')})"]
    sc = res.get("scaling")
    if sc:
        lines += ["", f"## Scaling: {sc['width']}x{sc['height']} at {sc['fps']} fps paced, "
                  f"window {sc['window']}, {sc['frames_per_client']} frames per client", "",
                  "| clients | fps per client (median / min) | total fps | daemon CPU % | "
                  "p50 ms | p99 ms | saturated |", "|---|---|---|---|---|---|---|"]
        for p in sc["points"]:
            lines.append(f"| {p['clients']} | {p['fps_per_client_median']:.1f} / "
                         f"{p['fps_per_client_min']:.1f} | {p['fps_total']:.1f} | "
                         f"{p['daemon_cpu_percent']:.0f} | {fmt(p['latency_p50_ms'], 2)} | "
                         f"{fmt(p['latency_p99_ms'], 2)} | "
                         f"{'yes' if p['saturated'] else 'no'} |")
        sat = sc["first_saturated_clients"]
        lines += ["", "Saturation (a client below 95 % of its frame rate): " +
                  (f"from {sat} clients." if sat else "not reached.")]
    return "\n".join(lines) + "\n"


def plot(res, png, tmp):
    if shutil.which("gnuplot") is None:
        log("gnuplot not installed: no plot")
        return False
    dat = os.path.join(tmp, "plot.dat")
    ids = [c[0] for c in CONTENDERS]
    wls = res["workloads"]
    with open(dat, "w") as f:
        f.write("contender " + " ".join(w["name"] for w in wls) + "\n")
        for cid in ids:
            vals = []
            for w in wls:
                r = next(r for r in w["rows"] if r["id"] == cid)
                vals.append(f"{r['fps_vs_floor']:.3f}" if r.get("fps_vs_floor") else "0")
            f.write(cid + " " + " ".join(vals) + "\n")
    lat = os.path.join(tmp, "lat.dat")
    with open(lat, "w") as f:
        for r in wls[0]["rows"]:
            if r.get("available") and r.get("latency_p50_ms") is not None:
                f.write(f"{r['id']} {r['latency_p50_ms']:.3f} {r['latency_p99_ms']:.3f}\n")
    sc = os.path.join(tmp, "scale.dat")
    with open(sc, "w") as f:
        for p in (res.get("scaling") or {}).get("points", []):
            f.write(f"{p['clients']} {p['fps_per_client_median']:.2f} "
                    f"{p['daemon_cpu_percent']:.1f}\n")
    ncol = len(wls) + 1
    scaling_plot = ""
    if (res.get("scaling") or {}).get("points"):
        scaling_plot = f"""
set style data linespoints
set title 'Scaling: clients at {res['scaling']['fps']} fps paced'
set xtics norotate
set xlabel 'clients'
set ylabel 'delivered fps per client'
set y2label 'daemon CPU %'
set y2tics
set yrange [0:*]
set y2range [0:*]
plot '{sc}' using 1:2 title 'fps per client (median)' axes x1y1, \\
     '' using 1:3 title 'daemon CPU %' axes x1y2
"""
    script = f"""
set terminal pngcairo size 1100,{1300 if scaling_plot else 900} font ",10" noenhanced
set output '{png}'
set multiplot layout {3 if scaling_plot else 2},1 title 'hxfr benchmark {res['meta']['date']}'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top
set grid ytics
set xtics rotate by -30
set ylabel 'throughput / floor (same run)'
set yrange [0:*]
set title 'Throughput relative to the floor, per workload (0 = not available)'
plot for [i=2:{ncol}] '{dat}' using i:xtic(1) title columnheader(i)
set title 'Per-frame latency, {wls[0]['name']} (submit -> response; CLI rows not observable)'
set ylabel 'ms'
plot '{lat}' using 2:xtic(1) title 'p50', '' using 3 title 'p99'
{scaling_plot}
unset multiplot
"""
    gp = os.path.join(tmp, "plot.gp")
    with open(gp, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", gp], stderr=subprocess.PIPE)
    if r.returncode != 0:
        log("gnuplot failed: " + r.stderr.decode()[-400:])
        return False
    return True


def git_commit():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/release", help="meson build directory")
    ap.add_argument("--out", help="results folder (default bench/results; with --check and "
                    "no --out, a temporary folder removed afterwards)")
    ap.add_argument("--smoke", action="store_true", help="a few frames of each, ~seconds")
    ap.add_argument("--only", help="comma-separated workload names (default: all)")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--check", action="store_true",
                    help="fail unless every available contender ran and the JSON is well-formed")
    ap.add_argument("--render", metavar="JSON",
                    help="only rewrite latest.md and latest.png from an earlier latest.json "
                    "(ratios and goals recomputed)")
    args = ap.parse_args()
    if args.render:
        return render(args)

    tmp_out = None
    if not args.out:
        if args.check:
            tmp_out = args.out = tempfile.mkdtemp(prefix="hxfr-bench-out.")
        else:
            args.out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(args.out, exist_ok=True)
    b = Bench(args)
    t0 = time.monotonic()
    load_before = " ".join(open("/proc/loadavg").read().split()[:3])
    try:
        b.probe()
        wls = SMOKE_WORKLOADS if args.smoke else FULL_WORKLOADS
        if args.only:
            keep = args.only.split(",")
            wls = [w for w in wls if w[0] in keep]
        results = [b.workload(*w) for w in wls]
        gpu = b.gpu(*(GPU_SMOKE if args.smoke else GPU_FULL))
        scaling = None
        if not args.no_scaling:
            if args.smoke:
                scaling = b.scaling([1, 2], 320, 240, 30, 10)
            else:
                scaling = b.scaling([1, 2, 4, 8, 12, 16], 1280, 720, 30, 120)
        res = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        "commit": git_commit(), "cpus": os.cpu_count(),
                        "load_before": load_before,
                        "load_after": " ".join(open("/proc/loadavg").read().split()[:3]),
                        "seconds": time.monotonic() - t0, "smoke": args.smoke,
                        "x264": ", ".join(f"{k} {v}" for k, v in
                                          x264_settings(1920, 1080).items()
                                          if not k.startswith("vbv")) +
                        ", VBV max rate = buffer = max(4 x pixels, 5 Mbit) per second",
                        "threads": THREADS, "nominal_fps": FPS},
               "workloads": results, "goals": goals(results), "scaling": scaling, "gpu": gpu}
        res["meta"]["seconds"] = time.monotonic() - t0
        with open(os.path.join(args.out, "latest.json"), "w") as f:
            json.dump(res, f, indent=1)
        with open(os.path.join(args.out, "latest.md"), "w") as f:
            f.write(markdown(res))
        plot(res, os.path.join(args.out, "latest.png"), b.tmp)
        log(f"done in {res['meta']['seconds']:.0f} s: {args.out}/latest.md")
        if args.check:
            problems = check(os.path.join(args.out, "latest.json"))
            for p in problems:
                log("check: " + p)
            if problems:
                return 1
            log("check: results well-formed, every available contender ran")
    finally:
        b.close()
        if tmp_out:
            shutil.rmtree(tmp_out, ignore_errors=True)
    return 0


def render(args):
    with open(args.render) as f:
        res = json.load(f)
    for wl in res["workloads"]:
        add_ratios(wl["rows"])
    res["goals"] = goals(res["workloads"])
    out = args.out or os.path.dirname(os.path.abspath(args.render))
    with open(os.path.join(out, "latest.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write(markdown(res))
    tmp = tempfile.mkdtemp(prefix="hxfr-bench-plot.")
    try:
        plot(res, os.path.join(out, "latest.png"), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def check(path):
    """What the smoke test asserts: the JSON parses back, every contender
    that could run here did run and produced a decodable stream of every
    frame with sane figures, the floor and the UNIX rows exist, and every
    goal has a verdict or a reason."""
    problems = []
    with open(path) as f:
        res = json.load(f)
    for key in ("meta", "workloads", "goals", "scaling"):
        if key not in res:
            problems.append(f"missing '{key}'")
    for wl in res.get("workloads", []):
        ids = [r["id"] for r in wl["rows"]]
        if ids != [c[0] for c in CONTENDERS]:
            problems.append(f"{wl['name']}: rows {ids}")
        for r in wl["rows"]:
            name = f"{wl['name']} {r['id']}"
            if not r.get("available"):
                if r.get("failed") or r["id"] in ("floor", "unix-w1", "unix-w4", "tcp-w4"):
                    problems.append(f"{name} did not run: {r.get('reason')}")
                elif not r.get("reason"):
                    problems.append(f"{name}: unavailable without a reason")
                continue
            if not (r["fps"] > 0 and r.get("fps_vs_floor", 0) > 0):
                problems.append(f"{name}: fps {r['fps']}")
            if r.get("quality_error") or not r.get("psnr_avg", 0) > 30:
                problems.append(f"{name}: quality {r.get('quality_error') or r.get('psnr_avg')}")
            if r.get("kbps", 0) <= 0:
                problems.append(f"{name}: kbit/s {r.get('kbps')}")
            if r.get("x264_options_match_floor") is False:
                problems.append(f"{name}: x264 settings differ from the floor's")
            if r["kind"] in ("floor", "hxfr"):
                if not (r.get("latency_p50_ms") or 0) > 0 or r["latency_p99_ms"] < r[
                        "latency_p50_ms"]:
                    problems.append(f"{name}: latency {r.get('latency_p50_ms')}")
            if r["kind"] == "hxfr" and r.get("pixel_bytes_copied_per_frame") is None:
                problems.append(f"{name}: no pixel-bytes-copied figure from the daemon")
            if not (r.get("host_cpu_ms_per_frame") or 0) >= 0:
                problems.append(f"{name}: CPU {r.get('host_cpu_ms_per_frame')}")
    for g in res.get("goals", []):
        if g["met"] is None and not g["note"]:
            problems.append(f"goal '{g['goal']}' has neither a verdict nor a reason")
    g = res.get("gpu")
    if g is not None and g.get("available"):
        for k in GPU_LABELS:
            if not g["variants"].get(k, {}).get("ms_per_frame", 0) > 0:
                problems.append(f"hxfr-gpu: no figure for {k}")
    elif g is not None and g.get("reason") != "hxfr-bench-gpu not built":
        problems.append(f"hxfr-gpu: {g.get('reason')}")
    sc = res.get("scaling")
    if sc is not None and not all(p["fps_total"] > 0 for p in sc["points"]):
        problems.append("scaling: a point without frames")
    return problems


if __name__ == "__main__":
    sys.exit(main())
