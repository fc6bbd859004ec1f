/* The GStreamer plugin (vsockenc, hxfrsrc) end to end: real pipelines built
 * with gst_parse_launch, checked through appsink, against the fake host
 * (tests/gst/fakehost.c, which encodes with the real encoders) and, when it
 * is built, the real hxfrd.
 *
 * Environment (set by meson): GST_PLUGIN_PATH (the plugin's build folder),
 * GST_REGISTRY (a registry file in the build folder), HXFR_FAKEHOST, and
 * HXFRD when the daemon is part of the build.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <hxfr/proto.h>

#include "gsthxfrutil.h"

/* ---- hosts ------------------------------------------------------------ */

/* Declare it zeroed (`struct host h = {0};`) or with designated options:
 * hxfrd_spawn reads the options and tcp_port. */
struct host {
    pid_t pid;
    char dir[64];
    char sock[128];
    char log[128];
    char address[160];
    bool log_info;     /* hxfrd: info-level log into `log` (else warnings on stderr) */
    bool log_debug;    /* hxfrd: debug-level log into `log` (CONFIG_REQ settings) */
    bool tcp;          /* hxfrd: also listen on tcp:127.0.0.1:0 */
    unsigned tcp_port; /* the port the kernel chose for it */
};

/* Waits up to 20 s for one line on fd; returns its length or -1. */
static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20000) <= 0) {
            return -1;
        }
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0) {
            return -1;
        }
        if (buf[n] == '\n') {
            break;
        }
        n++;
    }
    buf[n] = '\0';
    return (int)n;
}

static void make_dir(struct host *h)
{
    snprintf(h->dir, sizeof(h->dir), "/tmp/hxfr-gst-XXXXXX");
    if (!mkdtemp(h->dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(h->sock, sizeof(h->sock), "%s/host.sock", h->dir);
    snprintf(h->log, sizeof(h->log), "%s/host.log", h->dir);
    snprintf(h->address, sizeof(h->address), "unix:%s", h->sock);
}

/* Starts the fake host with extra arguments (NULL-terminated). */
static void fakehost_start(struct host *h, ...)
{
    const char *exe = getenv("HXFR_FAKEHOST");
    if (!exe) {
        fprintf(stderr, "HXFR_FAKEHOST not set\n");
        exit(1);
    }
    make_dir(h);
    const char *argv[32] = {exe, h->sock, "--log", h->log};
    int argc = 4;
    va_list ap;
    va_start(ap, h);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 31) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    int pfd[2];
    if (pipe(pfd) < 0) {
        exit(1);
    }
    h->pid = fork();
    if (h->pid == 0) {
        /* Never outlive the test (a failed CHECK exits without cleanup). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    char line[64];
    if (read_line(pfd[0], line, sizeof(line)) < 0 || strcmp(line, "READY") != 0) {
        fprintf(stderr, "fake host did not start\n");
        exit(1);
    }
    close(pfd[0]);
}

static void hxfrd_spawn(struct host *h);

/* Starts the real hxfrd on a private socket; false if it is not built. */
static bool hxfrd_start(struct host *h)
{
    const char *exe = getenv("HXFRD");
    if (!exe || !*exe) {
        return false;
    }
    make_dir(h);
    hxfrd_spawn(h);
    return true;
}

/* Starts hxfrd listening on h->sock (again, after host_kill), and with
 * h->tcp on a TCP port of the loopback the kernel picks (h->tcp_port; the
 * same one again after host_kill). */
static void hxfrd_spawn(struct host *h)
{
    const char *exe = getenv("HXFRD");
    int pfd[2];
    if (pipe(pfd) < 0) {
        exit(1);
    }
    char listen[200], listen_tcp[64], ready[16];
    snprintf(listen, sizeof(listen), "unix:%s", h->sock);
    snprintf(listen_tcp, sizeof(listen_tcp), "tcp:127.0.0.1:%u", h->tcp_port);
    snprintf(ready, sizeof(ready), "%d", pfd[1]);
    bool log_file = h->log_info || h->log_debug;
    const char *level = h->log_debug ? "debug" : h->log_info ? "info" : "warn";
    h->pid = fork();
    if (h->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(pfd[0]);
        if (log_file) {
            int lfd = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (lfd < 0 || dup2(lfd, 2) < 0) {
                _exit(127);
            }
        }
        if (h->tcp) {
            execl(exe, exe, "--listen", listen, "--listen", listen_tcp, "--ready-fd", ready,
                  "--workers", "1", "--threads", "1", "--log-level", level, (char *)NULL);
        } else {
            execl(exe, exe, "--listen", listen, "--ready-fd", ready, "--workers", "1", "--threads",
                  "1", "--log-level", level, (char *)NULL);
        }
        _exit(127);
    }
    close(pfd[1]);
    char line[256];
    for (int i = 0; i < (h->tcp ? 2 : 1); i++) {
        if (read_line(pfd[0], line, sizeof(line)) < 0) {
            fprintf(stderr, "hxfrd did not become ready\n");
            exit(1);
        }
        const char *colon = strrchr(line, ':');
        if (strncmp(line, "tcp:", 4) == 0 && colon) {
            h->tcp_port = (unsigned)atoi(colon + 1);
        }
    }
    close(pfd[0]);
    if (h->tcp && h->tcp_port == 0) {
        fprintf(stderr, "hxfrd did not report its TCP port\n");
        exit(1);
    }
}

static void host_stop(struct host *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGTERM);
        waitpid(h->pid, NULL, 0);
        h->pid = 0;
    }
    unlink(h->sock);
    unlink(h->log);
    rmdir(h->dir);
}

static void host_kill(struct host *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGKILL);
        waitpid(h->pid, NULL, 0);
        h->pid = 0;
    }
}

/* Reads the fake host's log into buf. */
static void read_log(const struct host *h, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(h->log, "r");
    if (f) {
        size_t n = fread(buf, 1, cap - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
}

/* Starts the real hxfrd for a test, or ends the test as skipped when this
 * build has no daemon. */
#define HXFRD_START_OR_SKIP(h)                                                                     \
    do {                                                                                           \
        if (!hxfrd_start(h)) {                                                                     \
            SKIP("hxfrd is not part of this build");                                               \
        }                                                                                          \
    } while (0)

/* Waits (up to 10 s) until hxfrd logged `clients` disconnects, then sums
 * the requests and pixel bytes copied those lines report ("client N
 * disconnected: WHY (R requests, E errors, B pixel bytes copied)"). Returns
 * the number of lines parsed. */
static int hxfrd_copied(const struct host *h, int clients, unsigned long long *requests,
                        unsigned long long *copied)
{
    static char log[65536];
    int lines = 0;
    for (int tries = 0; tries < 200; tries++) {
        read_log(h, log, sizeof(log));
        *requests = *copied = 0;
        lines = 0;
        for (const char *p = strstr(log, " disconnected: "); p;
             p = strstr(p + 1, " disconnected: ")) {
            const char *q = strchr(p, '(');
            unsigned long long rq, er, cp;
            const char *nl = strchr(p, '\n');
            while (q && (!nl || q < nl) &&
                   sscanf(q, "(%llu requests, %llu errors, %llu pixel bytes", &rq, &er, &cp) != 3) {
                q = strchr(q + 1, '(');
            }
            if (q && (!nl || q < nl)) {
                *requests += rq;
                *copied += cp;
                lines++;
            }
        }
        if (lines >= clients) {
            break;
        }
        g_usleep(50000);
    }
    return lines;
}

/* ---- pipelines ------------------------------------------------------- */

#define MAX_S 512

struct run {
    int n;
    GstClockTime pts[MAX_S];
    bool delta[MAX_S];
    bool discont[MAX_S];
    bool idr[MAX_S]; /* an IDR slice (NAL type 5) in the buffer */
    bool sps[MAX_S];
    int width[MAX_S];
    int height[MAX_S];
    uint8_t rgb[MAX_S][3]; /* centre pixel when the sink gets RGBx */
    bool eos;
    bool error;
    char err[512];
    char dbg[1024];
    bool warning;
    char warn[512];
};

static void scan_nals(const uint8_t *d, size_t n, bool *idr, bool *sps)
{
    *idr = *sps = false;
    for (size_t i = 0; i + 3 < n; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
            int t = d[i + 3] & 0x1f;
            *idr = *idr || t == 5;
            *sps = *sps || t == 7;
        }
    }
}

static void record(struct run *r, GstSample *s)
{
    if (r->n >= MAX_S) {
        return;
    }
    int i = r->n++;
    GstBuffer *b = gst_sample_get_buffer(s);
    GstCaps *caps = gst_sample_get_caps(s);
    r->pts[i] = GST_BUFFER_PTS(b);
    r->delta[i] = GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
    r->discont[i] = GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT);
    GstStructure *st = caps ? gst_caps_get_structure(caps, 0) : NULL;
    if (st) {
        gst_structure_get_int(st, "width", &r->width[i]);
        gst_structure_get_int(st, "height", &r->height[i]);
    }
    GstMapInfo map;
    if (!gst_buffer_map(b, &map, GST_MAP_READ)) {
        return;
    }
    if (st && gst_structure_has_name(st, "video/x-h264")) {
        scan_nals(map.data, map.size, &r->idr[i], &r->sps[i]);
    } else if (st && r->width[i] > 0) {
        GstVideoInfo info;
        if (gst_video_info_from_caps(&info, caps) &&
            GST_VIDEO_INFO_FORMAT(&info) == GST_VIDEO_FORMAT_RGBx) {
            size_t off = (size_t)(r->height[i] / 2) * GST_VIDEO_INFO_PLANE_STRIDE(&info, 0) +
                         (size_t)(r->width[i] / 2) * 4;
            if (off + 3 <= map.size) {
                memcpy(r->rgb[i], map.data + off, 3);
            }
        }
    }
    gst_buffer_unmap(b, &map);
}

