/* hxfr-send: sends frames to an hxfr host and writes the H.264 it returns.
 *
 * Frames come from the built-in test pattern, a YUV4MPEG2 file or a raw
 * file; they are submitted with a window of frames in flight, paced on an
 * absolute schedule (or as fast as the host takes them), and the access
 * units that come back are appended to an Annex B file. A live progress
 * line goes to a terminal; the summary goes to stderr, or to stdout as one
 * JSON object with --json.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hxfr/client.h>

#include "../lib/pattern/pattern.h"

#define EXIT_FATAL       1
#define EXIT_USAGE       2
#define EXIT_INTERRUPTED 130
/* How long one submit may wait for window room, and the final flush, before
 * the host is declared unresponsive. */
#define HOST_TIMEOUT_MS      10000
#define PROGRESS_INTERVAL_NS 250000000ull
#define RECENT_LATENCIES     256u

enum source_kind { SOURCE_PATTERN, SOURCE_Y4M, SOURCE_RAW };

struct args {
    const char *connect;
    const char *source;
    const char *output;
    uint32_t width;
    uint32_t height;
    bool have_size;
    double fps;
    bool have_fps;
    uint64_t frames;
    uint32_t window;
    bool json;
    uint32_t format;
    uint32_t bitrate;
    uint32_t gop;
    bool reconnect;
    double duration;
    uint16_t session;
    bool have_session;
    int32_t scanout; /* -1: not publishing into a scanout */
    unsigned connect_timeout;
    bool shm;               /* memfd ring over unix: */
    const char *shm_region; /* host-configured region name */
    const char *shm_path;   /* this side's view of it (NULL: find ivshmem) */
    uint64_t shm_offset;
};

struct source {
    enum source_kind kind;
    enum hxfr_pattern_variant variant;
    FILE *file;
    uint64_t frame_bytes;
};

struct stats {
    uint64_t submitted;
    uint64_t ok;
    uint64_t errors;
    uint64_t remote_errors;
    uint64_t keyframes;
    uint64_t bytes;
    uint64_t reconnects;
    uint64_t disconnects;
    bool first_after_reconnect_pending;
    uint32_t *lat_us; /* every latency, microseconds; grown geometrically */
    size_t lat_len;
    size_t lat_cap;
    uint32_t recent[RECENT_LATENCIES];
    size_t recent_len;
    size_t recent_pos;
};

struct app {
    struct args a;
    struct stats s;
    FILE *out;
    int out_error;
    bool tty;
    uint64_t frame_bytes; /* pixel bytes per frame */
    uint32_t shm_slots;   /* ring slots (0 inline) */
    uint64_t shm_slot_bytes;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* The transports connect with a blocking connect(), which can take the
 * kernel's SYN retry time (about two minutes) against an address that
 * drops packets. A watchdog bounds the initial connection instead. */

static void on_connect_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "hxfr-send: the host did not answer while connecting; "
                              "giving up\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)n;
    _exit(EXIT_FATAL);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hxfr-send --connect URI [options]\n"
            "\n"
            "Sends raw frames to an hxfr host (hxfrd), which encodes them to H.264,\n"
            "and writes the access units it returns to an Annex B file.\n"
            "\n"
            "  --connect URI     host endpoint: unix:PATH, tcp:HOST:PORT (a guest on\n"
            "                    QEMU user networking: tcp:10.0.2.2:15937),\n"
            "                    vsock:CID:PORT (default vsock:2:5000), serial:PATH\n"
            "                    (a virtio-serial port such as /dev/virtio-ports/hxfr)\n"
            "  --source SRC      pattern[:desktop|static|busy]  built-in test screen\n"
            "                    y4m:FILE   YUV4MPEG2, 4:2:0 only (size, fps from file)\n"
            "                    raw:FILE   packed frames of --format at --size\n"
            "                    (default pattern:desktop)\n"
            "  --size WxH        frame size (default 1280x720; y4m: from the file)\n"
            "  --format F        pixel format sent: BGRA, BGRx, RGBA, RGBx, NV12, I420\n"
            "                    (default BGRA; y4m sources are always I420)\n"
            "  --fps N           frames per second on an absolute schedule (no drift);\n"
            "                    0 sends as fast as the host accepts (default 30)\n"
            "  --frames N        frames to send (default 300 without --duration; 0 = no\n"
            "                    limit: until --duration ends, the source ends or Ctrl-C)\n"
            "  --duration S      stop after S seconds (whichever of --frames/--duration\n"
            "                    ends first when both are given)\n"
            "  --window N        frames in flight, 1..%u (default 4)\n"
            "  --output FILE     Annex B H.264 output (default out.h264; - for stdout\n"
            "                    is not allowed with --json)\n"
            "  --bitrate B       bit/s, suffix k or M allowed (default: host's choice)\n"
            "  --gop N           keyframe interval in frames (default: host's choice)\n"
            "  --reconnect       if the host goes away, reconnect with backoff, re-send\n"
            "                    the configuration and continue with a keyframe\n"
            "  --session N       session id in every message header (default 0)\n"
            "  --scanout N       publish into scanout N (push mode): enable it (size and\n"
            "                    --fps as refresh), send the frames with session id N so\n"
            "                    every subscriber gets them, disable it at the end\n"
            "  --connect-timeout S  give up when connecting and configuring take longer\n"
            "                    than S seconds (default 20; --reconnect adds 10)\n"
            "  --shm             zero copy: render into slots of a shared-memory ring (a\n"
            "                    sealed memfd passed to the host; unix: only)\n"
            "  --shm-region NAME zero copy through a region the host offers (hxfrd --shm\n"
            "                    NAME=PATH), over any transport\n"
            "  --shm-path PATH   this side's view of that region: the backing file, or\n"
            "                    the ivshmem BAR /sys/bus/pci/devices/.../resource2\n"
            "                    (default: the first ivshmem PCI device)\n"
            "  --shm-offset N    byte offset of the ring in the region (default 0)\n"
            "  --json            print the summary as one JSON object on stdout\n"
            "  --help            this text\n"
            "\n"
            "Latency is measured from a frame's submission to its response. Exit\n"
            "status: 0 when every frame was encoded (frames lost across a successful\n"
            "reconnect do not count), 1 when the host refused frames, was unreachable\n"
            "or went away, 2 for a usage error, 130 when interrupted (SIGINT/SIGTERM;\n"
            "the frames in flight are still collected and the summary printed).\n",
            HXFR_CLIENT_MAX_WINDOW);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-') {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 1e6) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_size(const char *s, uint32_t *w, uint32_t *h)
{
    char *end;
    errno = 0;
    unsigned long pw = strtoul(s, &end, 10);
    if (errno || end == s || *end != 'x' || s[0] == '-') {
        return -EINVAL;
    }
    const char *hs = end + 1;
    unsigned long ph = strtoul(hs, &end, 10);
    if (errno || end == hs || *end || hs[0] == '-' || pw == 0 || ph == 0 ||
        pw > HXFR_MAX_DIM_HARD || ph > HXFR_MAX_DIM_HARD) {
        return -EINVAL;
    }
    *w = (uint32_t)pw;
    *h = (uint32_t)ph;
    return 0;
}

