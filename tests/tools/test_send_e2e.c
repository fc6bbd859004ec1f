/* hxfr-send against the real hxfrd (started by tests/common/daemon.c):
 * over UNIX and TCP the output decodes to exactly the frames sent, the
 * picture matches the pattern (PSNR), the --json summary is complete and
 * sane, a host killed mid-run gives a clear error and a non-zero exit, and
 * with --reconnect a host restarted on the same socket is picked up again,
 * starting with an IDR; odd sizes of packed RGB from 1x1 to 641x361 and a
 * 5K frame (the default size limit) come back at their size (ffprobe).
 * HXFR_SEND and HXFRD name the binaries. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hxfr/proto.h>

#include "avcheck.h"
#include "daemon.h"
#include "harness.h"
#include "io.h"
#include "pattern.h"

/* Output files of one hxfr-send run, in the daemon's temporary folder. */
struct run {
    pid_t pid;
    char out_path[320];
    char err_path[320];
    char h264_path[320];
    char *out;
    char *err;
};

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void send_start(struct run *r, const char *dir, const char *const *args)
{
    const char *bin = getenv("HXFR_SEND");
    CHECK(bin != NULL);
    snprintf(r->out_path, sizeof(r->out_path), "%s/send.out", dir);
    snprintf(r->err_path, sizeof(r->err_path), "%s/send.err", dir);
    snprintf(r->h264_path, sizeof(r->h264_path), "%s/out.h264", dir);
    r->pid = fork();
    CHECK(r->pid >= 0);
    if (r->pid == 0) {
        int o = open(r->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(r->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        const char *argv[40] = {bin, "--output", r->h264_path};
        int n = 3;
        for (int i = 0; args[i] && n < 39; i++) {
            argv[n++] = args[i];
        }
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
}

/* Waits for hxfr-send to exit (the harness alarm catches a hang) and
 * returns its exit status. */
static int send_wait(struct run *r)
{
    int status;
    while (waitpid(r->pid, &status, 0) < 0) {
        CHECK(errno == EINTR);
    }
    r->out = hxfr_test_slurp(r->out_path, NULL);
    r->err = hxfr_test_slurp(r->err_path, NULL);
    CHECK(r->out && r->err);
    size_t n = strlen(r->out);
    fprintf(stderr, "# hxfr-send stderr:\n%s# stdout: %s%s", r->err, r->out,
            n && r->out[n - 1] == '\n' ? "" : "\n");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* A number from the flat --json summary ("key": value), or -1. */
static double json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    const char *p = strstr(json, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* Waits until hxfr-send has written at least bytes of H.264. */
static void wait_output(const struct run *r, long bytes)
{
    for (;;) {
        struct stat st;
        if (stat(r->h264_path, &st) == 0 && st.st_size >= bytes) {
            return;
        }
        int status;
        CHECK(waitpid(r->pid, &status, WNOHANG) == 0); /* still running */
        sleep_ms(20);
    }
}

/* Decodes the whole file; keeps up to keep frames. */
static struct hxfr_avcheck *decode_file(const char *path, unsigned keep)
{
    size_t len;
    char *data = hxfr_test_slurp(path, &len);
    CHECK(data != NULL);
    struct hxfr_avcheck *av = hxfr_avcheck_new(keep);
    CHECK(av != NULL);
    CHECK(hxfr_avcheck_feed(av, (const uint8_t *)data, len) >= 0);
    CHECK(hxfr_avcheck_finish(av) >= 0);
    free(data);
    return av;
}

static void check_json(const char *out, int frames, const char *uri)
{
    CHECK_EQ(json_num(out, "frames"), frames);
    CHECK_EQ(json_num(out, "submitted"), frames);
    CHECK(json_num(out, "seconds") > 0);
    CHECK(json_num(out, "fps") > 0);
    CHECK(strstr(out, "\"latency_ms\": {\"p50\": ") != NULL);
    double p50 = json_num(out, "p50"), p90 = json_num(out, "p90");
    double p99 = json_num(out, "p99"), max = json_num(out, "max");
    CHECK(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= max && max < 10000);
    CHECK(json_num(out, "bytes") > 0);
    CHECK(json_num(out, "kbps") > 0);
    CHECK(json_num(out, "keyframes") >= 1);
    CHECK_EQ(json_num(out, "errors"), 0);
    CHECK_EQ(json_num(out, "reconnects"), 0);
    char want[300];
    snprintf(want, sizeof(want), "\"connect\": \"%s\"", uri);
    CHECK(strstr(out, want) != NULL);
    /* One object on one line. */
    CHECK(out[0] == '{');
    CHECK(strchr(out, '\n') == out + strlen(out) - 1);
}

static void e2e_basic(bool tcp)
{
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, tcp ? HXFR_TEST_DAEMON_TCP : HXFR_TEST_DAEMON_UNIX, NULL),
             0);
    const char *uri = tcp ? d.tcp_uri : d.unix_uri;
    struct run r;
    const char *args[] = {"--connect", uri,  "--size",   "320x240", "--fps",  "0",
                          "--frames",  "30", "--window", "4",       "--json", NULL};
    send_start(&r, d.dir, args);
    CHECK_EQ(send_wait(&r), 0);
    check_json(r.out, 30, uri);
    struct stat st;
    CHECK(stat(r.h264_path, &st) == 0);
    CHECK_EQ(json_num(r.out, "bytes"), st.st_size);
    struct hxfr_avcheck *av = decode_file(r.h264_path, 0);
    CHECK_EQ(hxfr_avcheck_frame_count(av), 30);
    CHECK(hxfr_avcheck_idr_count(av) >= 1);
    CHECK_EQ(hxfr_avcheck_idr_missing_params(av), 0);
    hxfr_avcheck_destroy(av);
    run_free(&r);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST_T(unix_frames_decode, 120)
{
    e2e_basic(false);
}

TEST_T(tcp_frames_decode, 120)
{
    e2e_basic(true);
}

/* The picture that comes back is the pattern that went out. */
TEST_T(quality_vs_pattern, 120)
{
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    struct run r;
    const char *args[] = {"--connect", d.unix_uri, "--size",   "640x360",   "--fps",
                          "30",        "--frames", "20",       "--bitrate", "8M",
                          "--format",  "BGRx",     "--window", "4",         NULL};
    send_start(&r, d.dir, args);
    CHECK_EQ(send_wait(&r), 0);
    struct hxfr_avcheck *av = decode_file(r.h264_path, 20);
    CHECK_EQ(hxfr_avcheck_frame_count(av), 20);
    double worst = 1000;
    for (uint64_t i = 0; i < 20; i++) {
        const struct hxfr_avcheck_frame *f = hxfr_avcheck_frame(av, i);
        CHECK(f != NULL);
        CHECK_EQ(f->width, 640);
        CHECK_EQ(f->height, 360);
        double y, all;
        CHECK_EQ(
            hxfr_avcheck_psnr_pattern(f, HXFR_PATTERN_DESKTOP, HXFR_FORMAT_XRGB8888, i, &y, &all),
            0);
        if (all < worst) {
            worst = all;
        }
    }
    fprintf(stderr, "# worst PSNR over 20 frames: %.2f dB\n", worst);
    CHECK(worst >= 35.0);
    hxfr_avcheck_destroy(av);
    run_free(&r);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    hxfr_test_daemon_free(&d);
}

/* The host dies (SIGKILL) mid-run: a clear message, exit 1, no hang. */
TEST_T(host_killed_mid_run, 120)
{
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    struct run r;
    const char *args[] = {"--connect", d.unix_uri, "--size", "320x240", "--fps",
                          "30",        "--frames", "3000",   NULL};
    send_start(&r, d.dir, args);
    wait_output(&r, 1);
    kill(d.pid, SIGKILL);
    CHECK_EQ(send_wait(&r), 1);
    CHECK(strstr(r.err, "lost the host") != NULL);
    CHECK(strstr(r.err, d.unix_uri) != NULL);
    run_free(&r);
    hxfr_test_daemon_free(&d);
}

/* Starts hxfrd on the UNIX socket path (as a restarted host would). */
static pid_t start_hxfrd_at(const char *unix_uri, const char *log_path)
{
    const char *bin = getenv("HXFRD");
    CHECK(bin != NULL);
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        int e = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(e, 2);
        char fdarg[16];
        snprintf(fdarg, sizeof(fdarg), "%d", ready[1]);
        execl(bin, bin, "--listen", unix_uri, "--ready-fd", fdarg, (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    char line[256];
    ssize_t n;
    do {
        n = read(ready[0], line, sizeof(line));
    } while (n < 0 && errno == EINTR);
    close(ready[0]);
    CHECK(n > 0); /* readiness line, not EOF from a daemon that failed */
    return pid;
}

/* --reconnect: the host crashes and comes back on the same socket; the
 * run completes, the stream restarts at an IDR and decodes completely. */
TEST_T(reconnect_after_host_restart, 120)
{
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    struct run r;
    const char *args[] = {"--connect",   d.unix_uri, "--size", "320x240", "--fps",
                          "30",          "--frames", "60",     "--gop",   "1000",
                          "--reconnect", "--json",   NULL};
    send_start(&r, d.dir, args);
    wait_output(&r, 1);
    kill(d.pid, SIGKILL);
    int status;
    CHECK(waitpid(d.pid, &status, 0) == d.pid);
    d.pid = 0;
    char log2[320];
    snprintf(log2, sizeof(log2), "%s/hxfrd2.log", d.dir);
    pid_t second = start_hxfrd_at(d.unix_uri, log2);
    int rc = send_wait(&r);
    kill(second, SIGTERM);
    CHECK(waitpid(second, &status, 0) == second);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(rc, 0);
    CHECK(strstr(r.err, "lost the host") != NULL);
    CHECK(strstr(r.err, "reconnected to") != NULL);
    CHECK(strstr(r.err, "resumed after reconnect with an IDR frame") != NULL);
    CHECK_EQ(json_num(r.out, "reconnects"), 1);
    double frames = json_num(r.out, "frames");
    CHECK(frames > 0 && frames <= 60);
    /* gop 1000: the only IDRs are the first frame and the one forced after
     * the reconnect. */
    CHECK_EQ(json_num(r.out, "keyframes"), 2);
    struct hxfr_avcheck *av = decode_file(r.h264_path, 0);
    CHECK_EQ(hxfr_avcheck_frame_count(av), (uint64_t)frames);
    CHECK_EQ(hxfr_avcheck_idr_count(av), 2);
    CHECK_EQ(hxfr_avcheck_idr_missing_params(av), 0);
    hxfr_avcheck_destroy(av);
    run_free(&r);
    hxfr_test_daemon_free(&d);
}

/* Every input format reaches the encoder with the right colours. */
TEST_T(every_format, 120)
{
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    static const char *const names[] = {"BGRA", "BGRx", "RGBA", "RGBx", "NV12", "I420"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct run r;
        const char *args[] = {"--connect", d.unix_uri, "--size", "320x240",   "--fps",
                              "0",         "--frames", "5",      "--bitrate", "6M",
                              "--format",  names[i],   NULL};
        send_start(&r, d.dir, args);
        CHECK_EQ(send_wait(&r), 0);
        struct hxfr_avcheck *av = decode_file(r.h264_path, 5);
        CHECK_EQ(hxfr_avcheck_frame_count(av), 5);
        double all = 0;
        CHECK_EQ(hxfr_avcheck_psnr_pattern(hxfr_avcheck_frame(av, 4), HXFR_PATTERN_DESKTOP,
                                           hxfr_format_from_name(names[i]), 4, NULL, &all),
                 0);
        fprintf(stderr, "# %s: PSNR %.2f dB\n", names[i], all);
        CHECK(all >= 35.0);
        hxfr_avcheck_destroy(av);
        run_free(&r);
    }
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    hxfr_test_daemon_free(&d);
}

/* ffprobe's "WIDTH,HEIGHT" of the H.264 file at path, into wh. */
static void ffprobe_size(const char *dir, const char *path, char *wh, size_t cap)
{
    const char *ffprobe = NULL;
    static const char *const where[] = {"/usr/bin/ffprobe", "/usr/local/bin/ffprobe"};
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        if (access(where[i], X_OK) == 0) {
            ffprobe = where[i];
            break;
        }
    }
    if (!ffprobe) {
        FAIL("ffprobe is not installed (Debian package ffmpeg, scripts/deps.sh)");
    }
    const char *argv[] = {ffprobe,
                          "-v",
                          "error",
                          "-f",
                          "h264",
                          "-select_streams",
                          "v:0",
                          "-show_entries",
                          "stream=width,height",
                          "-of",
                          "csv=p=0",
                          path,
                          NULL};
    char *out = NULL, *err = NULL;
    int rc = hxfr_test_run_capture(argv, dir, &out, &err);
    if (rc != 0 || !out) {
        FAIL("ffprobe %s: exit %d: %s", path, rc, err ? err : "");
    }
    snprintf(wh, cap, "%s", out);
    wh[strcspn(wh, "\n")] = '\0';
    free(out);
    free(err);
}

/* Odd sizes of packed RGB (and a few even ones around them) through the
 * daemon: every one encodes, and ffprobe reads the stream at exactly that
 * size (4:4:4 cropped in the SPS); 4:2:0 input of an odd size is refused
 * (BAD_GEOMETRY). About 3 s. */
TEST_T(odd_sizes_decode_at_their_size, 120)
{
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    static const char *const sizes[] = {"1x1",   "1x2",     "2x1",     "3x3",     "17x9",
                                        "64x33", "640x360", "641x360", "640x361", "641x361"};
    static const char *const formats[] = {"BGRx", "RGBA"};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (size_t j = 0; j < 2; j++) {
            struct run r;
            const char *args[] = {"--connect", d.unix_uri, "--size",   sizes[i],   "--fps", "0",
                                  "--frames",  "3",        "--format", formats[j], NULL};
            send_start(&r, d.dir, args);
            if (send_wait(&r) != 0) {
                FAIL("%s %s: hxfr-send failed: %s", sizes[i], formats[j], r.err);
            }
            struct hxfr_avcheck *av = decode_file(r.h264_path, 0);
            CHECK_EQ(hxfr_avcheck_frame_count(av), 3);
            hxfr_avcheck_destroy(av);
            char wh[64], want[64];
            ffprobe_size(d.dir, r.h264_path, wh, sizeof(wh));
            snprintf(want, sizeof(want), "%s", sizes[i]);
            want[strcspn(want, "x")] = ',';
            if (strcmp(wh, want) != 0) {
                FAIL("%s %s: ffprobe says %s", sizes[i], formats[j], wh);
            }
            run_free(&r);
        }
    }
    struct run r;
    const char *args[] = {"--connect", d.unix_uri, "--size",   "641x361", "--fps", "0",
                          "--frames",  "2",        "--format", "NV12",    NULL};
    send_start(&r, d.dir, args);
    CHECK(send_wait(&r) != 0);
    CHECK(strstr(r.err, "BAD_GEOMETRY") != NULL || strstr(r.err, "odd") != NULL);
    run_free(&r);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    hxfr_test_daemon_free(&d);
}

/* A 5K frame (5120x2880, a size Helix's desktop offers) is accepted by the
 * daemon's default size limit and comes back at its size. About 2 s. */
TEST_T(size_5k_accepted_by_default, 120)
{
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    struct run r;
    const char *args[] = {"--connect", d.unix_uri, "--size", "5120x2880", "--fps",
                          "0",         "--frames", "2",      NULL};
    send_start(&r, d.dir, args);
    if (send_wait(&r) != 0) {
        FAIL("5120x2880: hxfr-send failed: %s", r.err);
    }
    char wh[64];
    ffprobe_size(d.dir, r.h264_path, wh, sizeof(wh));
    CHECK(strcmp(wh, "5120,2880") == 0);
    run_free(&r);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}