/* Checks the bus for an error or EOS (non-blocking). */
static void poll_bus(GstElement *pipe, struct run *r)
{
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *m;
    while ((
        m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR | GST_MESSAGE_EOS | GST_MESSAGE_WARNING))) {
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING && !r->warning) {
            GError *e = NULL;
            gst_message_parse_warning(m, &e, NULL);
            r->warning = true;
            snprintf(r->warn, sizeof(r->warn), "%s", e ? e->message : "");
            g_clear_error(&e);
        } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR && !r->error) {
            GError *e = NULL;
            gchar *dbg = NULL;
            gst_message_parse_error(m, &e, &dbg);
            r->error = true;
            snprintf(r->err, sizeof(r->err), "%s", e ? e->message : "");
            snprintf(r->dbg, sizeof(r->dbg), "%s", dbg ? dbg : "");
            g_clear_error(&e);
            g_free(dbg);
        } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS) {
            r->eos = true;
        }
        gst_message_unref(m);
    }
    gst_object_unref(bus);
}

/* Pulls samples from appsink "sink" until EOS, an error, `max` samples or
 * timeout_s seconds. */
static void collect(GstElement *pipe, struct run *r, int max, int timeout_s)
{
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    while (!r->error && r->n < max && g_get_monotonic_time() < deadline) {
        GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 50 * GST_MSECOND);
        if (s) {
            record(r, s);
            gst_sample_unref(s);
            continue;
        }
        poll_bus(pipe, r);
        if (gst_app_sink_is_eos(GST_APP_SINK(sink))) {
            r->eos = true;
            break;
        }
    }
    poll_bus(pipe, r);
    gst_object_unref(sink);
}

/* Runs a whole pipeline description to EOS or error. */
static GstElement *launch(const char *desc)
{
    GError *err = NULL;
    GstElement *pipe = gst_parse_launch(desc, &err);
    if (!pipe) {
        fprintf(stderr, "parse error: %s\n", err ? err->message : "?");
        exit(1);
    }
    return pipe;
}

static void run_desc(const char *desc, struct run *r, int max, int timeout_s)
{
    GstElement *pipe = launch(desc);
    GstStateChangeReturn sr = gst_element_set_state(pipe, GST_STATE_PLAYING);
    if (sr != GST_STATE_CHANGE_FAILURE) {
        collect(pipe, r, max, timeout_s);
    } else {
        poll_bus(pipe, r);
    }
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
}

static void init_gst(void)
{
    gst_init(NULL, NULL);
}

#include "harness.h"

/* ---- element metadata and properties ---------------------------------- */

static void check_blurbs(GstElement *e)
{
    guint n;
    GParamSpec **ps = g_object_class_list_properties(G_OBJECT_GET_CLASS(e), &n);
    int own = 0;
    for (guint i = 0; i < n; i++) {
        if (ps[i]->owner_type != G_OBJECT_TYPE(e)) {
            continue;
        }
        own++;
        const gchar *blurb = g_param_spec_get_blurb(ps[i]);
        if (!blurb || !strstr(blurb, "Default: ")) {
            FAIL("property %s: blurb without its default: %s", ps[i]->name,
                 blurb ? blurb : "(null)");
        }
        CHECK(strlen(g_param_spec_get_nick(ps[i])) > 0);
    }
    CHECK(own >= 3);
    g_free(ps);
    GstElementFactory *f = gst_element_get_factory(e);
    CHECK(strlen(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_LONGNAME)) > 0);
    CHECK(strlen(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_DESCRIPTION)) > 40);
    CHECK(strlen(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS)) > 0);
}

TEST(properties_and_metadata)
{
    init_gst();
    GstElement *e = gst_element_factory_make("vsockenc", NULL);
    CHECK(e != NULL);
    check_blurbs(e);
    gchar *addr;
    guint bitrate, kfi, mif, cid, port;
    gboolean rc;
    gboolean shm = TRUE;
    g_object_get(e, "address", &addr, "bitrate", &bitrate, "keyframe-interval", &kfi,
                 "max-in-flight", &mif, "reconnect", &rc, "cid", &cid, "port", &port, "use-shm",
                 &shm, NULL);
    CHECK(!shm);
    CHECK(strcmp(addr, "vsock:2:5000") == 0);
    g_free(addr);
    CHECK_EQ(bitrate, 4000000);
    CHECK_EQ(kfi, 60);
    CHECK_EQ(mif, 4);
    CHECK(!rc);
    CHECK_EQ(cid, 2);
    CHECK_EQ(port, 5000);
    /* The compatibility properties rewrite the address. */
    g_object_set(e, "cid", 3u, NULL);
    g_object_set(e, "port", 6000u, NULL);
    g_object_get(e, "address", &addr, NULL);
    CHECK(strcmp(addr, "vsock:3:6000") == 0);
    g_free(addr);
    g_object_set(e, "socket-path", "/run/x.sock", NULL);
    gchar *path;
    g_object_get(e, "address", &addr, "socket-path", &path, NULL);
    CHECK(strcmp(addr, "unix:/run/x.sock") == 0);
    CHECK(strcmp(path, "/run/x.sock") == 0);
    g_free(addr);
    g_free(path);
    /* Helix's types and defaults; socket-path takes precedence over
     * tcp-host, which takes precedence over cid/port. */
    CHECK(G_PARAM_SPEC_VALUE_TYPE(g_object_class_find_property(G_OBJECT_GET_CLASS(e), "bitrate")) ==
          G_TYPE_INT);
    CHECK(G_PARAM_SPEC_VALUE_TYPE(g_object_class_find_property(G_OBJECT_GET_CLASS(e),
                                                               "keyframe-interval")) == G_TYPE_INT);
    guint tcp_port;
    gchar *tcp_host;
    g_object_get(e, "tcp-port", &tcp_port, "tcp-host", &tcp_host, NULL);
    CHECK_EQ(tcp_port, 15937);
    CHECK(tcp_host == NULL);
    g_object_set(e, "tcp-host", "10.0.2.2", NULL);
    g_object_get(e, "address", &addr, NULL);
    CHECK(strcmp(addr, "unix:/run/x.sock") == 0);
    g_free(addr);
    g_object_set(e, "socket-path", "", NULL);
    g_object_get(e, "address", &addr, NULL);
    CHECK(strcmp(addr, "tcp:10.0.2.2:15937") == 0);
    g_free(addr);
    g_object_set(e, "tcp-host", "::1", "tcp-port", 6000u, NULL);
    g_object_get(e, "address", &addr, NULL);
    CHECK(strcmp(addr, "tcp:[::1]:6000") == 0);
    g_free(addr);
    /* Whichever was written last decides: address, or Helix's properties. */
    g_object_set(e, "address", "unix:/run/y.sock", NULL);
    g_object_get(e, "address", &addr, "tcp-host", &tcp_host, NULL);
    CHECK(strcmp(addr, "unix:/run/y.sock") == 0);
    CHECK(strcmp(tcp_host, "::1") == 0);
    g_free(addr);
    g_free(tcp_host);
    g_object_set(e, "tcp-host", NULL, NULL);
    g_object_get(e, "address", &addr, NULL);
    CHECK(strcmp(addr, "vsock:3:6000") == 0);
    g_free(addr);
    gst_object_unref(e);

    e = gst_element_factory_make("hxfrsrc", NULL);
    CHECK(e != NULL);
    check_blurbs(e);
    CHECK(gst_base_src_is_live(GST_BASE_SRC(e)));
    guint scanout;
    g_object_get(e, "address", &addr, "scanout", &scanout, NULL);
    CHECK(strcmp(addr, "vsock:2:5000") == 0);
    CHECK_EQ(scanout, 0);
    g_free(addr);
    gst_object_unref(e);
}

