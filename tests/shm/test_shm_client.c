/* libhxfr-client's shared-memory API against the real hxfrd: slot
 * ownership (acquire, submit, release by SLOT_RELEASE or by the result,
 * cancel), argument checks, a ring attached again after the host
 * restarts, a named region, and results that decode to the pattern. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hxfr/client.h>
#include <hxfr/shm.h>

#include "avcheck.h"
#include "daemon.h"
#include "harness.h"
#include "pattern.h"

#define W 320
#define H 240

struct results {
    unsigned ok;
    unsigned failed;
    unsigned reconnected;
    struct hxfr_avcheck *av;
};

static void on_frame(void *user, const struct hxfr_client_result *res)
{
    struct results *r = user;
    if (res->status == 0) {
        r->ok++;
        if (r->av) {
            CHECK_EQ(hxfr_avcheck_decode_au(r->av, res->data, res->size), 1);
        }
    } else {
        r->failed++;
    }
}

static void on_event(void *user, const struct hxfr_client_event *ev)
{
    struct results *r = user;
    if (ev->type == HXFR_CLIENT_EVENT_RECONNECTED) {
        r->reconnected++;
    }
}

static struct hxfr_client *client_new(struct results *res, unsigned window, bool reconnect)
{
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.window = window;
    o.on_frame = on_frame;
    o.on_event = on_event;
    o.user_data = res;
    o.reconnect = reconnect;
    o.reconnect_attempts = 50;
    struct hxfr_client *c = hxfr_client_new(&o);
    CHECK(c != NULL);
    return c;
}

static struct hxfr_client_frame frame(uint64_t i)
{
    struct hxfr_client_frame f = {
        .format = HXFR_FORMAT_ARGB8888,
        .width = W,
        .height = H,
        .pts = (int64_t)i * 1000,
    };
    return f;
}

static void render(const struct hxfr_client_slot *s, uint64_t i)
{
    uint8_t *planes[3] = {s->data, NULL, NULL};
    uint32_t strides[3] = {W * 4, 0, 0};
    CHECK_EQ(
        hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, W, H, i, planes, strides),
        0);
}

TEST_T(acquire_submit_release_cycle, 120)
{
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    struct results res = {.av = hxfr_avcheck_new(2)};
    struct hxfr_client *c = client_new(&res, 2, false);
    struct hxfr_client_slot s;

    /* Before a ring: nothing to hand out. */
    CHECK_EQ(hxfr_client_shm_acquire(c, 0, &s), -ENXIO);
    CHECK(!hxfr_client_shm_attached(c));
    CHECK_EQ(hxfr_client_connect(c, d.unix_uri), 0);
    CHECK(hxfr_client_server_caps(c) & HXFR_CAP_SLOT_RELEASE);
    CHECK(hxfr_client_server_caps(c) & HXFR_CAP_SHM_FD);
    CHECK_EQ(hxfr_client_shm_create(c, 0, W * H * 4), -EINVAL);
    CHECK_EQ(hxfr_client_shm_create(c, 65, W * H * 4), -EINVAL);
    CHECK_EQ(hxfr_client_shm_create(c, 2, W * H * 4), 0);
    CHECK(hxfr_client_shm_attached(c));

    /* Two slots: both can be acquired, a third cannot (and waiting would
     * not help: nothing is in flight). */
    struct hxfr_client_slot a, b;
    CHECK_EQ(hxfr_client_shm_acquire(c, 0, &a), 0);
    CHECK_EQ(hxfr_client_shm_acquire(c, 0, &b), 0);
    CHECK(a.index != b.index);
    CHECK(a.size >= W * H * 4);
    CHECK_EQ(hxfr_client_shm_acquire(c, 1000, &s), -EAGAIN);
    /* Submitting a slot that is not acquired, or a frame that does not
     * fit, is refused locally; the slot stays acquired. */
    struct hxfr_client_frame f = frame(0);
    CHECK_EQ(hxfr_client_shm_submit(c, 7, &f, 0), -EINVAL);
    struct hxfr_client_frame big = frame(0);
    big.height = H * 4;
    CHECK_EQ(hxfr_client_shm_submit(c, a.index, &big, 0), -EMSGSIZE);
    CHECK_EQ(hxfr_client_shm_cancel(c, b.index), 0);
    CHECK_EQ(hxfr_client_shm_cancel(c, b.index), -EINVAL);

    /* 20 frames through the ring, waiting for free slots as needed. */
    render(&a, 0);
    CHECK_EQ(hxfr_client_shm_submit(c, a.index, &f, 1000), 0);
    CHECK_EQ(hxfr_client_shm_submit(c, a.index, &f, 1000), -EINVAL); /* host's now */
    for (uint64_t i = 1; i < 20; i++) {
        CHECK_EQ(hxfr_client_shm_acquire(c, 10000, &s), 0);
        render(&s, i);
        f = frame(i);
        CHECK_EQ(hxfr_client_shm_submit(c, s.index, &f, 10000), 0);
    }
    CHECK_EQ(hxfr_client_flush(c, 10000), 0);
    CHECK_EQ(res.ok, 20);
    CHECK_EQ(res.failed, 0);
    /* Every slot is free again. */
    CHECK_EQ(hxfr_client_shm_acquire(c, 0, &a), 0);
    CHECK_EQ(hxfr_client_shm_acquire(c, 0, &b), 0);
    CHECK_EQ(hxfr_avcheck_frame_count(res.av), 20);
    double y, all;
    CHECK_EQ(hxfr_avcheck_psnr_pattern(hxfr_avcheck_last(res.av), HXFR_PATTERN_DESKTOP,
                                       HXFR_FORMAT_ARGB8888, 19, &y, &all),
             0);
    CHECK(all >= 35.0);
    hxfr_avcheck_destroy(res.av);
    hxfr_client_destroy(c);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "attached memfd ring"), 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

