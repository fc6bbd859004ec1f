/* The shared server options (hostcli.h): what each one sets in struct
 * hxfr_host_config, its bounds, and its --help text. docs/hxfrd.md has the
 * same table for readers. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "hostcli.h"
#include "hxfr-config.h"

/* Options that take a number min..max. Most set one unsigned field of
 * struct hxfr_host_config to it times scale (seconds given, milliseconds
 * stored); those with field SPECIAL are stored by store_special(). */
struct number_option {
    int opt;
    const char *name;
    unsigned long min;
    unsigned long max;
    unsigned scale;
    size_t field; /* offsetof(struct hxfr_host_config, an unsigned field) */
};

/* The offset of field f, which must be unsigned-sized (uint32_t is one):
 * anything else fails to compile (an array of size -1). */
#define CFG_FIELD(f)                                                                               \
    (offsetof(struct hxfr_host_config, f) +                                                        \
     0 * sizeof(char[sizeof(((struct hxfr_host_config *)0)->f) == sizeof(unsigned) ? 1 : -1]))
#define SPECIAL SIZE_MAX

static const struct number_option numbers[] = {
    {HXFR_HOSTCLI_OPT_THREADS, "--threads", 0, 64, 1, SPECIAL},
    {HXFR_HOSTCLI_OPT_GOP, "--gop", 0, 100000, 1, CFG_FIELD(gop)},
    {HXFR_HOSTCLI_OPT_WORKERS, "--workers", 1, 256, 1, CFG_FIELD(workers)},
    {HXFR_HOSTCLI_OPT_WINDOW, "--window", 1, 64, 1, CFG_FIELD(window)},
    {HXFR_HOSTCLI_OPT_MAX_CLIENTS, "--max-clients", 1, 65536, 1, CFG_FIELD(max_clients)},
    {HXFR_HOSTCLI_OPT_MAX_SESSIONS, "--max-sessions", 1, 65536, 1, CFG_FIELD(max_sessions)},
    {HXFR_HOSTCLI_OPT_IDLE_TIMEOUT, "--idle-timeout", 0, 86400, 1000, CFG_FIELD(idle_timeout_ms)},
    {HXFR_HOSTCLI_OPT_HANDSHAKE_TIMEOUT, "--handshake-timeout", 0, 86400, 1, SPECIAL},
    {HXFR_HOSTCLI_OPT_SHUTDOWN_TIMEOUT, "--shutdown-timeout", 0, 600000, 1,
     CFG_FIELD(shutdown_timeout_ms)},
    {HXFR_HOSTCLI_OPT_KEEPALIVE_MS, "--keepalive-ms", 10, 3600000, 1, CFG_FIELD(keepalive_ms)},
    {HXFR_HOSTCLI_OPT_MAX_SCANOUTS, "--max-scanouts", 1, 65536, 1, CFG_FIELD(max_scanouts)},
    {HXFR_HOSTCLI_OPT_MAX_SUBSCRIBERS, "--max-subscribers", 1, 4096, 1, CFG_FIELD(max_subscribers)},
    {HXFR_HOSTCLI_OPT_SUBSCRIBER_QUEUE, "--subscriber-queue", 1, 1024, 1,
     CFG_FIELD(subscriber_queue)},
    {HXFR_HOSTCLI_OPT_SCANOUT_TIMEOUT, "--scanout-timeout", 0, 86400, 1, SPECIAL},
    {HXFR_HOSTCLI_OPT_STATS_INTERVAL, "--stats-interval", 0, 86400, 1, SPECIAL},
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void hxfr__hostcli_init(struct hxfr_hostcli *cli, const char *prog, struct hxfr_host_config *cfg)
{
    *cli = (struct hxfr_hostcli){
        .prog = prog,
        .cfg = cfg,
        .log_max = cfg->log_level,
        .stats_fd = -1,
    };
    cfg->log = hxfr__hostcli_log;
    cfg->log_opaque = cli;
}

/* The numbers that are not a plain unsigned field. */
static void store_special(struct hxfr_hostcli *cli, int opt, unsigned long v)
{
    switch (opt) {
    case HXFR_HOSTCLI_OPT_THREADS:
        cli->cfg->encoder_threads = (int)v;
        break;
    case HXFR_HOSTCLI_OPT_HANDSHAKE_TIMEOUT:
        cli->cfg->handshake_timeout_ms = v ? (unsigned)v * 1000u : HXFR_HOST_TIMEOUT_NEVER;
        break;
    case HXFR_HOSTCLI_OPT_STATS_INTERVAL:
        cli->stats_interval = (unsigned)v;
        break;
    case HXFR_HOSTCLI_OPT_SCANOUT_TIMEOUT:
        cli->cfg->scanout_timeout_ms = v ? (unsigned)v * 1000u : HXFR_HOST_TIMEOUT_NEVER;
        break;
    default:
        break;
    }
}

static int set_number(struct hxfr_hostcli *cli, const struct number_option *n, const char *arg,
                      char *err, size_t errlen)
{
    uint64_t v;
    if (hxfr__cli_parse_u64(arg, n->max, &v) < 0) {
        snprintf(err, errlen, "%s: '%s' is not a number in 0..%lu", n->name, arg, n->max);
        return -EINVAL;
    }
    if (v < n->min) {
        snprintf(err, errlen, "%s: at least %lu", n->name, n->min);
        return -EINVAL;
    }
    if (n->field == SPECIAL) {
        store_special(cli, n->opt, (unsigned long)v);
    } else {
        *(unsigned *)((char *)cli->cfg + n->field) = (unsigned)(v * n->scale);
    }
    return 1;
}

/* --max-size WxH or N (a square). */
static int set_max_size(struct hxfr_hostcli *cli, const char *arg, char *err, size_t errlen)
{
    unsigned long w, h;
    char extra;
    if (sscanf(arg, "%lux%lu%c", &w, &h, &extra) == 2) {
        /* WxH */
    } else if (sscanf(arg, "%lu%c", &w, &extra) == 1) {
        h = w;
    } else {
        snprintf(err, errlen, "--max-size: '%s' is not WxH or N", arg);
        return -EINVAL;
    }
    if (w < 16 || h < 16 || w > HXFR_MAX_DIM_HARD || h > HXFR_MAX_DIM_HARD) {
        snprintf(err, errlen, "--max-size: each side must be 16..%u", HXFR_MAX_DIM_HARD);
        return -EINVAL;
    }
    cli->cfg->max_width = (uint32_t)w;
    cli->cfg->max_height = (uint32_t)h;
    return 1;
}

static int set_log_level(struct hxfr_hostcli *cli, const char *arg, char *err, size_t errlen)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(arg, level_names[i]) == 0) {
            cli->cfg->log_level = (enum hxfr_host_log_level)i;
            cli->log_max = cli->cfg->log_level;
            return 1;
        }
    }
    snprintf(err, errlen, "--log-level: '%s' is not error, warn, info or debug", arg);
    return -EINVAL;
}