TEST(sps_to_caps_strings)
{
    /* 00 00 00 01 67 <profile> <constraints> <level> */
    const uint8_t cb31[] = {0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 66, 0xc0, 31, 0xAA};
    struct hxfr_sps_info s;
    char lvl[8];
    CHECK(gst_hxfr_find_sps(cb31, sizeof(cb31), &s));
    CHECK_EQ(s.profile_idc, 66);
    CHECK(strcmp(gst_hxfr_profile_name(&s), "constrained-baseline") == 0);
    CHECK(gst_hxfr_level_name(&s, lvl, sizeof(lvl)));
    CHECK(strcmp(lvl, "3.1") == 0);
    const uint8_t high4[] = {0, 0, 1, 0x67, 100, 0x00, 40};
    CHECK(gst_hxfr_find_sps(high4, sizeof(high4), &s));
    CHECK(strcmp(gst_hxfr_profile_name(&s), "high") == 0);
    CHECK(gst_hxfr_level_name(&s, lvl, sizeof(lvl)));
    CHECK(strcmp(lvl, "4") == 0);
    const uint8_t main1b[] = {0, 0, 1, 0x67, 77, 0x10, 11};
    CHECK(gst_hxfr_find_sps(main1b, sizeof(main1b), &s));
    CHECK(strcmp(gst_hxfr_profile_name(&s), "main") == 0);
    CHECK(gst_hxfr_level_name(&s, lvl, sizeof(lvl)));
    CHECK(strcmp(lvl, "1b") == 0);
    /* Truncated, absent, unknown. */
    const uint8_t cut[] = {0, 0, 1, 0x67, 100};
    CHECK(!gst_hxfr_find_sps(cut, sizeof(cut), &s));
    const uint8_t none[] = {0, 0, 1, 0x65, 1, 2, 3};
    CHECK(!gst_hxfr_find_sps(none, sizeof(none), &s));
    s.level_idc = 33;
    CHECK(!gst_hxfr_level_name(&s, lvl, sizeof(lvl)));
    s.profile_idc = 1;
    CHECK(gst_hxfr_profile_name(&s) == NULL);
    CHECK_EQ(gst_hxfr_format_from_video(GST_VIDEO_FORMAT_BGRx), HXFR_FORMAT_XRGB8888);
    CHECK_EQ(gst_hxfr_format_from_video(GST_VIDEO_FORMAT_RGBA), HXFR_FORMAT_ABGR8888);
    CHECK_EQ(gst_hxfr_format_from_video(GST_VIDEO_FORMAT_YUY2), 0);
    CHECK(gst_hxfr_address_is_unix("unix:/run/x.sock"));
    CHECK(gst_hxfr_address_is_unix("/run/x.sock"));
    CHECK(gst_hxfr_address_is_unix("./x:y"));
    CHECK(!gst_hxfr_address_is_unix("tcp:10.0.2.2:15937"));
    CHECK(!gst_hxfr_address_is_unix("vsock:2:5000"));
    CHECK(!gst_hxfr_address_is_unix("serial:/dev/vport0p1"));
    CHECK(!gst_hxfr_address_is_unix("http://x/y"));
    CHECK(!gst_hxfr_address_is_unix("x.sock"));
    CHECK(!gst_hxfr_address_is_unix(NULL));
}

/* ---- vsockenc ----------------------------------------------------------- */

/* 120 frames of 1280x720 BGRx: all decoded, in order, pts preserved, and
 * the output caps carry the profile and level of the host's SPS. */
static void encode_720p(struct host *h, const char *props)
{
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=120 pattern=ball ! "
             "video/x-raw,format=BGRx,width=1280,height=720,framerate=30/1 ! "
             "vsockenc name=enc address=%s %s ! h264parse ! avdec_h264 ! "
             "appsink name=sink sync=false",
             h->address, props);
    GstElement *pipe = launch(desc);
    CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    struct run *r = g_new0(struct run, 1);
    collect(pipe, r, MAX_S, 60);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK(r->eos);
    CHECK_EQ(r->n, 120);
    for (int i = 0; i < r->n; i++) {
        CHECK_EQ(r->pts[i], gst_util_uint64_scale(i, GST_SECOND, 30));
        CHECK_EQ(r->width[i], 1280);
        CHECK_EQ(r->height[i], 720);
    }
    GstElement *enc = gst_bin_get_by_name(GST_BIN(pipe), "enc");
    GstPad *src = gst_element_get_static_pad(enc, "src");
    GstCaps *caps = gst_pad_get_current_caps(src);
    CHECK(caps != NULL);
    GstStructure *st = gst_caps_get_structure(caps, 0);
    const gchar *profile = gst_structure_get_string(st, "profile");
    const gchar *level = gst_structure_get_string(st, "level");
    CHECK(profile != NULL && level != NULL);
    CHECK(strcmp(gst_structure_get_string(st, "stream-format"), "byte-stream") == 0);
    CHECK(strcmp(gst_structure_get_string(st, "alignment"), "au") == 0);
    /* Latency: max-in-flight (4) frames of 1/30 s. */
    GstQuery *q = gst_query_new_latency();
    CHECK(gst_pad_query(src, q));
    GstClockTime min_lat, max_lat;
    gboolean live;
    gst_query_parse_latency(q, &live, &min_lat, &max_lat);
    CHECK(min_lat >= gst_util_uint64_scale(4, GST_SECOND, 30));
    gst_query_unref(q);
    gst_caps_unref(caps);
    gst_object_unref(src);
    gst_object_unref(enc);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
    g_free(r);
}

TEST_T(encode_720p_fakehost, 120)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, NULL);
    encode_720p(&h, "");
    char log[4096];
    read_log(&h, log, sizeof(log));
    /* bitrate and keyframe-interval really went to the host. */
    CHECK(strstr(log, "config 1280 720 4000000 60") != NULL);
    host_stop(&h);
}

TEST_T(encode_720p_hxfrd, 120)
{
    init_gst();
    struct host h = {0};
    HXFRD_START_OR_SKIP(&h);
    encode_720p(&h, "");
    host_stop(&h);
}

/* use-shm: the same 120 frames through a memfd ring; the daemon encodes
 * them straight from the slots and copies no pixel byte. */
TEST_T(encode_720p_hxfrd_shm, 120)
{
    init_gst();
    struct host h = {.log_info = true};
    HXFRD_START_OR_SKIP(&h);
    encode_720p(&h, "use-shm=true");
    unsigned long long requests, copied;
    CHECK_EQ(hxfrd_copied(&h, 1, &requests, &copied), 1);
    CHECK(requests >= 120);
    CHECK_EQ(copied, 0);
    host_stop(&h);

    /* The same run inline copies every frame once on the host: the
     * counter read above does count. */
    h = (struct host){.log_info = true};
    CHECK(hxfrd_start(&h));
    char desc[512];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=3 ! video/x-raw,format=BGRx,width=64,height=48 ! "
             "vsockenc address=%s ! appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    CHECK(!r->error);
    CHECK_EQ(r->n, 3);
    CHECK_EQ(hxfrd_copied(&h, 1, &requests, &copied), 1);
    CHECK_EQ(copied, 3u * 64u * 48u * 4u);
    g_free(r);
    host_stop(&h);
}