/* A new connection (hxfr_client_reconnect, as after a host restart): the
 * client attaches its ring again and carries on with the same slots. */
TEST_T(ring_attached_again_after_reconnect, 120)
{
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    struct results res = {0};
    struct hxfr_client *c = client_new(&res, 2, true);
    CHECK_EQ(hxfr_client_connect(c, d.unix_uri), 0);
    CHECK_EQ(hxfr_client_shm_create(c, 2, W * H * 4), 0);
    struct hxfr_client_slot s;
    struct hxfr_client_frame f = frame(0);
    CHECK_EQ(hxfr_client_shm_acquire(c, 0, &s), 0);
    render(&s, 0);
    CHECK_EQ(hxfr_client_shm_submit(c, s.index, &f, 10000), 0);
    CHECK_EQ(hxfr_client_reconnect(c), 0);
    CHECK_EQ(res.reconnected, 1);
    /* The frame in flight failed with the old connection; its slot is
     * free again. */
    CHECK_EQ(res.ok + res.failed, 1);
    CHECK(hxfr_client_shm_attached(c));
    for (uint64_t i = 1; i < 5; i++) {
        CHECK_EQ(hxfr_client_shm_acquire(c, 10000, &s), 0);
        render(&s, i);
        f = frame(i);
        CHECK_EQ(hxfr_client_shm_submit(c, s.index, &f, 10000), 0);
    }
    CHECK_EQ(hxfr_client_flush(c, 10000), 0);
    CHECK_EQ(res.ok + res.failed, 5);
    CHECK(res.ok >= 4);
    hxfr_client_destroy(c);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "attached memfd ring"), 2);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST_T(named_region_and_refusals, 120)
{
    char dir[] = "/tmp/hxfr-shm-client-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], arg[160];
    snprintf(path, sizeof(path), "%s/region", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, 2 << 20), 0);
    close(fd);
    snprintf(arg, sizeof(arg), "guest0=%s", path);
    const char *args[] = {"--shm", arg, NULL};
    struct hxfr_test_daemon d;
    CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_TCP, args), 0);
    struct results res = {0};
    struct hxfr_client *c = client_new(&res, 4, false);
    CHECK_EQ(hxfr_client_connect(c, d.tcp_uri), 0);
    CHECK(hxfr_client_server_caps(c) & HXFR_CAP_SHM_REGION);
    CHECK(!(hxfr_client_server_caps(c) & HXFR_CAP_SHM_FD));
    /* No memfd over TCP. */
    CHECK_EQ(hxfr_client_shm_create(c, 2, W * H * 4), -EOPNOTSUPP);
    /* Bad arguments. */
    CHECK_EQ(hxfr_client_shm_attach_region(c, "", path, 0, 2, W * H * 4), -EINVAL);
    CHECK_EQ(hxfr_client_shm_attach_region(c, "guest0", path, 32, 2, W * H * 4), -EINVAL);
    CHECK_EQ(hxfr_client_shm_attach_region(c, "guest0", path, 0, 64, W * H * 4), -ENOSPC);
    CHECK_EQ(hxfr_client_shm_attach_region(c, "guest0", "/nonexistent/region", 0, 2, W * H * 4),
             -ENOENT);
    /* A name the host does not know. */
    CHECK_EQ(hxfr_client_shm_attach_region(c, "guest1", path, 0, 2, W * H * 4), -HXFR_EREMOTE);
    const char *msg;
    CHECK_EQ(hxfr_client_last_remote_error(c, &msg), HXFR_STATUS_SHM);
    CHECK(!hxfr_client_shm_attached(c));
    /* The right one. */
    CHECK_EQ(hxfr_client_shm_attach_region(c, "guest0", path, 4096, 4, W * H * 4), 0);
    struct hxfr_client_slot s;
    for (uint64_t i = 0; i < 8; i++) {
        CHECK_EQ(hxfr_client_shm_acquire(c, 10000, &s), 0);
        render(&s, i);
        struct hxfr_client_frame f = frame(i);
        CHECK_EQ(hxfr_client_shm_submit(c, s.index, &f, 10000), 0);
    }
    CHECK_EQ(hxfr_client_flush(c, 10000), 0);
    CHECK_EQ(res.ok, 8);
    hxfr_client_destroy(c);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    hxfr_test_daemon_free(&d);
    unlink(path);
    rmdir(dir);
}
