/* The command line of programs that run a libhxfr-host server (hxfrd; a
 * VMM's device process such as hxfr-gpu): the encoder, limit, scanout, log
 * and statistics options with their --help text, and the log and
 * statistics lines they print. One program's options and lines are then
 * every such program's, as docs/hxfrd.md documents them.
 *
 * A static library for programs: unlike the libraries it writes to stdout
 * and stderr. Use:
 *
 *     enum { OPT_LISTEN = 256, ... };       // below HXFR_HOSTCLI_OPT_BASE
 *     static const struct option options[] = {
 *         {"listen", required_argument, NULL, OPT_LISTEN},
 *         HXFR_HOSTCLI_OPTIONS,
 *         {NULL, 0, NULL, 0},
 *     };
 *     struct hxfr_host_config cfg;
 *     struct hxfr_hostcli cli;
 *     hxfr_host_config_init(&cfg);
 *     hxfr__hostcli_init(&cli, "hxfrd", &cfg);   // cfg.log prints through cli
 *     while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
 *         char err[256];
 *         int r = hxfr__hostcli_option(&cli, opt, optarg, err, sizeof(err));
 *         if (r < 0) { usage error: print err }
 *         if (r == 0) { switch (opt) { the program's own options } }
 *     }
 *     hxfr__hostcli_route_ffmpeg(&cli);
 *     ... hxfr_host_new(&cfg), hxfr__hostcli_stats_open(&cli), then poll
 *     hxfr__hostcli_stats_fd(&cli) beside the server's fd and call
 *     hxfr__hostcli_stats_tick(&cli, host) when it is readable ...
 *     hxfr__hostcli_finish(&cli);
 *
 * Threading: everything on the program's main (loop) thread, except the
 * FFmpeg line sink installed by hxfr__hostcli_route_ffmpeg, which is
 * thread-safe (one fprintf per line).
 */
#ifndef HXFR_HOSTCLI_H
#define HXFR_HOSTCLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <hxfr/host.h>

/* getopt_long values of the shared options. A program's own options take
 * values below HXFR_HOSTCLI_OPT_BASE (and above 255, as usual). */
enum {
    HXFR_HOSTCLI_OPT_BASE = 0x1000,
    HXFR_HOSTCLI_OPT_ENCODER = HXFR_HOSTCLI_OPT_BASE,
    HXFR_HOSTCLI_OPT_LIST_ENCODERS,
    HXFR_HOSTCLI_OPT_PRESET,
    HXFR_HOSTCLI_OPT_THREADS,
    HXFR_HOSTCLI_OPT_GOP,
    HXFR_HOSTCLI_OPT_WORKERS,
    HXFR_HOSTCLI_OPT_MAX_SIZE,
    HXFR_HOSTCLI_OPT_WINDOW,
    HXFR_HOSTCLI_OPT_MAX_CLIENTS,
    HXFR_HOSTCLI_OPT_MAX_SESSIONS,
    HXFR_HOSTCLI_OPT_MAX_OUTPUT,
    HXFR_HOSTCLI_OPT_IDLE_TIMEOUT,
    HXFR_HOSTCLI_OPT_HANDSHAKE_TIMEOUT,
    HXFR_HOSTCLI_OPT_SHUTDOWN_TIMEOUT,
    HXFR_HOSTCLI_OPT_KEEPALIVE_MS,
    HXFR_HOSTCLI_OPT_MAX_SCANOUTS,
    HXFR_HOSTCLI_OPT_MAX_SUBSCRIBERS,
    HXFR_HOSTCLI_OPT_SUBSCRIBER_QUEUE,
    HXFR_HOSTCLI_OPT_SCANOUT_TIMEOUT,
    HXFR_HOSTCLI_OPT_LOG_LEVEL,
    HXFR_HOSTCLI_OPT_STATS_INTERVAL,
    HXFR_HOSTCLI_OPT_END,
};

/* The struct option entries of the shared options, to put in a program's
 * getopt_long table (no terminating entry). */
// clang-format off
#define HXFR_HOSTCLI_OPTIONS                                                            \
    {"encoder", required_argument, NULL, HXFR_HOSTCLI_OPT_ENCODER},                     \
    {"list-encoders", no_argument, NULL, HXFR_HOSTCLI_OPT_LIST_ENCODERS},               \
    {"preset", required_argument, NULL, HXFR_HOSTCLI_OPT_PRESET},                       \
    {"threads", required_argument, NULL, HXFR_HOSTCLI_OPT_THREADS},                     \
    {"gop", required_argument, NULL, HXFR_HOSTCLI_OPT_GOP},                             \
    {"workers", required_argument, NULL, HXFR_HOSTCLI_OPT_WORKERS},                     \
    {"max-size", required_argument, NULL, HXFR_HOSTCLI_OPT_MAX_SIZE},                   \
    {"window", required_argument, NULL, HXFR_HOSTCLI_OPT_WINDOW},                       \
    {"max-clients", required_argument, NULL, HXFR_HOSTCLI_OPT_MAX_CLIENTS},             \
    {"max-sessions", required_argument, NULL, HXFR_HOSTCLI_OPT_MAX_SESSIONS},           \
    {"max-output", required_argument, NULL, HXFR_HOSTCLI_OPT_MAX_OUTPUT},               \
    {"idle-timeout", required_argument, NULL, HXFR_HOSTCLI_OPT_IDLE_TIMEOUT},           \
    {"handshake-timeout", required_argument, NULL, HXFR_HOSTCLI_OPT_HANDSHAKE_TIMEOUT}, \
    {"shutdown-timeout", required_argument, NULL, HXFR_HOSTCLI_OPT_SHUTDOWN_TIMEOUT},   \
    {"keepalive-ms", required_argument, NULL, HXFR_HOSTCLI_OPT_KEEPALIVE_MS},           \
    {"max-scanouts", required_argument, NULL, HXFR_HOSTCLI_OPT_MAX_SCANOUTS},           \
    {"max-subscribers", required_argument, NULL, HXFR_HOSTCLI_OPT_MAX_SUBSCRIBERS},     \
    {"subscriber-queue", required_argument, NULL, HXFR_HOSTCLI_OPT_SUBSCRIBER_QUEUE},   \
    {"scanout-timeout", required_argument, NULL, HXFR_HOSTCLI_OPT_SCANOUT_TIMEOUT},     \
    {"log-level", required_argument, NULL, HXFR_HOSTCLI_OPT_LOG_LEVEL},                 \
    {"stats-interval", required_argument, NULL, HXFR_HOSTCLI_OPT_STATS_INTERVAL}