/* Every sink format, small frames: a solid red picture must come back red
 * (a swapped R/B or a wrong plane layout would not). */
/* With width 70 and pattern smpte, the centre pixel lies inside the green
 * bar (columns 30..39): a plane copied with a wrong stride shifts the rows
 * and puts another bar there. */
static void every_format(struct host *h, const char *props, int width, int height)
{
    bool smpte = width == 70;
    static const char *formats[] = {"BGRA", "BGRx", "RGBA", "RGBx", "NV12", "I420"};
    for (size_t f = 0; f < G_N_ELEMENTS(formats); f++) {
        char desc[1024];
        snprintf(desc, sizeof(desc),
                 "videotestsrc num-buffers=8 pattern=%s ! "
                 "video/x-raw,format=%s,width=%d,height=%d,framerate=30/1 ! "
                 "vsockenc address=%s %s ! h264parse ! avdec_h264 ! videoconvert ! "
                 "video/x-raw,format=RGBx ! appsink name=sink sync=false",
                 smpte ? "smpte" : "red", formats[f], width, height, h->address, props);
        struct run *r = g_new0(struct run, 1);
        run_desc(desc, r, MAX_S, 30);
        if (r->error) {
            FAIL("%s: pipeline error: %s (%s)", formats[f], r->err, r->dbg);
        }
        if (r->n != 8) {
            FAIL("%s: %d frames decoded, want 8", formats[f], r->n);
        }
        for (int i = 0; i < r->n; i++) {
            CHECK_EQ(r->width[i], width);
            CHECK_EQ(r->height[i], height);
            bool ok = smpte ? r->rgb[i][0] < 90 && r->rgb[i][1] > 120 && r->rgb[i][2] < 90
                            : r->rgb[i][0] >= 200 && r->rgb[i][1] <= 60 && r->rgb[i][2] <= 60;
            if (!ok) {
                FAIL("%s: frame %d centre is %u,%u,%u, want %s", formats[f], i, r->rgb[i][0],
                     r->rgb[i][1], r->rgb[i][2], smpte ? "green" : "red");
            }
        }
        g_free(r);
    }
}

TEST_T(every_sink_format_fakehost, 120)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, NULL);
    every_format(&h, "", 64, 48);
    host_stop(&h);
}

/* use-shm with every format at a size whose GStreamer strides are not
 * the tight ones (70 wide: I420 rows of 72 and 36 bytes, slots of 70 and
 * 35): the copy into the slot lays every plane out right. */
TEST_T(every_sink_format_hxfrd_shm, 120)
{
    init_gst();
    struct host h = {.log_info = true};
    HXFRD_START_OR_SKIP(&h);
    every_format(&h, "use-shm=true", 70, 50);
    unsigned long long requests, copied;
    CHECK_EQ(hxfrd_copied(&h, 6, &requests, &copied), 6);
    CHECK(requests >= 6 * 8);
    CHECK_EQ(copied, 0);
    host_stop(&h);
}

TEST_T(every_sink_format_hxfrd, 120)
{
    init_gst();
    struct host h = {0};
    HXFRD_START_OR_SKIP(&h);
    every_format(&h, "", 64, 48);
    host_stop(&h);
}

/* Pulls one sample (waiting up to 10 s) or fails the test. */
static void pull_one(GstElement *pipe, GstElement *sink, struct run *r, int i)
{
    GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND);
    if (!s) {
        poll_bus(pipe, r);
        FAIL("no output for frame %d (%s)", i, r->err);
    }
    record(r, s);
    gst_sample_unref(s);
}

/* After the host went away: pushes up to 3 more frames (the next cannot
 * be sent, or its answer never comes) and waits up to 10 s for the element
 * error, which the test then expects. */
static void push_until_error(GstElement *pipe, GstElement *src, struct run *r)
{
    for (int i = 0; i < 3 && !r->error; i++) {
        gst_app_src_push_buffer(GST_APP_SRC(src), gst_buffer_new_allocate(NULL, 64 * 48 * 4, NULL));
        g_usleep(100000);
        poll_bus(pipe, r);
    }
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!r->error && g_get_monotonic_time() < deadline) {
        g_usleep(20000);
        poll_bus(pipe, r);
    }
    CHECK(r->error);
}

/* Pushes one BGRx frame of w x h (grey level v) with pts i/30 s. */
static void push_frame(GstElement *appsrc, int w, int h, int i)
{
    gsize size = (gsize)w * h * 4;
    GstBuffer *b = gst_buffer_new_allocate(NULL, size, NULL);
    gst_buffer_memset(b, 0, (guint8)(i * 7), size);
    GST_BUFFER_PTS(b) = gst_util_uint64_scale(i, GST_SECOND, 30);
    GST_BUFFER_DURATION(b) = gst_util_uint64_scale(1, GST_SECOND, 30);
    CHECK_EQ(gst_app_src_push_buffer(GST_APP_SRC(appsrc), b), GST_FLOW_OK);
}

static void set_size(GstElement *appsrc, int w, int h)
{
    GstCaps *caps =
        gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "BGRx", "width", G_TYPE_INT, w,
                            "height", G_TYPE_INT, h, "framerate", GST_TYPE_FRACTION, 30, 1, NULL);
    gst_app_src_set_caps(GST_APP_SRC(appsrc), caps);
    gst_caps_unref(caps);
}

/* The input size changes mid-stream: the encoder drains, reconfigures the
 * host and the decoder sees both sizes in order. */
static void renegotiate(struct host *h, const char *props)
{
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "appsrc name=src format=time ! vsockenc address=%s %s ! h264parse ! avdec_h264 ! "
             "appsink name=sink sync=false",
             h->address, props);
    GstElement *pipe = launch(desc);
    GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "src");
    set_size(src, 64, 48);
    CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    for (int i = 0; i < 6; i++) {
        push_frame(src, 64, 48, i);
    }
    set_size(src, 96, 64);
    for (int i = 6; i < 12; i++) {
        push_frame(src, 96, 64, i);
    }
    gst_app_src_end_of_stream(GST_APP_SRC(src));
    struct run *r = g_new0(struct run, 1);
    collect(pipe, r, MAX_S, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK_EQ(r->n, 12);
    for (int i = 0; i < 12; i++) {
        CHECK_EQ(r->width[i], i < 6 ? 64 : 96);
        CHECK_EQ(r->height[i], i < 6 ? 48 : 64);
        CHECK_EQ(r->pts[i], gst_util_uint64_scale(i, GST_SECOND, 30));
    }
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(src);
    gst_object_unref(pipe);
    g_free(r);
}

TEST_T(renegotiate_size_fakehost, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, NULL);
    renegotiate(&h, "");
    char log[4096];
    read_log(&h, log, sizeof(log));
    CHECK(strstr(log, "config 64 48 ") != NULL);
    CHECK(strstr(log, "config 96 64 ") != NULL);
    host_stop(&h);
}

TEST_T(renegotiate_size_hxfrd, 60)
{
    init_gst();
    struct host h = {0};
    HXFRD_START_OR_SKIP(&h);
    renegotiate(&h, "");
    host_stop(&h);
}

/* use-shm across a size change: the ring is created again for the bigger
 * frames (the old slots are too small for them), every frame of both
 * sizes decodes in order, and the daemon copies nothing. */
TEST_T(renegotiate_size_hxfrd_shm, 60)
{
    init_gst();
    struct host h = {.log_info = true};
    HXFRD_START_OR_SKIP(&h);
    renegotiate(&h, "use-shm=true max-in-flight=2");
    unsigned long long requests, copied;
    CHECK_EQ(hxfrd_copied(&h, 1, &requests, &copied), 1);
    CHECK(requests >= 12);
    CHECK_EQ(copied, 0);
    host_stop(&h);
}

