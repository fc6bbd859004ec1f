/* The host API's shared-memory counters with libhxfr-host embedded: a
 * libhxfr-client ring through a UNIX socket, then hxfr_host_get_stats()
 * says how many frames came from slots (all of them), that no pixel byte
 * was copied, how many rings are attached and that no received fd is
 * left over. The server runs on its own thread (the loop thread), which
 * also takes the stats snapshots. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hxfr/client.h>
#include <hxfr/host.h>

#include "harness.h"
#include "pattern.h"

#define W 256
#define H 144

struct server {
    struct hxfr_host *host;
    pthread_t thread;
    pthread_mutex_t lock;
    struct hxfr_host_stats snap;
    unsigned snaps;
    int done;
};

static void *loop(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int r = hxfr_host_dispatch(s->host, 20);
        pthread_mutex_lock(&s->lock);
        hxfr_host_get_stats(s->host, &s->snap);
        s->snaps++;
        pthread_mutex_unlock(&s->lock);
        if (r != 0) {
            break;
        }
    }
    return NULL;
}

/* A snapshot taken after this call started. */
static struct hxfr_host_stats stats(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned start = s->snaps;
    pthread_mutex_unlock(&s->lock);
    struct hxfr_host_stats out;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool fresh = s->snaps >= start + 2;
        out = s->snap;
        pthread_mutex_unlock(&s->lock);
        if (fresh) {
            return out;
        }
        usleep(5000);
    }
}

static unsigned ok_frames;

static void on_frame(void *user, const struct hxfr_client_result *res)
{
    (void)user;
    ok_frames += res->status == 0;
}

TEST_T(host_stats_count_shm_frames_and_no_copies, 120)
{
    char dir[] = "/tmp/hxfr-shm-host-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char uri[128];
    snprintf(uri, sizeof(uri), "unix:%s/s.sock", dir);

    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    struct server srv = {0};
    pthread_mutex_init(&srv.lock, NULL);
    srv.host = hxfr_host_new(&cfg);
    CHECK(srv.host != NULL);
    CHECK(hxfr_host_listen(srv.host, uri, NULL, 0) >= 0);
    CHECK_EQ(pthread_create(&srv.thread, NULL, loop, &srv), 0);

    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.window = 3;
    o.on_frame = on_frame;
    struct hxfr_client *c = hxfr_client_new(&o);
    CHECK(c != NULL);
    CHECK_EQ(hxfr_client_connect(c, uri), 0);
    CHECK_EQ(hxfr_client_shm_create(c, 3, W * H * 4), 0);
    struct hxfr_host_stats st = stats(&srv);
    CHECK_EQ(st.shm_rings, 1);
    CHECK_EQ(st.fds_held, 0);
    for (uint64_t i = 0; i < 12; i++) {
        struct hxfr_client_slot s;
        CHECK_EQ(hxfr_client_shm_acquire(c, 10000, &s), 0);
        uint8_t *planes[3] = {s.data, NULL, NULL};
        uint32_t strides[3] = {W * 4, 0, 0};
        CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, W, H, i, planes,
                                     strides),
                 0);
        struct hxfr_client_frame f = {
            .format = HXFR_FORMAT_ARGB8888, .width = W, .height = H, .pts = (int64_t)i};
        CHECK_EQ(hxfr_client_shm_submit(c, s.index, &f, 10000), 0);
    }
    CHECK_EQ(hxfr_client_flush(c, 10000), 0);
    CHECK_EQ(ok_frames, 12);
    st = stats(&srv);
    CHECK_EQ(st.shm_frames, 12);
    CHECK_EQ(st.frames_encoded, 12);
    CHECK_EQ(st.pixel_bytes_copied, 0);
    CHECK_EQ(st.frame_buffer_bytes, 0);
    hxfr_client_destroy(c);
    /* The connection's ring goes with it. */
    for (int i = 0; i < 200 && (st.shm_rings != 0 || st.clients != 0); i++) {
        st = stats(&srv);
    }
    CHECK_EQ(st.shm_rings, 0);
    CHECK_EQ(st.fds_held, 0);

    hxfr_host_stop(srv.host);
    pthread_join(srv.thread, NULL);
    hxfr_host_destroy(srv.host);
    pthread_mutex_destroy(&srv.lock);
    rmdir(dir);
}