static int parse_bitrate(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) {
        return -EINVAL;
    }
    if (*end == 'k' || *end == 'K') {
        v *= 1e3;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        v *= 1e6;
        end++;
    }
    if (*end || v > UINT32_MAX) {
        return -EINVAL;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    enum {
        O_CONNECT = 256,
        O_SOURCE,
        O_SIZE,
        O_FPS,
        O_FRAMES,
        O_WINDOW,
        O_OUTPUT,
        O_JSON,
        O_FORMAT,
        O_BITRATE,
        O_GOP,
        O_RECONNECT,
        O_DURATION,
        O_SESSION,
        O_CONNECT_TIMEOUT,
        O_SHM,
        O_SHM_REGION,
        O_SHM_PATH,
        O_SHM_OFFSET,
        O_SCANOUT,
        O_HELP
    };
    static const struct option opts[] = {
        {"connect", required_argument, NULL, O_CONNECT},
        {"source", required_argument, NULL, O_SOURCE},
        {"size", required_argument, NULL, O_SIZE},
        {"fps", required_argument, NULL, O_FPS},
        {"frames", required_argument, NULL, O_FRAMES},
        {"window", required_argument, NULL, O_WINDOW},
        {"output", required_argument, NULL, O_OUTPUT},
        {"json", no_argument, NULL, O_JSON},
        {"format", required_argument, NULL, O_FORMAT},
        {"bitrate", required_argument, NULL, O_BITRATE},
        {"gop", required_argument, NULL, O_GOP},
        {"reconnect", no_argument, NULL, O_RECONNECT},
        {"duration", required_argument, NULL, O_DURATION},
        {"session", required_argument, NULL, O_SESSION},
        {"connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT},
        {"shm", no_argument, NULL, O_SHM},
        {"shm-region", required_argument, NULL, O_SHM_REGION},
        {"shm-path", required_argument, NULL, O_SHM_PATH},
        {"shm-offset", required_argument, NULL, O_SHM_OFFSET},
        {"scanout", required_argument, NULL, O_SCANOUT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *a = (struct args){
        .source = "pattern:desktop",
        .output = "out.h264",
        .width = 1280,
        .height = 720,
        .fps = 30,
        .window = 4,
        .format = HXFR_FORMAT_ARGB8888,
        .connect_timeout = 20,
        .scanout = -1,
    };
    bool have_frames = false;
    int opt;
    uint64_t v;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int r = 0;
        switch (opt) {
        case O_CONNECT:
            a->connect = optarg;
            break;
        case O_SOURCE:
            a->source = optarg;
            break;
        case O_SIZE:
            r = parse_size(optarg, &a->width, &a->height);
            a->have_size = true;
            break;
        case O_FPS:
            r = parse_double(optarg, &a->fps);
            a->have_fps = true;
            break;
        case O_FRAMES:
            r = parse_u64(optarg, UINT32_MAX, &a->frames);
            have_frames = true;
            break;
        case O_WINDOW:
            r = parse_u64(optarg, HXFR_CLIENT_MAX_WINDOW, &v);
            if (r == 0 && v == 0) {
                r = -EINVAL;
            }
            a->window = (uint32_t)v;
            break;
        case O_OUTPUT:
            a->output = optarg;
            break;
        case O_JSON:
            a->json = true;
            break;
        case O_FORMAT:
            a->format = hxfr_format_from_name(optarg);
            r = a->format ? 0 : -EINVAL;
            break;
        case O_BITRATE:
            r = parse_bitrate(optarg, &a->bitrate);
            break;
        case O_GOP:
            r = parse_u64(optarg, UINT32_MAX, &v);
            a->gop = (uint32_t)v;
            break;
        case O_RECONNECT:
            a->reconnect = true;
            break;
        case O_DURATION:
            r = parse_double(optarg, &a->duration);
            break;
        case O_SESSION:
            r = parse_u64(optarg, UINT16_MAX, &v);
            a->session = (uint16_t)v;
            a->have_session = true;
            break;
        case O_SCANOUT:
            r = parse_u64(optarg, UINT16_MAX, &v);
            a->scanout = (int32_t)v;
            break;
        case O_CONNECT_TIMEOUT:
            r = parse_u64(optarg, 3600, &v);
            if (r == 0 && v == 0) {
                r = -EINVAL;
            }
            a->connect_timeout = (unsigned)v;
            break;
        case O_SHM:
            a->shm = true;
            break;
        case O_SHM_REGION:
            a->shm_region = optarg;
            r = optarg[0] && strlen(optarg) < HXFR_SHM_NAME_LEN ? 0 : -EINVAL;
            break;
        case O_SHM_PATH:
            a->shm_path = optarg;
            break;
        case O_SHM_OFFSET:
            r = parse_u64(optarg, UINT64_MAX / 2, &a->shm_offset);
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
        if (r < 0) {
            fprintf(stderr, "hxfr-send: invalid value for --%s: '%s'\n", opts[opt - O_CONNECT].name,
                    optarg);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hxfr-send: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -EINVAL;
    }
    if (!a->connect) {
        fprintf(stderr, "hxfr-send: --connect URI is required (see --help)\n");
        return -EINVAL;
    }
    if (!have_frames) {
        a->frames = a->duration > 0 ? 0 : 300;
    }
    if (a->shm && a->shm_region) {
        fprintf(stderr, "hxfr-send: --shm and --shm-region exclude each other\n");
        return -EINVAL;
    }
    if ((a->shm_path || a->shm_offset) && !a->shm_region) {
        fprintf(stderr, "hxfr-send: --shm-path and --shm-offset need --shm-region\n");
        return -EINVAL;
    }
    if (a->json && strcmp(a->output, "-") == 0) {
        fprintf(stderr, "hxfr-send: --output - and --json both want stdout\n");
        return -EINVAL;
    }
    if (a->scanout >= 0) {
        /* Frames reach scanout N through session id N. */
        if (a->have_session && a->session != (uint16_t)a->scanout) {
            fprintf(stderr, "hxfr-send: --scanout %d publishes on session %d, not --session %u\n",
                    a->scanout, a->scanout, a->session);
            return -EINVAL;
        }
        a->session = (uint16_t)a->scanout;
    }
    return 0;
}

/* Reads one line (up to cap-1 bytes, without the newline) from f. */
static int read_line(FILE *f, char *buf, size_t cap)
{
    size_t n = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF && ch != '\n') {
        if (n + 1 >= cap) {
            return -E2BIG;
        }
        buf[n++] = (char)ch;
    }
    buf[n] = '\0';
    if (ch == EOF) {
        return n == 0 ? -ENODATA : -EINVAL;
    }
    return 0;
}

/* Parses a YUV4MPEG2 stream header: size, frame rate, 4:2:0 only. */
static int y4m_header(FILE *f, const char *path, struct args *a)
{
    char line[1024];
    int r = read_line(f, line, sizeof(line));
    if (r < 0 || strncmp(line, "YUV4MPEG2", 9) != 0) {
        fprintf(stderr, "hxfr-send: %s: not a YUV4MPEG2 file\n", path);
        return -EINVAL;
    }
    unsigned long w = 0, h = 0, fn = 0, fd = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line + 9, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        switch (tok[0]) {
        case 'W':
            w = strtoul(tok + 1, NULL, 10);
            break;
        case 'H':
            h = strtoul(tok + 1, NULL, 10);
            break;
        case 'F':
            if (sscanf(tok + 1, "%lu:%lu", &fn, &fd) != 2) {
                fn = fd = 0;
            }
            break;
        case 'C':
            /* 8-bit 4:2:0 only; the chroma siting variants share the
             * layout, 10-bit ("420p10") and the others do not. */
            if (strcmp(tok + 1, "420") != 0 && strcmp(tok + 1, "420jpeg") != 0 &&
                strcmp(tok + 1, "420paldv") != 0 && strcmp(tok + 1, "420mpeg2") != 0) {
                fprintf(stderr,
                        "hxfr-send: %s: colour space %s is not supported "
                        "(4:2:0 only)\n",
                        path, tok + 1);
                return -EINVAL;
            }
            break;
        case 'I':
            if (tok[1] != 'p' && tok[1] != '?') {
                fprintf(stderr, "hxfr-send: %s: interlaced video is not supported\n", path);
                return -EINVAL;
            }
            break;
        default:
            break;
        }
    }
    if (w == 0 || h == 0 || w > HXFR_MAX_DIM_HARD || h > HXFR_MAX_DIM_HARD || (w & 1) || (h & 1)) {
        fprintf(stderr, "hxfr-send: %s: bad frame size %lux%lu (need even, 1..%u)\n", path, w, h,
                HXFR_MAX_DIM_HARD);
        return -EINVAL;
    }
    if (a->have_size && (a->width != w || a->height != h)) {
        fprintf(stderr, "hxfr-send: %s is %lux%lu but --size says %ux%u\n", path, w, h, a->width,
                a->height);
        return -EINVAL;
    }
    a->width = (uint32_t)w;
    a->height = (uint32_t)h;
    a->format = HXFR_FORMAT_I420;
    if (!a->have_fps && fn > 0 && fd > 0) {
        a->fps = (double)fn / (double)fd;
    }
    return 0;
}

static int source_open(struct source *src, struct args *a)
{
    const char *s = a->source;
    memset(src, 0, sizeof(*src));
    if (strncmp(s, "pattern", 7) == 0 && (s[7] == '\0' || s[7] == ':')) {
        src->kind = SOURCE_PATTERN;
        src->variant = HXFR_PATTERN_DESKTOP;
        if (s[7] == ':') {
            int v = hxfr_pattern_variant_from_name(s + 8);
            if (v < 0) {
                fprintf(stderr, "hxfr-send: unknown pattern '%s' (desktop, static, busy)\n", s + 8);
                return -EINVAL;
            }
            src->variant = (enum hxfr_pattern_variant)v;
        }
        return 0;
    }
    bool y4m = strncmp(s, "y4m:", 4) == 0;
    bool raw = strncmp(s, "raw:", 4) == 0;
    if (!y4m && !raw) {
        fprintf(stderr, "hxfr-send: unknown source '%s' (pattern, y4m:FILE, raw:FILE)\n", s);
        return -EINVAL;
    }
    const char *path = s + 4;
    src->kind = y4m ? SOURCE_Y4M : SOURCE_RAW;
    src->file = fopen(path, "rb");
    if (!src->file) {
        int r = -errno;
        fprintf(stderr, "hxfr-send: %s: %s\n", path, strerror(errno));
        return r;
    }
    if (y4m) {
        return y4m_header(src->file, path, a);
    }
    return 0;
}

/* Fills the frame buffer with frame index. Returns 1 with a frame, 0 at
 * the end of a file source, or a negative error. */
static int source_read(struct source *src, const struct hxfr_geometry *g, uint8_t *buf,
                       uint64_t index)
{
    if (src->kind == SOURCE_PATTERN) {
        uint8_t *planes[3] = {NULL, NULL, NULL};
        for (uint32_t i = 0; i < g->num_planes; i++) {
            planes[i] = buf + g->offset[i];
        }
        return hxfr_pattern_render(src->variant, g->format, g->width, g->height, index, planes,
                                   g->stride) < 0
                   ? -EINVAL
                   : 1;
    }
    if (src->kind == SOURCE_Y4M) {
        char line[256];
        int r = read_line(src->file, line, sizeof(line));
        if (r == -ENODATA) {
            return 0;
        }
        if (r < 0 || strncmp(line, "FRAME", 5) != 0) {
            fprintf(stderr, "hxfr-send: y4m: bad frame header at frame %" PRIu64 "\n", index);
            return -EINVAL;
        }
    }
    size_t n = fread(buf, 1, g->size, src->file);
    if (n == 0 && feof(src->file) && src->kind == SOURCE_RAW) {
        return 0;
    }
    if (n != g->size) {
        fprintf(stderr,
                "hxfr-send: source ends inside frame %" PRIu64 " (%zu of %" PRIu64 " bytes)\n",
                index, n, g->size);
        return -EINVAL;
    }
    return 1;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

/* Percentile p (0..1) of sorted values, in milliseconds. */
static double pct_ms(const uint32_t *sorted, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)ceil(p * (double)n);
    i = i == 0 ? 0 : i - 1;
    if (i >= n) {
        i = n - 1;
    }
    return sorted[i] / 1000.0;
}

static void on_frame(void *data, const struct hxfr_client_result *res)
{
    struct app *app = data;
    struct stats *s = &app->s;
    if (res->status != 0) {
        s->errors++;
        if (res->status == -HXFR_EREMOTE) {
            s->remote_errors++;
            fprintf(stderr, "%shxfr-send: host refused frame %" PRIu64 ": %s (%d): %s\n",
                    app->tty ? "\r\033[K" : "", res->seq, hxfr_status_name(res->remote_code),
                    res->remote_code, res->remote_message);
        }
        return;
    }
    s->ok++;
    if (res->keyframe) {
        s->keyframes++;
    }
    s->bytes += res->size;
    if (s->first_after_reconnect_pending) {
        s->first_after_reconnect_pending = false;
        fprintf(stderr, "%shxfr-send: resumed after reconnect with %s\n",
                app->tty ? "\r\033[K" : "", res->keyframe ? "an IDR frame" : "a P frame");
    }
    uint64_t us = res->latency_ns / 1000u;
    uint32_t lat = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (s->lat_len == s->lat_cap) {
        size_t cap = s->lat_cap ? s->lat_cap * 2 : 1024;
        uint32_t *p = realloc(s->lat_us, cap * sizeof(*p));
        if (p) {
            s->lat_us = p;
            s->lat_cap = cap;
        }
    }
    if (s->lat_len < s->lat_cap) {
        s->lat_us[s->lat_len++] = lat;
    }
    s->recent[s->recent_pos] = lat;
    s->recent_pos = (s->recent_pos + 1) % RECENT_LATENCIES;
    if (s->recent_len < RECENT_LATENCIES) {
        s->recent_len++;
    }
    if (app->out && res->size > 0 && fwrite(res->data, 1, res->size, app->out) != res->size) {
        app->out_error = errno ? errno : EIO;
    }
}

static void on_event(void *data, const struct hxfr_client_event *ev)
{
    struct app *app = data;
    const char *cr = app->tty ? "\r\033[K" : "";
    switch (ev->type) {
    case HXFR_CLIENT_EVENT_DISCONNECTED:
        app->s.disconnects++;
        fprintf(stderr, "%shxfr-send: lost the host (%s): %s\n", cr, app->a.connect,
                hxfr_strerror(ev->err));
        break;
    case HXFR_CLIENT_EVENT_RECONNECTED:
        app->s.reconnects++;
        app->s.first_after_reconnect_pending = true;
        fprintf(stderr, "%shxfr-send: reconnected to %s after %u attempt(s)\n", cr, app->a.connect,
                ev->attempt);
        break;
    case HXFR_CLIENT_EVENT_REMOTE_ERROR:
        fprintf(stderr, "%shxfr-send: host error %s (%d): %s\n", cr,
                hxfr_status_name(ev->remote_code), ev->remote_code, ev->remote_message);
        break;
    }
}

static void progress(struct app *app, uint64_t start_ns)
{
    struct stats *s = &app->s;
    double secs = (double)(now_ns() - start_ns) / 1e9;
    uint32_t tmp[RECENT_LATENCIES];
    memcpy(tmp, s->recent, s->recent_len * sizeof(tmp[0]));
    qsort(tmp, s->recent_len, sizeof(tmp[0]), cmp_u32);
    fprintf(stderr,
            "\r\033[Kframes %" PRIu64 "  %.1f fps  latency p50 %.1f ms p99 %.1f ms  "
            "%.0f kbit/s%s",
            s->ok, secs > 0 ? (double)s->ok / secs : 0.0, pct_ms(tmp, s->recent_len, 0.5),
            pct_ms(tmp, s->recent_len, 0.99), secs > 0 ? (double)s->bytes * 8 / secs / 1000 : 0.0,
            s->errors ? "  (errors)" : "");
}

/* Prints s with what JSON requires escaped (the uri and the output path
 * are user input, the encoder name comes from the host). */
static void json_string(const char *s)
{
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
}

static void summary(struct app *app, double secs, const struct hxfr_config_resp *cr,
                    const char *uri)
{
    struct stats *s = &app->s;
    qsort(s->lat_us, s->lat_len, sizeof(s->lat_us[0]), cmp_u32);
    double p50 = pct_ms(s->lat_us, s->lat_len, 0.5);
    double p90 = pct_ms(s->lat_us, s->lat_len, 0.9);
    double p99 = pct_ms(s->lat_us, s->lat_len, 0.99);
    double max = s->lat_len ? s->lat_us[s->lat_len - 1] / 1000.0 : 0;
    double fps = secs > 0 ? (double)s->ok / secs : 0;
    double kbps = secs > 0 ? (double)s->bytes * 8 / secs / 1000 : 0;
    if (app->tty) {
        fprintf(stderr, "\r\033[K");
    }
    fprintf(stderr,
            "hxfr-send: %" PRIu64 " frames in %.2f s (%.1f fps), %ux%u %s -> %s, "
            "latency p50 %.2f ms p90 %.2f ms p99 %.2f ms max %.2f ms, %" PRIu64 " bytes "
            "(%.0f kbit/s), %" PRIu64 " keyframes, %" PRIu64 " errors, %" PRIu64 " reconnects\n",
            s->ok, secs, fps, app->a.width, app->a.height, hxfr_format_name(app->a.format),
            cr->encoder[0] ? cr->encoder : "?", p50, p90, p99, max, s->bytes, kbps, s->keyframes,
            s->errors, s->reconnects);
    if (app->a.json) {
        printf("{\"frames\": %" PRIu64 ", \"submitted\": %" PRIu64 ", \"seconds\": %.3f, "
               "\"fps\": %.2f, \"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
               "\"max\": %.3f}, \"bytes\": %" PRIu64 ", \"kbps\": %.1f, \"keyframes\": %" PRIu64
               ", \"errors\": %" PRIu64 ", \"reconnects\": %" PRIu64 ", \"connect\": \"",
               s->ok, s->submitted, secs, fps, p50, p90, p99, max, s->bytes, kbps, s->keyframes,
               s->errors, s->reconnects);
        json_string(uri);
        printf("\", \"width\": %u, \"height\": %u, \"format\": \"%s\", \"window\": %u, "
               "\"encoder\": \"",
               app->a.width, app->a.height, hxfr_format_name(app->a.format), app->a.window);
        json_string(cr->encoder);
        printf("\", \"output\": \"");
        json_string(app->a.output);
        printf("\", \"mode\": \"%s\", \"frame_bytes\": %" PRIu64 ", \"shm_slots\": %u, "
               "\"shm_slot_bytes\": %" PRIu64,
               app->a.shm          ? "shm"
               : app->a.shm_region ? "shm-region"
                                   : "inline",
               app->frame_bytes, app->shm_slots, app->shm_slot_bytes);
        if (app->a.scanout >= 0) {
            printf(", \"scanout\": %d", app->a.scanout);
        }
        printf("}\n");
        fflush(stdout);
    }
}

/* Waits until the absolute time target, delivering results meanwhile. */
static int wait_until(struct hxfr_client *c, uint64_t target)
{
    for (;;) {
        uint64_t now = now_ns();
        if (now >= target || interrupted) {
            return 0;
        }
        uint64_t left = target - now;
        if (hxfr_client_in_flight(c) > 0 && left > 1000000u) {
            int r = hxfr_client_dispatch(c, (int)((left - 1000000u) / 1000000u));
            if (r < 0) {
                return r;
            }
            continue;
        }
        struct timespec ts = {.tv_sec = (time_t)(target / 1000000000u),
                              .tv_nsec = (long)(target % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

static bool is_connection_error(int r)
{
    return r == -ECONNRESET || r == -EPIPE || r == -ETIMEDOUT || r == -ENOTCONN ||
           r == -ECONNABORTED || r == -EIO || r == -EPROTO || r <= -HXFR_EBASE;
}

int main(int argc, char **argv)
{
    struct app app = {0};
    struct source src = {0};
    struct hxfr_client *c = NULL;
    uint8_t *buf = NULL;
    int status = EXIT_FATAL;
    bool publishing = false;

    if (parse_args(argc, argv, &app.a) < 0) {
        return EXIT_USAGE;
    }
    struct args *a = &app.a;
    if (source_open(&src, a) < 0) {
        status = EXIT_USAGE;
        goto out;
    }
    struct hxfr_geometry g;
    int r = hxfr_geometry_compute(a->format, a->width, a->height,
                                  hxfr_format_min_stride(a->format, a->width), 0, &g);
    if (r < 0) {
        fprintf(stderr, "hxfr-send: %ux%u %s: %s\n", a->width, a->height,
                hxfr_format_name(a->format), hxfr_strerror(r));
        status = EXIT_USAGE;
        goto out;
    }
    /* One frame buffer, allocated and touched once: hxfr_client_submit()
     * is done with the pixels when it returns, so it is refilled in place
     * for every frame. */
    if (posix_memalign((void **)&buf, 64, g.size) != 0) {
        fprintf(stderr, "hxfr-send: out of memory for a %" PRIu64 "-byte frame\n", g.size);
        goto out;
    }
    memset(buf, 0, g.size);

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    app.tty = isatty(STDERR_FILENO) == 1;

    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.window = a->window;
    o.session_id = a->session;
    o.reconnect = a->reconnect;
    o.on_frame = on_frame;
    o.on_event = on_event;
    o.user_data = &app;
    c = hxfr_client_new(&o);
    if (!c) {
        fprintf(stderr, "hxfr-send: %s\n", strerror(errno));
        goto out;
    }
    struct sigaction wd = {.sa_handler = on_connect_watchdog};
    sigaction(SIGALRM, &wd, NULL);
    /* With --reconnect the first connection may also wait out the
     * client's backoff (about 9 s); the watchdog allows for it. */
    alarm(a->connect_timeout + (a->reconnect ? 10 : 0));
    r = hxfr_client_connect(c, a->connect);
    if (r < 0) {
        fprintf(stderr, "hxfr-send: cannot connect to %s: %s%s\n", a->connect, hxfr_strerror(r),
                r == -ENOENT || r == -ECONNREFUSED ? " (is hxfrd running there?)" : "");
        goto out;
    }
    struct hxfr_client_config cfg = {
        .width = a->width,
        .height = a->height,
        .bitrate = a->bitrate,
        .framerate_num = a->fps > 0 ? (uint32_t)lround(a->fps * 1000) : 0,
        .framerate_den = a->fps > 0 ? 1000 : 0,
        .realtime = true,
        .gop = a->gop,
    };
    struct hxfr_config_resp cr = {0};
    r = hxfr_client_configure(c, &cfg, &cr);
    if (r < 0) {
        const char *msg;
        int32_t code = hxfr_client_last_remote_error(c, &msg);
        if (r == -HXFR_EREMOTE) {
            fprintf(stderr, "hxfr-send: host refused the configuration: %s (%d): %s\n",
                    hxfr_status_name(code), code, msg);
        } else {
            fprintf(stderr, "hxfr-send: configuring %s failed: %s\n", a->connect, hxfr_strerror(r));
        }
        goto out;
    }

    app.frame_bytes = g.size;
    bool shm = a->shm || a->shm_region;
    if (shm) {
        /* One slot per frame in flight: the window, not the ring, is what
         * bounds the frames the host holds. */
        if (a->shm) {
            r = hxfr_client_shm_create(c, a->window, g.size);
        } else {
            r = hxfr_client_shm_attach_region(c, a->shm_region, a->shm_path, a->shm_offset,
                                              a->window, g.size);
        }
        if (r < 0) {
            const char *msg = "";
            int32_t code = hxfr_client_last_remote_error(c, &msg);
            if (r == -HXFR_EREMOTE) {
                fprintf(stderr, "hxfr-send: host refused the shared-memory ring: %s (%d): %s\n",
                        hxfr_status_name(code), code, msg);
            } else {
                fprintf(stderr, "hxfr-send: cannot set up the shared-memory ring%s%s: %s\n",
                        a->shm_region ? " in " : "",
                        a->shm_region ? (a->shm_path ? a->shm_path : "the ivshmem device") : "",
                        hxfr_strerror(r));
            }
            goto out;
        }
        struct hxfr_client_slot probe;
        if (hxfr_client_shm_acquire(c, 0, &probe) == 0) {
            app.shm_slot_bytes = probe.size;
            hxfr_client_shm_cancel(c, probe.index);
        }
        app.shm_slots = a->window;
    }
    if (a->scanout >= 0) {
        struct hxfr_scanout_resp sr = {0};
        uint32_t hz = a->fps > 0 ? (uint32_t)lround(a->fps) : 0;
        r = hxfr_client_enable_scanout(c, (uint32_t)a->scanout, a->width, a->height,
                                       hz > 1000 ? 1000 : hz, -1, &sr);
        if (r < 0) {
            const char *msg = "";
            hxfr_client_last_remote_error(c, &msg);
            fprintf(stderr, "hxfr-send: cannot enable scanout %d: %s%s%s\n", a->scanout,
                    hxfr_strerror(r), r == -HXFR_EREMOTE ? ": " : "",
                    r == -HXFR_EREMOTE ? msg : "");
            goto out;
        }
        publishing = true;
        fprintf(stderr, "hxfr-send: publishing into scanout %d (%s)\n", a->scanout, sr.connector);
    }

    alarm(0);

    /* The output is created only once the host has accepted the session, so
     * a failed start leaves an earlier file alone. */
    if (strcmp(a->output, "-") == 0) {
        app.out = stdout;
    } else {
        app.out = fopen(a->output, "wb");
        if (!app.out) {
            fprintf(stderr, "hxfr-send: %s: %s\n", a->output, strerror(errno));
            goto out;
        }
    }

    uint64_t frame_ns = a->fps > 0 ? (uint64_t)llround(1e9 / a->fps) : 0;
    uint64_t start = now_ns();
    uint64_t end = a->duration > 0 ? start + (uint64_t)(a->duration * 1e9) : UINT64_MAX;
    uint64_t next_progress = start + PROGRESS_INTERVAL_NS;
    bool fatal = false;
    for (uint64_t i = 0; (a->frames == 0 || i < a->frames) && !interrupted; i++) {
        if (frame_ns) {
            /* Absolute schedule: frame i is due at start + i * period, so
             * a late frame does not shift the ones after it. */
            uint64_t due = start + i * frame_ns;
            if (due >= end) {
                break;
            }
            r = wait_until(c, due);
        } else if (now_ns() >= end) {
            break;
        }
        struct hxfr_client_slot slot = {0};
        uint8_t *dst = buf;
        if (shm) {
            /* Render straight into the shared slot: the host encodes from
             * there, so the pixels are never copied. */
            r = hxfr_client_shm_acquire(c, HOST_TIMEOUT_MS, &slot);
            if (r < 0) {
                fprintf(stderr, "%shxfr-send: no free slot: %s\n", app.tty ? "\r\033[K" : "",
                        r == -EAGAIN ? "the host kept every slot" : hxfr_strerror(r));
                fatal = true;
                break;
            }
            dst = slot.data;
        }
        int got = source_read(&src, &g, dst, i);
        if (got <= 0) {
            if (shm) {
                hxfr_client_shm_cancel(c, slot.index);
            }
            fatal = got < 0;
            break;
        }
        struct hxfr_client_frame f = {
            .format = g.format,
            .width = g.width,
            .height = g.height,
            .planes = {buf + g.offset[0], buf + g.offset[1], buf + g.offset[2]},
            .strides = {g.stride[0], g.stride[1], g.stride[2]},
            .pts = frame_ns ? (int64_t)(i * frame_ns) : (int64_t)(now_ns() - start),
            .duration = (int64_t)frame_ns,
        };
        r = shm ? hxfr_client_shm_submit(c, slot.index, &f, HOST_TIMEOUT_MS)
                : hxfr_client_submit(c, &f, HOST_TIMEOUT_MS);
        if (r < 0 && a->reconnect && is_connection_error(r) && r != -HXFR_EREMOTE) {
            /* The frame was not taken; submit again, which reconnects. */
            r = shm ? hxfr_client_shm_submit(c, slot.index, &f, HOST_TIMEOUT_MS)
                    : hxfr_client_submit(c, &f, HOST_TIMEOUT_MS);
        }
        if (r < 0 && shm) {
            hxfr_client_shm_cancel(c, slot.index);
        }
        if (r == -EAGAIN) {
            fprintf(stderr, "%shxfr-send: the host answered no frame for %d s; giving up\n",
                    app.tty ? "\r\033[K" : "", HOST_TIMEOUT_MS / 1000);
            fatal = true;
            break;
        }
        if (r < 0) {
            if (r <= -HXFR_EBASE && r != -HXFR_EREMOTE) {
                fprintf(stderr, "hxfr-send: frame %" PRIu64 " rejected: %s\n", i, hxfr_strerror(r));
            } else if (!hxfr_client_connected(c)) {
                /* The DISCONNECTED event already said why. */
                if (!app.s.disconnects) {
                    fprintf(stderr, "%shxfr-send: host %s is gone: %s\n", app.tty ? "\r\033[K" : "",
                            a->connect, hxfr_strerror(r));
                }
            } else {
                fprintf(stderr, "hxfr-send: submit failed: %s\n", hxfr_strerror(r));
            }
            fatal = true;
            break;
        }
        app.s.submitted++;
        if (app.tty && now_ns() >= next_progress) {
            progress(&app, start);
            next_progress = now_ns() + PROGRESS_INTERVAL_NS;
        }
    }
    if (!fatal) {
        r = hxfr_client_flush(c, HOST_TIMEOUT_MS);
        if (r < 0) {
            fprintf(stderr, "%shxfr-send: waiting for the last frames: %s\n",
                    app.tty ? "\r\033[K" : "", hxfr_strerror(r));
            fatal = true;
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    if (publishing && hxfr_client_connected(c)) {
        /* Subscribers are told the stream ended. */
        r = hxfr_client_disable_scanout(c, (uint32_t)a->scanout, -1);
        if (r < 0) {
            fprintf(stderr, "hxfr-send: disabling scanout %d: %s\n", a->scanout, hxfr_strerror(r));
        }
    }
    if (app.out && fflush(app.out) != 0 && !app.out_error) {
        app.out_error = errno;
    }
    if (app.out_error) {
        fprintf(stderr, "hxfr-send: writing %s: %s\n", a->output, strerror(app.out_error));
        fatal = true;
    }
    summary(&app, secs, &cr, hxfr_client_uri(c));
    if (interrupted) {
        fprintf(stderr, "hxfr-send: interrupted\n");
        status = EXIT_INTERRUPTED;
    } else {
        status = fatal || app.s.remote_errors > 0 ? EXIT_FATAL : 0;
    }

out:
    hxfr_client_destroy(c);
    if (app.out && app.out != stdout) {
        fclose(app.out);
    }
    if (src.file) {
        fclose(src.file);
    }
    free(buf);
    free(app.s.lat_us);
    return status;
}
