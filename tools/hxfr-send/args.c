/* hxfr-send's command line (send.h): --help, each option's parser, and the
 * checks between options. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "send.h"

#if HXFR_SEND_HAVE_DRM
#define DRM_HELP                                                                                   \
    "                    drm[:/dev/dri/cardN]  the test screen drawn into two\n"                   \
    "                               virtio-gpu dumb buffers in turn, sent as\n"                    \
    "                               resource ids without pixels: the host\n"                       \
    "                               (hxfr-gpu) encodes them from guest memory\n"                   \
    "                               (format BGRx; default /dev/dri/card0)\n"
#else
#define DRM_HELP ""
#endif

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
            "                    raw:FILE   packed frames of --format at --size\n" DRM_HELP
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

static const char *option_name(int opt)
{
    for (const struct option *o = opts; o->name; o++) {
        if (o->val == opt) {
            return o->name;
        }
    }
    return "?";
}

#define FIELD(f) offsetof(struct send_args, f), sizeof(((struct send_args *)0)->f)
#define NONE     SIZE_MAX

/* Options that take an integer min..max, stored in a field of 2, 4 or 8
 * bytes; have (or NONE) is a bool field set when the option is given. */
static const struct {
    int opt;
    uint64_t min;
    uint64_t max;
    size_t field;
    size_t size;
    size_t have;
} integers[] = {
    {O_FRAMES, 0, UINT32_MAX, FIELD(frames), offsetof(struct send_args, have_frames)},
    {O_WINDOW, 1, HXFR_CLIENT_MAX_WINDOW, FIELD(window), NONE},
    {O_GOP, 0, UINT32_MAX, FIELD(gop), NONE},
    {O_SESSION, 0, UINT16_MAX, FIELD(session), offsetof(struct send_args, have_session)},
    {O_SCANOUT, 0, UINT16_MAX, FIELD(scanout), NONE},
    {O_CONNECT_TIMEOUT, 1, 3600, FIELD(connect_timeout), NONE},
    {O_SHM_OFFSET, 0, UINT64_MAX / 2, FIELD(shm_offset), NONE},
};

static int integer_option(struct send_args *a, int opt, const char *arg)
{
    for (size_t i = 0; i < sizeof(integers) / sizeof(integers[0]); i++) {
        char *field = (char *)a + integers[i].field;
        uint64_t v;
        if (integers[i].opt != opt) {
            continue;
        }
        if (hxfr__cli_parse_u64(arg, integers[i].max, &v) < 0 || v < integers[i].min) {
            return -EINVAL;
        }
        if (integers[i].size == sizeof(uint64_t)) {
            *(uint64_t *)field = v;
        } else if (integers[i].size == sizeof(uint32_t)) {
            *(uint32_t *)field = (uint32_t)v;
        } else {
            *(uint16_t *)field = (uint16_t)v;
        }
        if (integers[i].have != NONE) {
            *((bool *)((char *)a + integers[i].have)) = true;
        }
        return 1;
    }
    return 0;
}

/* The options that take another kind of number. Returns 1 when opt is
 * one of them (with its result in *err), 0 otherwise. */
static int number_option(struct send_args *a, int opt, const char *arg, int *err)
{
    int r = integer_option(a, opt, arg);
    if (r != 0) {
        *err = r < 0 ? r : 0;
        return 1;
    }
    switch (opt) {
    case O_SIZE:
        *err = hxfr__cli_parse_size(arg, HXFR_MAX_DIM_HARD, &a->width, &a->height);
        a->have_size = true;
        return 1;
    case O_FPS:
        *err = parse_double(arg, &a->fps);
        a->have_fps = true;
        return 1;
    case O_DURATION:
        *err = parse_double(arg, &a->duration);
        return 1;
    case O_BITRATE:
        *err = parse_bitrate(arg, &a->bitrate);
        return 1;
    default:
        return 0;
    }
}

/* Options that keep their argument as it is (a const char * field), and
 * options without one (a bool field, set). */
static const struct {
    int opt;
    bool flag;
    size_t field; /* offsetof in struct send_args */
} stored[] = {
    {O_CONNECT, false, offsetof(struct send_args, connect)},
    {O_SOURCE, false, offsetof(struct send_args, source)},
    {O_OUTPUT, false, offsetof(struct send_args, output)},
    {O_SHM_PATH, false, offsetof(struct send_args, shm_path)},
    {O_SHM_REGION, false, offsetof(struct send_args, shm_region)},
    {O_JSON, true, offsetof(struct send_args, json)},
    {O_RECONNECT, true, offsetof(struct send_args, reconnect)},
    {O_SHM, true, offsetof(struct send_args, shm)},
};

/* The options that take a word or nothing. Returns 0 or -EINVAL. */
static int word_option(struct send_args *a, int opt, const char *arg)
{
    for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++) {
        char *field = (char *)a + stored[i].field;
        if (stored[i].opt != opt) {
            continue;
        }
        if (stored[i].flag) {
            *(bool *)field = true;
        } else {
            *(const char **)field = arg;
        }
    }
    if (opt == O_FORMAT) {
        a->format = hxfr_format_from_name(arg);
        return a->format ? 0 : -EINVAL;
    }
    if (opt == O_SHM_REGION) {
        return arg[0] && strlen(arg) < HXFR_SHM_NAME_LEN ? 0 : -EINVAL;
    }
    return 0;
}

/* What no single option can check: required ones, exclusions, defaults
 * that depend on others. */
static int check_args(struct send_args *a)
{
    if (!a->connect) {
        fprintf(stderr, "hxfr-send: --connect URI is required (see --help)\n");
        return -EINVAL;
    }
    if (!a->have_frames) {
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

int send_parse_args(int argc, char **argv, struct send_args *a)
{
    *a = (struct send_args){
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
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == O_HELP) {
            usage(stdout);
            exit(0);
        }
        if (opt == '?') {
            usage(stderr);
            return -EINVAL;
        }
        int r;
        if (!number_option(a, opt, optarg, &r)) {
            r = word_option(a, opt, optarg);
        }
        if (r < 0) {
            fprintf(stderr, "hxfr-send: invalid value for --%s: '%s'\n", option_name(opt), optarg);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hxfr-send: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -EINVAL;
    }
    return check_args(a);
}