// clang-format on

/* What the shared options set besides the server's config. Fields are
 * read-only for the program after hxfr__hostcli_init(). */
struct hxfr_hostcli {
    const char *prog;                 /* prefix of every line, e.g. "hxfrd" */
    struct hxfr_host_config *cfg;     /* borrowed: what the options set */
    enum hxfr_host_log_level log_max; /* --log-level: most verbose level printed */
    unsigned stats_interval;          /* --stats-interval seconds; 0 = off */
    bool list_encoders;               /* --list-encoders was given */
    int stats_fd;                     /* timerfd of the statistics; -1 = none */
};

/* Starts cli for program prog (borrowed, used as the line prefix) over cfg
 * (borrowed; already initialized with hxfr_host_config_init()): sets
 * cfg->log and cfg->log_opaque so the server's lines print through cli. */
void hxfr__hostcli_init(struct hxfr_hostcli *cli, const char *prog, struct hxfr_host_config *cfg);

/* Applies option opt (a getopt_long value) with argument arg (borrowed:
 * strings are stored as pointers into it, as getopt's optarg is). Returns
 * 1 when opt is a shared option and was applied, 0 when it is not one
 * (the program handles it), or -EINVAL with a one-line message (without
 * the program name, e.g. "--window: at least 1") in err. */
int hxfr__hostcli_option(struct hxfr_hostcli *cli, int opt, const char *arg, char *err,
                         size_t errlen);

/* Prints the --help sections of the shared options (Encoding, Limits,
 * Scanouts, Logging), each ending in a newline, no blank line after the
 * last one. */
void hxfr__hostcli_usage(FILE *f);

/* --list-encoders: prints "codec (backend)" per encoder this machine can
 * open to stdout, and on stderr that libx264 is not in a build without
 * x264. Returns the count, or 0 after saying on stderr that none can be
 * opened. */
int hxfr__hostcli_list_encoders(struct hxfr_hostcli *cli);

/* The program is the application: FFmpeg's own lines go through cli's
 * logger (hxfr_host_set_ffmpeg_log), its errors always, the rest only at
 * --log-level debug. Call once, before hxfr_host_new(). */
void hxfr__hostcli_route_ffmpeg(struct hxfr_hostcli *cli);

/* The server's log sink (cfg->log after hxfr__hostcli_init; opaque is the
 * struct hxfr_hostcli): "PROG HH:MM:SS.mmm [level] msg" on stderr when level
 * is at most --log-level. */
void hxfr__hostcli_log(void *opaque, enum hxfr_host_log_level level, const char *msg);

/* One line in the same form whatever --log-level says (statistics lines:
 * they were asked for). */
void hxfr__hostcli_print(const struct hxfr_hostcli *cli, enum hxfr_host_log_level level,
                         const char *msg);

/* The program's own log lines, printf-style, through the same filter. */
void hxfr__hostcli_logf(struct hxfr_hostcli *cli, enum hxfr_host_log_level level, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));

/* Listens on uri (unix:PATH, tcp:HOST:PORT, vsock:PORT: hxfrd's --listen)
 * with host; on failure says why on stderr ("PROG: cannot listen on URI:
 * reason (hint)"). Returns the listener index or -errno. */
int hxfr__hostcli_listen(struct hxfr_hostcli *cli, struct hxfr_host *host, const char *uri);

/* With --stats-interval, creates the statistics timer (its fd is then
 * hxfr__hostcli_stats_fd()). Returns 0 or -errno. */
int hxfr__hostcli_stats_open(struct hxfr_hostcli *cli);

/* The timer's fd to poll for POLLIN, or -1 without --stats-interval. */
int hxfr__hostcli_stats_fd(const struct hxfr_hostcli *cli);

/* When the timer has expired: logs one "stats client ..." line per live
 * session of host (and restarts their interval counters) and, when host
 * has or had scanouts, one "stats scanouts: ..." line, and when it encoded
 * frames from GPU memory one "stats gpu: ..." line. Statistics lines are
 * printed whatever --log-level says (they were asked for). */
void hxfr__hostcli_stats_tick(struct hxfr_hostcli *cli, struct hxfr_host *host);

/* Blocks SIGTERM and SIGINT (call it before any thread starts, so every
 * thread inherits the mask), ignores SIGPIPE, and returns a non-blocking,
 * close-on-exec signalfd that becomes readable when one of them arrives
 * (read struct signalfd_siginfo from it), or -errno. The caller owns the
 * fd. */
int hxfr__hostcli_signalfd(void);

/* Closes the timer. cli can be started again with hxfr__hostcli_init(). */
void hxfr__hostcli_finish(struct hxfr_hostcli *cli);

#endif