/* use-shm on an address that cannot pass a memfd fails the start with a
 * clear error, before any connection attempt; a host that refuses shared
 * memory gets a warning and the frames go inline. */
TEST_T(use_shm_needs_unix_and_falls_back, 60)
{
    init_gst();
    static const char *addrs[] = {"tcp:127.0.0.1:1", "vsock:2:5000", "serial:/dev/null"};
    for (size_t i = 0; i < G_N_ELEMENTS(addrs); i++) {
        char desc[512];
        snprintf(desc, sizeof(desc),
                 "videotestsrc num-buffers=5 ! video/x-raw,width=64,height=48 ! "
                 "vsockenc address=%s use-shm=true ! fakesink",
                 addrs[i]);
        struct run *r = g_new0(struct run, 1);
        run_desc(desc, r, MAX_S, 10);
        CHECK(r->error);
        char want[128];
        snprintf(want, sizeof(want), "use-shm needs a unix: address, not %s", addrs[i]);
        if (!strstr(r->err, want)) {
            FAIL("unexpected error: %s", r->err);
        }
        g_free(r);
    }

    struct host h = {0};
    fakehost_start(&h, NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=10 ! video/x-raw,width=64,height=48,framerate=30/1 ! "
             "vsockenc address=%s use-shm=true ! appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK(r->eos);
    CHECK_EQ(r->n, 10);
    CHECK(r->warning);
    if (!strstr(r->warn, "refused shared-memory frames")) {
        FAIL("unexpected warning: %s", r->warn);
    }
    g_free(r);
    host_stop(&h);
}

/* An upstream force-key-unit event makes the next frame an IDR; with a
 * long keyframe-interval no other frame after the first is one. */
static void force_key_unit(struct host *h)
{
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "appsrc name=src format=time ! vsockenc address=%s keyframe-interval=1000 ! "
             "appsink name=sink sync=false",
             h->address);
    GstElement *pipe = launch(desc);
    GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "src");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    set_size(src, 64, 48);
    CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    struct run *r = g_new0(struct run, 1);
    for (int i = 0; i < 16; i++) {
        if (i == 10) {
            GstEvent *ev =
                gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 1);
            CHECK(gst_element_send_event(sink, ev));
        }
        push_frame(src, 64, 48, i);
        /* Wait for this frame's access unit before going on. */
        GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND);
        if (!s) {
            poll_bus(pipe, r);
            FAIL("no output for frame %d (%s)", i, r->err);
        }
        record(r, s);
        gst_sample_unref(s);
    }
    CHECK_EQ(r->n, 16);
    for (int i = 0; i < 16; i++) {
        bool key = i == 0 || i == 10;
        if (r->delta[i] == key || r->idr[i] != key || r->sps[i] != key) {
            FAIL("frame %d: delta %d idr %d sps %d, want keyframe %d", i, r->delta[i], r->idr[i],
                 r->sps[i], key);
        }
        CHECK_EQ(r->pts[i], gst_util_uint64_scale(i, GST_SECOND, 30));
    }
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(src);
    gst_object_unref(pipe);
    g_free(r);
}

TEST_T(force_key_unit_fakehost, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, NULL);
    force_key_unit(&h);
    char log[4096];
    read_log(&h, log, sizeof(log));
    CHECK(strstr(log, "force 10") != NULL);
    host_stop(&h);
}

TEST_T(force_key_unit_hxfrd, 60)
{
    init_gst();
    struct host h = {0};
    HXFRD_START_OR_SKIP(&h);
    force_key_unit(&h);
    host_stop(&h);
}

/* keyframe-interval and bitrate reach the host: IDRs every 10 frames. */
TEST_T(keyframe_interval_and_bitrate, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=25 ! video/x-raw,format=I420,width=64,height=48 ! "
             "vsockenc address=%s keyframe-interval=10 bitrate=1000000 max-in-flight=8 ! "
             "appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK_EQ(r->n, 25);
    CHECK(!r->delta[0] && !r->delta[10] && !r->delta[20]);
    CHECK(r->idr[0] && r->idr[10] && r->idr[20]);
    CHECK(r->delta[1] && r->delta[9] && r->delta[11]);
    char log[4096];
    read_log(&h, log, sizeof(log));
    CHECK(strstr(log, "config 64 48 1000000 10") != NULL);
    g_free(r);
    host_stop(&h);
}

/* ---- Helix's element's properties (docs/helix.md) --------------------- */

/* Encodes `frames` frames of a 64x48 NV12 test source (as Helix's pipeline
 * converts to NV12) through "vsockenc PROPS" into an appsink. */
static struct run *helix_run(const char *props, int frames)
{
    char desc[2048];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=%d ! video/x-raw,format=NV12,width=64,height=48,"
             "framerate=30/1 ! vsockenc %s ! h264parse ! video/x-h264,stream-format=byte-stream ! "
             "appsink name=sink sync=false",
             frames, props);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    return r;
}

/* All frames arrived, the last one too (EOS drains what is in flight),
 * with their pts. */
static void check_complete(const struct run *r, int frames, const char *props)
{
    if (r->error) {
        FAIL("vsockenc %s: pipeline error: %s (%s)", props, r->err, r->dbg);
    }
    CHECK(r->eos);
    if (r->n != frames) {
        FAIL("vsockenc %s: %d of %d frames", props, r->n, frames);
    }
    CHECK_EQ(r->pts[frames - 1], gst_util_uint64_scale(frames - 1, GST_SECOND, 30));
    CHECK(r->idr[0] && r->sps[0]);
}

/* IDRs exactly at the frames 0, interval, 2 * interval, ... */
static void check_idr_every(const struct run *r, int interval)
{
    for (int i = 0; i < r->n; i++) {
        if (r->idr[i] != (i % interval == 0)) {
            FAIL("keyframe-interval=%d: frame %d idr %d", interval, i, r->idr[i]);
        }
    }
}

/* Each of Helix's properties in a real pipeline against hxfrd, with
 * Helix's meaning: socket-path, tcp-host (an address or a name) with
 * tcp-port, the precedence socket-path > tcp-host > cid/port, bitrate and
 * keyframe-interval reaching the daemon, Helix's own production pipeline
 * string, a bad port, and the daemon going away being an element error
 * (with SIGPIPE at its default action, so a write that raised it would
 * kill this test). */
TEST_T(helix_properties_hxfrd, 120)
{
    init_gst();
    struct host h = {.log_debug = true, .tcp = true};
    HXFRD_START_OR_SKIP(&h);
    char props[512];
    struct run *r;

    /* Each way to reach the daemon; socket-path wins over tcp-host
     * (nothing listens on TCP port 1). */
    char ways[4][256];
    snprintf(ways[0], sizeof(ways[0]), "socket-path=%s", h.sock);
    snprintf(ways[1], sizeof(ways[1]), "tcp-host=127.0.0.1 tcp-port=%u", h.tcp_port);
    snprintf(ways[2], sizeof(ways[2]), "tcp-host=localhost tcp-port=%u", h.tcp_port);
    snprintf(ways[3], sizeof(ways[3]), "tcp-host=127.0.0.1 tcp-port=1 socket-path=%s", h.sock);
    for (int i = 0; i < 4; i++) {
        r = helix_run(ways[i], 20);
        check_complete(r, 20, ways[i]);
        g_free(r);
    }

    /* tcp-port alone changes nothing: the element still uses vsock (which
     * this machine cannot reach), named in the error. */
    snprintf(props, sizeof(props), "tcp-port=%u cid=2 port=5999", h.tcp_port);
    r = helix_run(props, 10);
    CHECK(r->error);
    if (!strstr(r->err, "vsock:2:5999")) {
        FAIL("vsockenc %s: error without the vsock address: %s", props, r->err);
    }
    g_free(r);

    /* A port outside 1..65535 fails the start, naming it. */
    r = helix_run("tcp-host=127.0.0.1 tcp-port=70000", 10);
    CHECK(r->error);
    CHECK(strstr(r->err, "tcp:127.0.0.1:70000") != NULL);
    g_free(r);

    /* bitrate (bit/s) and keyframe-interval reach the daemon. */
    snprintf(props, sizeof(props),
             "tcp-host=127.0.0.1 tcp-port=%u bitrate=3000000 keyframe-interval=10", h.tcp_port);
    r = helix_run(props, 25);
    check_complete(r, 25, props);
    check_idr_every(r, 10);
    g_free(r);
    char log[65536];
    read_log(&h, log, sizeof(log));
    CHECK(strstr(log, "config 3000000 bit/s") != NULL);
    CHECK(strstr(log, "gop 10") != NULL);

    /* Helix's production pipeline, word for word, with the kbit/s value it
     * passes: the stream works and the element warns about the unit. */
    snprintf(props, sizeof(props), "tcp-host=%s tcp-port=%u bitrate=%d keyframe-interval=%d",
             "127.0.0.1", h.tcp_port, 8294, 120);
    r = helix_run(props, 10);
    check_complete(r, 10, props);
    CHECK(r->warning);
    CHECK(strstr(r->warn, "bitrate=8294 is in bit/s") != NULL);
    g_free(r);

    /* The daemon goes away mid-stream: an element error, not SIGPIPE. */
    signal(SIGPIPE, SIG_DFL);
    char desc[512];
    snprintf(desc, sizeof(desc),
             "appsrc name=src format=time ! vsockenc tcp-host=127.0.0.1 tcp-port=%u ! "
             "appsink name=sink sync=false",
             h.tcp_port);
    GstElement *pipe = launch(desc);
    GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "src");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    set_size(src, 64, 48);
    CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    r = g_new0(struct run, 1);
    for (int i = 0; i < 3; i++) {
        push_frame(src, 64, 48, i);
        pull_one(pipe, sink, r, i);
    }
    host_kill(&h);
    push_until_error(pipe, src, r);
    CHECK_EQ(r->n, 3);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(src);
    gst_object_unref(pipe);
    g_free(r);
    host_stop(&h);
}