/* The options that take no number. */
static int set_other(struct hxfr_hostcli *cli, int opt, const char *arg, char *err, size_t errlen)
{
    uint64_t bytes;
    switch (opt) {
    case HXFR_HOSTCLI_OPT_ENCODER:
        cli->cfg->encoder = arg;
        return 1;
    case HXFR_HOSTCLI_OPT_LIST_ENCODERS:
        cli->list_encoders = true;
        return 1;
    case HXFR_HOSTCLI_OPT_PRESET:
        cli->cfg->preset = arg;
        return 1;
    case HXFR_HOSTCLI_OPT_MAX_SIZE:
        return set_max_size(cli, arg, err, errlen);
    case HXFR_HOSTCLI_OPT_LOG_LEVEL:
        return set_log_level(cli, arg, err, errlen);
    case HXFR_HOSTCLI_OPT_MAX_OUTPUT:
        if (hxfr__cli_parse_bytes(arg, SIZE_MAX, &bytes) < 0) {
            snprintf(err, errlen, "--max-output: '%s' is not a size", arg);
            return -EINVAL;
        }
        cli->cfg->max_output = (size_t)bytes;
        return 1;
    default:
        return 0;
    }
}

int hxfr__hostcli_option(struct hxfr_hostcli *cli, int opt, const char *arg, char *err,
                         size_t errlen)
{
    if (opt < HXFR_HOSTCLI_OPT_BASE || opt >= HXFR_HOSTCLI_OPT_END) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        if (numbers[i].opt == opt) {
            return set_number(cli, &numbers[i], arg, err, errlen);
        }
    }
    return set_other(cli, opt, arg, err, errlen);
}

