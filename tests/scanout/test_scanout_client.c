/* Scanouts through libhxfr-client and hxfr-send against the real hxfrd:
 * hxfr_client_enable_scanout / _disable_scanout on the publisher side,
 * hxfr_client_subscribe + on_stream on the subscriber side, and
 * `hxfr-send --scanout N` publishing to a subscriber. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hxfr/client.h>

#include "avcheck.h"
#include "daemon.h"
#include "harness.h"
#include "pattern.h"

#define W 320
#define H 240

struct viewer {
    struct hxfr_avcheck *dec;
    uint64_t units;
    uint64_t first_keyframe_ok; /* 1 if the first unit was an IDR with SPS/PPS */
    int decode_errors;
    int32_t end_code;
    char end_message[HXFR_ERROR_MESSAGE_LEN];
    int64_t last_pts;
};

static void on_stream(void *user, uint32_t scanout_id, const struct hxfr_client_result *res)
{
    struct viewer *v = user;
    (void)scanout_id;
    if (v->units == 0) {
        v->first_keyframe_ok =
            res->keyframe && hxfr_avcheck_au_idr_with_params(res->data, res->size);
    }
    v->units++;
    v->last_pts = res->pts;
    if (hxfr_avcheck_decode_au(v->dec, res->data, res->size) != 1) {
        v->decode_errors++;
    }
}

static void on_event(void *user, const struct hxfr_client_event *ev)
{
    struct viewer *v = user;
    if (ev->type == HXFR_CLIENT_EVENT_REMOTE_ERROR) {
        v->end_code = ev->remote_code;
        snprintf(v->end_message, sizeof(v->end_message), "%s", ev->remote_message);
    }
}

static struct hxfr_client *viewer_new(struct viewer *v, const char *uri, uint32_t scanout)
{
    memset(v, 0, sizeof(*v));
    v->dec = hxfr_avcheck_new(0);
    CHECK(v->dec != NULL);
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.on_stream = on_stream;
    o.on_event = on_event;
    o.user_data = v;
    o.session_id = 999; /* not the scanout: nothing of its own in flight */
    struct hxfr_client *c = hxfr_client_new(&o);
    CHECK(c != NULL);
    CHECK_EQ(hxfr_client_connect(c, uri), 0);
    CHECK(hxfr_client_server_caps(c) & HXFR_CAP_SCANOUT);
    CHECK_EQ(hxfr_client_subscribe(c, scanout, -1), 0);
    return c;
}

static void pump_until(struct hxfr_client *c, struct viewer *v, bool (*done)(struct viewer *),
                       int max_ms)
{
    for (int waited = 0; !done(v) && waited < max_ms; waited += 50) {
        CHECK(hxfr_client_dispatch(c, 50) >= 0);
    }
    CHECK(done(v));
}

static uint64_t want_units;
static bool enough_units(struct viewer *v)
{
    return v->units >= want_units;
}
static bool ended(struct viewer *v)
{
    return v->end_code != 0;
}

static void on_frame_count(void *user, const struct hxfr_client_result *res)
{
    uint64_t *n = user;
    CHECK_EQ(res->status, 0);
    (*n)++;
}

/* Waits up to ms for a log line containing needle. */
static bool wait_log(struct hxfr_test_daemon *d, const char *needle, int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        if (hxfr_test_daemon_log_count(d, needle) > 0) {
            return true;
        }
        usleep(50 * 1000);
    }
    return false;
}