/* A v1 host (no keyframe-interval extension) gets a keyframe request every
 * keyframe-interval frames, as from Helix's element. */
TEST_T(keyframe_interval_v1_host, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--hello-error", NULL);
    char props[256];
    snprintf(props, sizeof(props), "address=%s keyframe-interval=10", h.address);
    struct run *r = helix_run(props, 25);
    check_complete(r, 25, props);
    check_idr_every(r, 10);
    g_free(r);
    char log[4096];
    read_log(&h, log, sizeof(log));
    CHECK(strstr(log, "force 0\nforce 10\nforce 20\n") != NULL);
    host_stop(&h);
}

/* ---- both vsockenc plugins installed (docs/gstreamer.md) -------------- */

/* In a fresh process with a registry file of its own, plugin path `path`
 * and system path `system`, with GLib warnings and criticals fatal (a
 * GType clash is a warning): asks what "vsockenc" resolves to. With `load`
 * (NULL-terminated), registers each of those plugin files first through
 * its own entry point, gst_plugin_vsockenc_register() (dlopen: as a
 * statically linked or otherwise embedded copy would; GStreamer itself
 * never loads two files of one basename). Writes "TYPE PLUGIN-FILE" into
 * out; returns false if that process failed. */
static bool resolve_vsockenc(const char *path, const char *system, const char *const *load,
                             char *out, size_t cap)
{
    char dir[] = "/tmp/hxfr-gst-reg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char reg[64];
    snprintf(reg, sizeof(reg), "%s/registry.bin", dir);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        setenv("GST_PLUGIN_PATH", path, 1);
        setenv("GST_PLUGIN_SYSTEM_PATH", system, 1);
        setenv("GST_REGISTRY", reg, 1);
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
        gst_init(NULL, NULL);
        for (int i = 0; load && load[i]; i++) {
            void *mod = dlopen(load[i], RTLD_NOW | RTLD_LOCAL);
            void *sym = mod ? dlsym(mod, "gst_plugin_vsockenc_register") : NULL;
            if (!sym) {
                fprintf(stderr, "%s: %s\n", load[i], dlerror());
                _exit(1);
            }
            /* POSIX guarantees dlsym's object pointer converts to the
             * function it names; ISO C has no such conversion. */
            void (*reg_fn)(void);
            memcpy(&reg_fn, &sym, sizeof(reg_fn));
            reg_fn();
        }
        GstElement *e = gst_element_factory_make("vsockenc", NULL);
        if (!e) {
            _exit(1);
        }
        GstPlugin *plugin =
            gst_plugin_feature_get_plugin(GST_PLUGIN_FEATURE(gst_element_get_factory(e)));
        const char *file = plugin ? gst_plugin_get_filename(plugin) : NULL;
        char line[512];
        int n = snprintf(line, sizeof(line), "%s %s\n", G_OBJECT_TYPE_NAME(e),
                         file ? file : "(registered)");
        if (write(pfd[1], line, (size_t)n) != n) {
            _exit(1);
        }
        _exit(0);
    }
    close(pfd[1]);
    int len = read_line(pfd[0], out, cap);
    close(pfd[0]);
    int status;
    waitpid(pid, &status, 0);
    unlink(reg);
    rmdir(dir);
    return len > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Helix's plugin (its stand-in, tests/gst/helix/standin.c) and ours both
 * installed. Ours is found first (GST_PLUGIN_PATH before the system
 * folder): "vsockenc" is ours, Helix's file of the same name is not
 * loaded. In one GST_PLUGIN_PATH the first folder wins, whichever it
 * holds. Both registered in one process: no GType clash (GstHxfrVsockEnc
 * beside GstVsockEnc), and the last registered owns the name. */
TEST_T(both_plugins_installed, 60)
{
    const char *ours = getenv("HXFR_GST_BUILD_DIR");
    const char *helix = getenv("HXFR_HELIX_STANDIN_DIR");
    CHECK(ours && helix);
    char line[512], want_ours[512], want_helix[512], path[512];
    snprintf(want_ours, sizeof(want_ours), "GstHxfrVsockEnc %s/libgstvsockenc.so", ours);
    snprintf(want_helix, sizeof(want_helix), "GstVsockEnc %s/libgstvsockenc.so", helix);

    CHECK(resolve_vsockenc(ours, helix, NULL, line, sizeof(line)));
    if (strcmp(line, want_ours) != 0) {
        FAIL("ours on GST_PLUGIN_PATH, Helix's in the system folder: got %s", line);
    }
    snprintf(path, sizeof(path), "%s:%s", ours, helix);
    CHECK(resolve_vsockenc(path, "/nonexistent-hxfr", NULL, line, sizeof(line)));
    if (strcmp(line, want_ours) != 0) {
        FAIL("GST_PLUGIN_PATH=ours:helix: got %s", line);
    }
    snprintf(path, sizeof(path), "%s:%s", helix, ours);
    CHECK(resolve_vsockenc(path, "/nonexistent-hxfr", NULL, line, sizeof(line)));
    if (strcmp(line, want_helix) != 0) {
        FAIL("GST_PLUGIN_PATH=helix:ours: got %s", line);
    }

    char helix_file[512], ours_file[512];
    snprintf(helix_file, sizeof(helix_file), "%s/libgstvsockenc.so", helix);
    snprintf(ours_file, sizeof(ours_file), "%s/libgstvsockenc.so", ours);
    const char *both[] = {helix_file, ours_file, NULL};
    CHECK(resolve_vsockenc("/nonexistent-hxfr", "/nonexistent-hxfr", both, line, sizeof(line)));
    if (strncmp(line, "GstHxfrVsockEnc ", 16) != 0) {
        FAIL("both registered, ours last: got %s", line);
    }
}

/* No host: start fails with a clear error naming the address, no hang. */
TEST_T(host_absent_fails_start, 30)
{
    init_gst();
    struct run *r = g_new0(struct run, 1);
    run_desc("videotestsrc num-buffers=5 ! video/x-raw,width=64,height=48 ! "
             "vsockenc address=unix:/nonexistent-hxfr/host.sock ! fakesink",
             r, MAX_S, 10);
    CHECK(r->error);
    CHECK(strstr(r->err, "Cannot reach the hxfr host at unix:/nonexistent-hxfr/host.sock") != NULL);
    g_free(r);
    /* vsock has no route on this machine (no loopback): same, promptly. */
    r = g_new0(struct run, 1);
    run_desc("videotestsrc num-buffers=5 ! video/x-raw,width=64,height=48 ! "
             "vsockenc cid=2 port=5999 ! fakesink",
             r, MAX_S, 10);
    CHECK(r->error);
    CHECK(strstr(r->err, "vsock:2:5999") != NULL);
    g_free(r);
}