void hxfr__hostcli_usage(FILE *f)
{
    fputs("Encoding:\n"
          "  --encoder NAME        FFmpeg H.264 encoder (default " HXFR_DEFAULT_ENCODER ")\n"
          "  --list-encoders       print the encoders this machine can open, then exit\n"
          "  --preset NAME         encoder preset (default: the encoder's low-latency choice)\n"
          "  --threads N           threads per encoder (default 0: encoder decides)\n"
          "  --gop N               default keyframe interval in frames (default 60)\n"
          "  --workers N           encode worker threads (default: one per CPU)\n"
          "\n"
          "Limits:\n"
          "  --max-size WxH|N      largest frame accepted (default 5120x5120: 5K either way\n"
          "                        up; each side 16..8192)\n"
          "  --window N            frames in flight per client before its socket is no\n"
          "                        longer read (default 4, at most 64)\n"
          "  --max-clients N       connections served at once (default 64); more are\n"
          "                        accepted, answered ERROR BUSY and closed\n"
          "  --max-sessions N      sessions per client (default 16)\n"
          "  --max-output BYTES    queued output per client before it is cut as not\n"
          "                        reading (default 64M; suffixes K, M, G)\n"
          "  --idle-timeout SEC    close clients that send nothing for SEC seconds while\n"
          "                        nothing is in flight (default 0: never; TCP clients\n"
          "                        always get keepalive probes)\n"
          "  --handshake-timeout SEC close connections that have not sent one complete\n"
          "                        message within SEC seconds of connecting (default 10;\n"
          "                        0: never). Over UNIX sockets only once the daemon\n"
          "                        has been full since the connection was made: QEMU\n"
          "                        socket chardevs connect long before the guest speaks\n"
          "  --shutdown-timeout MS bound on finishing frames after SIGTERM (default 2000)\n"
          "\n"
          "Scanouts (push mode):\n"
          "  --keepalive-ms MS     re-encode a scanout's last frame when its publisher sent\n"
          "                        nothing for MS ms and it has subscribers (default 500)\n"
          "  --max-scanouts N      scanouts enabled at once (default 16)\n"
          "  --max-subscribers N   subscribers per scanout (default 32)\n"
          "  --subscriber-queue N  messages queued for one subscriber before its frames\n"
          "                        are dropped until it catches up (default 8)\n"
          "  --scanout-timeout SEC a scanout outlives the connection that enabled it; it\n"
          "                        ends after SEC s with neither publisher nor subscriber\n"
          "                        (default 60; 0: only DISABLE_SCANOUT ends it)\n"
          "\n"
          "Logging:\n"
          "  --log-level LEVEL     error, warn, info (default) or debug; logs go to stderr\n"
          "  --stats-interval SEC  log per-session fps, kbit/s, encode ms p50/p99 and pixel\n"
          "                        bytes copied every SEC seconds (default 0: off)\n",
          f);
}

static void print_encoder(void *opaque, const char *codec, const char *backend)
{
    (void)opaque;
    printf("%s (%s)\n", codec, backend);
}

int hxfr__hostcli_list_encoders(struct hxfr_hostcli *cli)
{
    int n = hxfr_host_list_encoders(print_encoder, NULL);
    if (!HXFR_HAVE_X264) {
        fprintf(stderr, "%s: libx264 is not in this build (meson -Dx264=disabled)\n", cli->prog);
    }
    if (n <= 0) {
        fprintf(stderr, "%s: no H.264 encoder can be opened on this machine\n", cli->prog);
        return 0;
    }
    return n;
}