TEST(client_library_publish_and_subscribe)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--stats-interval", "1", NULL};
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, args), 0);
    uint64_t answered = 0;
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.session_id = 5;
    o.on_frame = on_frame_count;
    o.user_data = &answered;
    struct hxfr_client *pub = hxfr_client_new(&o);
    CHECK(pub != NULL);
    CHECK_EQ(hxfr_client_connect(pub, d.unix_uri), 0);
    struct hxfr_scanout_resp sr;
    CHECK_EQ(hxfr_client_enable_scanout(pub, 5, W, H, 30, -1, &sr), 0);
    CHECK_EQ(sr.success, 1);
    CHECK(strcmp(sr.connector, "Virtual-6") == 0); /* Virtual-<N+1> */
    CHECK_EQ(hxfr_client_enable_scanout(pub, 70000, W, H, 30, -1, NULL), -EINVAL);

    struct viewer v;
    struct hxfr_client *sub = viewer_new(&v, d.unix_uri, 5);
    /* A second publisher cannot take it (disabling it could: below). */
    struct hxfr_client *other = hxfr_client_new(NULL);
    CHECK_EQ(hxfr_client_connect(other, d.unix_uri), 0);
    CHECK_EQ(hxfr_client_enable_scanout(other, 5, W, H, 30, -1, NULL), -HXFR_EREMOTE);

    uint8_t *px = malloc((size_t)W * H * 4);
    CHECK(px != NULL);
    for (uint64_t i = 0; i < 20; i++) {
        uint8_t *planes[3] = {px, NULL, NULL};
        uint32_t strides[3] = {W * 4, 0, 0};
        CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, W, H, i, planes,
                                     strides),
                 0);
        struct hxfr_client_frame f = {.format = HXFR_FORMAT_ARGB8888,
                                      .width = W,
                                      .height = H,
                                      .planes = {px},
                                      .strides = {W * 4},
                                      .pts = (int64_t)i * 1000};
        CHECK_EQ(hxfr_client_submit(pub, &f, 10000), 0);
    }
    CHECK_EQ(hxfr_client_flush(pub, 20000), 0);
    CHECK_EQ(answered, 20);
    want_units = 20;
    pump_until(sub, &v, enough_units, 20000);
    CHECK_EQ(v.first_keyframe_ok, 1);
    CHECK_EQ(v.decode_errors, 0);
    /* Inline frames are kept by swapping buffers: no copy. */
    char needle[160];
    snprintf(needle, sizeof(needle), ", 0 keep-copy bytes, %u bytes kept", W * H * 4);
    CHECK(wait_log(&d, needle, 5000));

    /* Disabling, by any connection, ends the stream: the subscriber is
     * told. */
    CHECK_EQ(hxfr_client_disable_scanout(other, 5, -1), 0);
    CHECK_EQ(hxfr_client_disable_scanout(pub, 5, -1), -HXFR_EREMOTE);
    pump_until(sub, &v, ended, 20000);
    CHECK_EQ(v.end_code, HXFR_STATUS_NO_SCANOUT);
    CHECK(strstr(v.end_message, "disabled") != NULL);

    free(px);
    hxfr_client_destroy(other);
    hxfr_client_destroy(sub);
    hxfr_client_destroy(pub);
    hxfr_avcheck_destroy(v.dec);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(hxfr_send_publishes_into_a_scanout)
{
    const char *send = getenv("HXFR_SEND");
    CHECK(send != NULL);
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    char out[400];
    snprintf(out, sizeof(out), "%s/out.h264", d.dir);

    /* The scanout does not exist before hxfr-send enables it, so the
     * subscriber retries until it does. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execl(send, send, "--connect", d.unix_uri, "--scanout", "3", "--size", "320x240", "--fps",
              "30", "--frames", "60", "--output", out, (char *)NULL);
        _exit(127);
    }
    struct viewer v;
    memset(&v, 0, sizeof(v));
    v.dec = hxfr_avcheck_new(0);
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.on_stream = on_stream;
    o.on_event = on_event;
    o.user_data = &v;
    o.session_id = 999;
    struct hxfr_client *sub = hxfr_client_new(&o);
    CHECK_EQ(hxfr_client_connect(sub, d.unix_uri), 0);
    /* For as long as hxfr-send runs, however slowly it starts on a loaded
     * machine: a fixed number of tries gave up on a publisher that was
     * merely late. */
    int r = -1;
    for (int i = 0; i < 6000 && r != 0; i++) {
        r = hxfr_client_subscribe(sub, 3, -1);
        if (r != 0) {
            siginfo_t si;
            memset(&si, 0, sizeof(si));
            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                si.si_pid == pid) {
                break;
            }
            usleep(10 * 1000);
        }
    }
    CHECK_EQ(r, 0);
    /* hxfr-send disables the scanout at the end: the end message. */
    pump_until(sub, &v, ended, 30000);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(v.end_code, HXFR_STATUS_NO_SCANOUT);
    CHECK(v.units >= 10);
    CHECK_EQ(v.first_keyframe_ok, 1);
    CHECK_EQ(v.decode_errors, 0);
    CHECK(hxfr_test_daemon_log_count(&d, "scanout 3 enabled as Virtual-4") == 1);
    hxfr_client_destroy(sub);
    hxfr_avcheck_destroy(v.dec);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(hxfr_send_scanout_refused)
{
    const char *send = getenv("HXFR_SEND");
    CHECK(send != NULL);
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    /* Someone else owns scanout 0. */
    struct hxfr_client *owner = hxfr_client_new(NULL);
    CHECK_EQ(hxfr_client_connect(owner, d.unix_uri), 0);
    CHECK_EQ(hxfr_client_enable_scanout(owner, 0, W, H, 0, -1, NULL), 0);
    char out[400];
    snprintf(out, sizeof(out), "%s/out.h264", d.dir);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execl(send, send, "--connect", d.unix_uri, "--scanout", "0", "--size", "320x240",
              "--frames", "5", "--output", out, (char *)NULL);
        _exit(127);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    /* Usage error: --session and --scanout disagree. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execl(send, send, "--connect", d.unix_uri, "--scanout", "1", "--session", "2",
              (char *)NULL);
        _exit(127);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    hxfr_client_destroy(owner);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

/* Frames published from shared memory: the host keeps a copy of the last
 * picture before the slot goes back to the guest, so a subscriber that
 * joins later gets that picture (not whatever the guest wrote into the
 * slot since) as its IDR, and keepalives keep showing it. */
TEST(shm_published_frames_are_kept_as_copies)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--keepalive-ms", "100", "--stats-interval", "1", NULL};
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, args), 0);
    uint64_t answered = 0;
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.session_id = 6;
    o.window = 2;
    o.on_frame = on_frame_count;
    o.user_data = &answered;
    struct hxfr_client *pub = hxfr_client_new(&o);
    CHECK(pub != NULL);
    CHECK_EQ(hxfr_client_connect(pub, d.unix_uri), 0);
    CHECK_EQ(hxfr_client_shm_create(pub, 2, (uint64_t)W * H * 4), 0);
    CHECK_EQ(hxfr_client_enable_scanout(pub, 6, W, H, 60, -1, NULL), 0);
    for (uint64_t i = 0; i < 3; i++) {
        struct hxfr_client_slot slot;
        CHECK_EQ(hxfr_client_shm_acquire(pub, 10000, &slot), 0);
        uint8_t *planes[3] = {slot.data, NULL, NULL};
        uint32_t strides[3] = {W * 4, 0, 0};
        CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, W, H, i, planes,
                                     strides),
                 0);
        struct hxfr_client_frame f = {.format = HXFR_FORMAT_ARGB8888,
                                      .width = W,
                                      .height = H,
                                      .strides = {W * 4},
                                      .pts = (int64_t)i * 1000};
        CHECK_EQ(hxfr_client_shm_submit(pub, slot.index, &f, 10000), 0);
    }
    CHECK_EQ(hxfr_client_flush(pub, 20000), 0);
    CHECK_EQ(answered, 3);
    /* The guest reuses every slot for something else (not submitted). */
    struct hxfr_client_slot s0, s1;
    CHECK_EQ(hxfr_client_shm_acquire(pub, 10000, &s0), 0);
    CHECK_EQ(hxfr_client_shm_acquire(pub, 10000, &s1), 0);
    memset(s0.data, 0xFF, s0.size);
    memset(s1.data, 0xFF, s1.size);

    struct viewer v;
    memset(&v, 0, sizeof(v));
    v.dec = hxfr_avcheck_new(2);
    CHECK(v.dec != NULL);
    struct hxfr_client_options vo;
    hxfr_client_options_init(&vo);
    vo.on_stream = on_stream;
    vo.on_event = on_event;
    vo.user_data = &v;
    vo.session_id = 999;
    struct hxfr_client *sub = hxfr_client_new(&vo);
    CHECK_EQ(hxfr_client_connect(sub, d.unix_uri), 0);
    CHECK_EQ(hxfr_client_subscribe(sub, 6, -1), 0);
    want_units = 4; /* the IDR, then keepalives every 100 ms */
    pump_until(sub, &v, enough_units, 20000);
    CHECK_EQ(v.first_keyframe_ok, 1);
    CHECK_EQ(v.decode_errors, 0);
    double psnr = 0;
    CHECK_EQ(hxfr_avcheck_psnr_pattern(hxfr_avcheck_last(v.dec), HXFR_PATTERN_DESKTOP,
                                       HXFR_FORMAT_ARGB8888, 2, NULL, &psnr),
             0);
    fprintf(stderr, "keepalive of a shm-published frame: PSNR %.1f dB\n", psnr);
    CHECK(psnr > 30.0);
    /* Honest accounting: each of the 3 shm frames was copied once into the
     * scanout (W x H x 4 bytes), and one picture is held. */
    char needle[200];
    snprintf(needle, sizeof(needle), "%u keep-copy bytes, %u bytes kept", 3u * W * H * 4,
             W * H * 4);
    CHECK(wait_log(&d, needle, 5000));

    hxfr_client_shm_cancel(pub, s0.index);
    hxfr_client_shm_cancel(pub, s1.index);
    hxfr_client_destroy(sub);
    hxfr_client_destroy(pub);
    hxfr_avcheck_destroy(v.dec);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}