/* The host answers a frame with ERROR: an element error with its code and
 * message. */
TEST_T(host_error_is_element_error, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--fail-frame", "5", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=30 ! video/x-raw,width=64,height=48 ! "
             "vsockenc address=%s ! appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    CHECK(r->error);
    CHECK(strstr(r->err, "fake encoder failure at frame 5") != NULL);
    CHECK(strstr(r->err, "-5") != NULL);
    CHECK(strstr(r->err, "ENCODE_FAILED") != NULL);
    CHECK_EQ(r->n, 5); /* frames before the failing one were delivered */
    g_free(r);
    host_stop(&h);
}

/* A response without units (the host skipped a frame) drops that frame
 * only. */
TEST_T(host_empty_response_drops_frame, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--empty-frame", "3", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=10 ! video/x-raw,width=64,height=48,framerate=30/1 ! "
             "vsockenc address=%s ! appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK(r->eos);
    CHECK_EQ(r->n, 9);
    CHECK_EQ(r->pts[3], gst_util_uint64_scale(4, GST_SECOND, 30));
    g_free(r);
    host_stop(&h);
}

/* A v1 host refuses HELLO: the element still works. */
TEST_T(v1_host_without_hello, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--hello-error", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=10 ! video/x-raw,width=64,height=48 ! "
             "vsockenc address=%s ! appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    CHECK(!r->error);
    CHECK_EQ(r->n, 10);
    g_free(r);
    host_stop(&h);
}

/* The host goes away mid-stream: an element error without reconnect. */
TEST_T(host_killed_is_error, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--exit-after", "10", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=200 ! video/x-raw,width=64,height=48 ! "
             "vsockenc address=%s ! appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    CHECK(r->error);
    if (!strstr(r->err, "connection") && !strstr(r->err, "Cannot send")) {
        FAIL("unexpected error text: %s", r->err);
    }
    /* Exactly the 10 answers the host sent before it exited: answers
     * still unread when a write fails are delivered first. */
    CHECK_EQ(r->n, 10);
    g_free(r);
    host_stop(&h);
}

/* With reconnect=true the stream survives a dropped connection and
 * resumes at an IDR. */
TEST_T(host_dropped_reconnects, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--drop-after", "10", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "videotestsrc num-buffers=40 ! video/x-raw,width=64,height=48,framerate=30/1 ! "
             "vsockenc address=%s reconnect=true keyframe-interval=1000 ! "
             "appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK(r->eos);
    /* At most max-in-flight (4) frames are lost with the connection. */
    if (r->n < 36 || r->n > 40) {
        FAIL("%d frames came out, want 36..40", r->n);
    }
    /* Frames after a gap start at an IDR, and exactly one IDR follows the
     * first (keyframe-interval is long): the one after the reconnect,
     * whether or not frames were in flight when the host went away. */
    int gaps = 0, keys = 0;
    GstClockTime frame = gst_util_uint64_scale(1, GST_SECOND, 30);
    for (int i = 1; i < r->n; i++) {
        bool gap = r->pts[i] - r->pts[i - 1] > frame + 1;
        gaps += gap;
        keys += !r->delta[i];
        CHECK_EQ(r->idr[i], !r->delta[i]);
        if (gap) {
            CHECK(r->idr[i]);
        }
    }
    CHECK(gaps <= 1);
    CHECK_EQ(keys, 1);
    char log[4096];
    read_log(&h, log, sizeof(log));
    /* The configuration was sent again on the new connection. */
    const char *first = strstr(log, "config 64 48");
    CHECK(first != NULL && strstr(first + 1, "config 64 48") != NULL);
    g_free(r);
    host_stop(&h);
}

/* ---- hxfrsrc --------------------------------------------------------- */

TEST_T(hxfrsrc_streams_scanout, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--push", "160", "120", "30", "--scanouts", "2", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "hxfrsrc address=%s scanout=1 num-buffers=20 ! appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK_EQ(r->n, 20);
    CHECK(!r->delta[0] && r->idr[0] && r->sps[0]);
    CHECK(r->discont[0]);
    GstClockTime period = 1000000000 / 30;
    for (int i = 1; i < r->n; i++) {
        CHECK_EQ(r->delta[i], !r->idr[i]);
        /* The host's spacing is kept exactly. */
        CHECK_EQ(r->pts[i] - r->pts[i - 1], period);
    }
    g_free(r);

    /* Decoded: 160x120 pictures. */
    snprintf(desc, sizeof(desc),
             "hxfrsrc address=%s num-buffers=15 ! h264parse ! avdec_h264 ! "
             "appsink name=sink sync=false",
             h.address);
    r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK_EQ(r->n, 15);
    CHECK_EQ(r->width[0], 160);
    CHECK_EQ(r->height[14], 120);
    g_free(r);
    host_stop(&h);
}

TEST_T(hxfrsrc_unknown_scanout_and_no_host, 30)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--scanouts", "1", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc), "hxfrsrc address=%s scanout=7 ! fakesink", h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 10);
    CHECK(r->error);
    CHECK(strstr(r->err, "refused scanout 7") != NULL);
    g_free(r);
    host_stop(&h);

    r = g_new0(struct run, 1);
    run_desc("hxfrsrc address=unix:/nonexistent-hxfr/s ! fakesink", r, MAX_S, 10);
    CHECK(r->error);
    CHECK(strstr(r->err, "Cannot reach the hxfr host at unix:/nonexistent-hxfr/s") != NULL);
    g_free(r);
}

TEST_T(hxfrsrc_reconnects, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--push", "96", "64", "30", "--drop-after", "12", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc),
             "hxfrsrc address=%s reconnect=true num-buffers=30 ! appsink name=sink sync=false",
             h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK_EQ(r->n, 30);
    /* The second connection starts a new stream at an IDR. */
    CHECK(r->idr[12] && !r->delta[12]);
    for (int i = 1; i < r->n; i++) {
        CHECK(r->pts[i] > r->pts[i - 1]);
    }
    g_free(r);

    /* Without reconnect the same loss is an element error. */
    host_stop(&h);
    fakehost_start(&h, "--push", "96", "64", "30", "--drop-after", "5", NULL);
    snprintf(desc, sizeof(desc), "hxfrsrc address=%s ! appsink name=sink sync=false", h.address);
    r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    CHECK(r->error);
    CHECK(strstr(r->err, "Lost the connection") != NULL);
    CHECK_EQ(r->n, 5);
    g_free(r);
    host_stop(&h);
}

/* Stopping while create() waits for a slow host returns promptly (the
 * harness timeout catches a hang), and a killed host ends in an error. */
TEST_T(hxfrsrc_unlock_and_host_killed, 30)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--push", "64", "64", "1", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc), "hxfrsrc address=%s ! appsink name=sink sync=false", h.address);
    GstElement *pipe = launch(desc);
    CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    struct run *r = g_new0(struct run, 1);
    collect(pipe, r, 1, 10);
    CHECK_EQ(r->n, 1);
    /* create() is now blocked waiting for the next unit, a second away. */
    CHECK_EQ(gst_element_set_state(pipe, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    memset(r, 0, sizeof(*r));
    collect(pipe, r, 1, 10);
    CHECK_EQ(r->n, 1);
    host_kill(&h);
    collect(pipe, r, 5, 10);
    CHECK(r->error);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
    g_free(r);
    host_stop(&h);
}

/* ---- hxfrsrc against the real hxfrd ---------------------------------- */

/* A scanout nobody enabled is refused by the real daemon, clearly. */
TEST_T(hxfrsrc_hxfrd_unknown_scanout, 30)
{
    init_gst();
    struct host h = {0};
    HXFRD_START_OR_SKIP(&h);
    char desc[1024];
    snprintf(desc, sizeof(desc), "hxfrsrc address=%s scanout=5 ! fakesink", h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 10);
    CHECK(r->error);
    if (!strstr(r->err, "refused scanout 5")) {
        FAIL("unexpected error: %s", r->err);
    }
    g_free(r);
    host_stop(&h);
}

/* With scanouts in the daemon: a publisher (tests/view/view_publish.c)
 * enables scanout 0 and publishes; hxfrsrc receives and decodes it. */
TEST_T(hxfrsrc_hxfrd_streams, 60)
{
    init_gst();
    const char *publish = getenv("HXFR_PUBLISH");
    struct host h = {0};
    if (!publish || !*publish) {
        SKIP("hxfrd has no scanouts in this build (no publisher)");
    }
    HXFRD_START_OR_SKIP(&h);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t pub = fork();
    if (pub == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(publish, publish, "--connect", h.address, "--scanout", "0", "--size", "160x120",
              "--fps", "30", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char line[128];
    CHECK(read_line(pfd[0], line, sizeof(line)) >= 0);
    CHECK(strstr(line, "publishing") != NULL);
    close(pfd[0]);

    char desc[1024];
    snprintf(desc, sizeof(desc),
             "hxfrsrc address=%s scanout=0 num-buffers=20 ! tee name=t ! queue ! "
             "appsink name=sink sync=false t. ! queue ! h264parse ! avdec_h264 ! "
             "appsink name=dec sync=false",
             h.address);
    GstElement *pipe = launch(desc);
    CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    struct run *r = g_new0(struct run, 1);
    collect(pipe, r, 20, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK_EQ(r->n, 20);
    CHECK(r->idr[0] && !r->delta[0]);
    for (int i = 1; i < r->n; i++) {
        CHECK_EQ(r->delta[i], !r->idr[i]);
        CHECK(r->pts[i] > r->pts[i - 1]);
    }
    GstElement *dec = gst_bin_get_by_name(GST_BIN(pipe), "dec");
    int decoded = 0;
    GstSample *smp;
    while (decoded < 20 &&
           (smp = gst_app_sink_try_pull_sample(GST_APP_SINK(dec), 5 * GST_SECOND))) {
        GstStructure *st = gst_caps_get_structure(gst_sample_get_caps(smp), 0);
        int w = 0;
        gst_structure_get_int(st, "width", &w);
        CHECK_EQ(w, 160);
        gst_sample_unref(smp);
        decoded++;
    }
    CHECK_EQ(decoded, 20);
    gst_object_unref(dec);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
    g_free(r);

    /* The publisher disables the scanout on its way out (view-publish on
     * SIGTERM): the source ends its stream with EOS. */
    snprintf(desc, sizeof(desc), "hxfrsrc address=%s scanout=0 ! appsink name=sink sync=false",
             h.address);
    pipe = launch(desc);
    CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    r = g_new0(struct run, 1);
    collect(pipe, r, 3, 30);
    CHECK_EQ(r->n, 3);
    kill(pub, SIGTERM);
    waitpid(pub, NULL, 0);
    collect(pipe, r, MAX_S, 30);
    CHECK(!r->error);
    CHECK(r->eos);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
    g_free(r);
    host_stop(&h);
}

/* The real hxfrd killed mid-stream: with reconnect=true the element
 * reconnects to the restarted daemon and resumes at an IDR; without it the
 * loss is an element error. */
TEST_T(hxfrd_killed_reconnect_and_error, 90)
{
    init_gst();
    struct host h = {.log_info = true};
    HXFRD_START_OR_SKIP(&h);
    /* The third round reconnects with use-shm: the ring is attached again
     * on the new connection. */
    for (int round = 0; round < 3; round++) {
        bool reconnect = round != 1;
        if (h.pid == 0) {
            hxfrd_spawn(&h);
        }
        char desc[1024];
        snprintf(desc, sizeof(desc),
                 "appsrc name=src format=time ! vsockenc address=%s reconnect=%s "
                 "keyframe-interval=1000 %s ! appsink name=sink sync=false",
                 h.address, reconnect ? "true" : "false", round == 2 ? "use-shm=true" : "");
        GstElement *pipe = launch(desc);
        GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "src");
        GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
        set_size(src, 64, 48);
        CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
        struct run *r = g_new0(struct run, 1);
        for (int i = 0; i < 5; i++) {
            push_frame(src, 64, 48, i);
            pull_one(pipe, sink, r, i);
        }
        host_kill(&h);
        if (reconnect) {
            /* The restarted daemon logs into a fresh file. */
            unlink(h.log);
            hxfrd_spawn(&h);
            for (int i = 5; i < 10; i++) {
                push_frame(src, 64, 48, i);
                pull_one(pipe, sink, r, i);
            }
            CHECK_EQ(r->n, 10);
            for (int i = 0; i < 10; i++) {
                bool key = i == 0 || i == 5;
                if (r->delta[i] == key || r->idr[i] != key) {
                    FAIL("frame %d: delta %d idr %d, want keyframe %d", i, r->delta[i], r->idr[i],
                         key);
                }
                CHECK_EQ(r->pts[i], gst_util_uint64_scale(i, GST_SECOND, 30));
            }
        } else {
            push_until_error(pipe, src, r);
            CHECK_EQ(r->n, 5);
        }
        gst_element_set_state(pipe, GST_STATE_NULL);
        if (round == 2) {
            /* The frames after the reconnect went through the ring again. */
            unsigned long long requests, copied;
            CHECK_EQ(hxfrd_copied(&h, 1, &requests, &copied), 1);
            CHECK(requests >= 5);
            CHECK_EQ(copied, 0);
        }
        gst_object_unref(sink);
        gst_object_unref(src);
        gst_object_unref(pipe);
        g_free(r);
    }
    host_stop(&h);
}

/* The publisher ends the scanout (ERROR NO_SCANOUT): EOS without
 * reconnect; with reconnect hxfrsrc subscribes again and resumes at an
 * IDR. */
TEST_T(hxfrsrc_scanout_ends, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--push", "96", "64", "30", "--end-after", "8", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc), "hxfrsrc address=%s ! appsink name=sink sync=false", h.address);
    struct run *r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    CHECK(!r->error);
    CHECK(r->eos);
    CHECK_EQ(r->n, 8);
    g_free(r);
    host_stop(&h);

    fakehost_start(&h, "--push", "96", "64", "30", "--end-after", "8", NULL);
    snprintf(desc, sizeof(desc),
             "hxfrsrc address=%s reconnect=true num-buffers=20 ! appsink name=sink sync=false",
             h.address);
    r = g_new0(struct run, 1);
    run_desc(desc, r, MAX_S, 30);
    if (r->error) {
        FAIL("pipeline error: %s (%s)", r->err, r->dbg);
    }
    CHECK_EQ(r->n, 20);
    CHECK(r->idr[8] && !r->delta[8]);
    for (int i = 1; i < r->n; i++) {
        CHECK(r->pts[i] > r->pts[i - 1]);
    }
    g_free(r);
    host_stop(&h);
}

/* A downstream force-key-unit event becomes KEYFRAME_REQ for the scanout,
 * and the next unit is an IDR. */
TEST_T(hxfrsrc_force_key_unit, 60)
{
    init_gst();
    struct host h = {0};
    fakehost_start(&h, "--push", "96", "64", "30", NULL);
    char desc[1024];
    snprintf(desc, sizeof(desc), "hxfrsrc address=%s ! appsink name=sink sync=false", h.address);
    GstElement *pipe = launch(desc);
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    CHECK(gst_element_set_state(pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    struct run *r = g_new0(struct run, 1);
    collect(pipe, r, 5, 10);
    CHECK_EQ(r->n, 5);
    CHECK(gst_element_send_event(
        sink, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 1)));
    /* The gop is 30 frames: an IDR within the next 10 is the requested one. */
    collect(pipe, r, 15, 10);
    CHECK_EQ(r->n, 15);
    bool key = false;
    for (int i = 5; i < 15; i++) {
        key = key || r->idr[i];
    }
    CHECK(key);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipe);
    char log[4096];
    read_log(&h, log, sizeof(log));
    CHECK(strstr(log, "keyreq") != NULL);
    g_free(r);
    host_stop(&h);
}
