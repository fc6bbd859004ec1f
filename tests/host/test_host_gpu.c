/* libhxfr-host with pixels from GPU memory, as hxfr-gpu embeds it: a
 * resolver (version 2) that answers with a resource's backing scattered
 * over "guest RAM" (pieces placed out of order in one arena), encoded in
 * place, and the failures a guest can cause. The loop runs on the test's
 * own thread (the VMM's loop thread): every wait pumps the server. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hxfr/host.h>

#include "avcheck.h"
#include "daemon.h"
#include "harness.h"
#include "hostutil.h"
#include "pattern.h"

#define RW 320
#define RH 180

/* A "guest": one resource of the desktop pattern whose rows sit in pieces
 * of guest RAM, neighbours apart and in reverse order. */
struct guest {
    uint8_t *ram;
    size_t ram_len;
    struct hxfr_host_piece pieces[64];
    uint32_t n_pieces;
    int acquires, releases;
    int gap; /* resolve with a missing piece */
};

static void guest_init(struct guest *g, uint64_t index)
{
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_XRGB8888, RW, RH, 0, index), 0);
    uint64_t len = f.g.size, piece = 4096 * 3;
    memset(g, 0, sizeof(*g));
    g->ram_len = (size_t)len + 64 * 4096;
    g->ram = calloc(1, g->ram_len);
    CHECK(g->ram);
    size_t at = g->ram_len;
    for (uint64_t off = 0; off < len; off += piece) {
        uint64_t n = len - off < piece ? len - off : piece;
        at -= (size_t)n + 4096;
        memcpy(g->ram + at, f.data + off, (size_t)n);
        g->pieces[g->n_pieces++] = (struct hxfr_host_piece){g->ram + at, off, n};
    }
    test_frame_free(&f);
}

static int guest_acquire(void *opaque, uint32_t id, const struct hxfr_frame_request *req,
                         struct hxfr_host_pixels *out)
{
    struct guest *g = opaque;
    (void)req;
    if (id == 3) {
        return -ENODATA; /* a resource without backing */
    }
    if (id != 1) {
        return -ENOENT;
    }
    out->format = HXFR_FORMAT_XRGB8888;
    out->width = RW;
    out->height = RH;
    out->strides[0] = RW * 4;
    out->pieces = g->pieces;
    out->n_pieces = g->n_pieces;
    if (g->gap) {
        /* The second piece is missing: piece 2 does not start where
         * piece 0 ended. */
        static struct hxfr_host_piece holey[64];
        memcpy(holey, g->pieces, sizeof(holey));
        memmove(&holey[1], &holey[2], (g->n_pieces - 2) * sizeof(holey[0]));
        out->pieces = holey;
        out->n_pieces = g->n_pieces - 1;
    }
    g->acquires++;
    return 0;
}

static void guest_release(void *opaque, struct hxfr_host_pixels *px)
{
    struct guest *g = opaque;
    (void)px;
    g->releases++;
}

/* Waits for one message on fd while running the server's loop here. */
static int pump_expect(struct hxfr_host *h, int fd, uint8_t type, struct hxfr_msg *m, uint8_t **au,
                       size_t *len)
{
    for (int i = 0; i < 2000; i++) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = hxfr_host_get_fd(h), .events = POLLIN}};
        poll(p, 2, 50);
        if (p[0].revents & POLLIN) {
            return expect_msg(fd, type, m, au, len);
        }
        if (hxfr_host_dispatch(h, 0) < 0) {
            return -1;
        }
    }
    fprintf(stderr, "no message within 100 s\n");
    return -1;
}

/* Waits for any one message on fd while running the server's loop. */
static int pump_any(struct hxfr_host *h, int fd, struct hxfr_msg *m)
{
    for (int i = 0; i < 2000; i++) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = hxfr_host_get_fd(h), .events = POLLIN}};
        poll(p, 2, 50);
        if (p[0].revents & POLLIN) {
            uint8_t *body = NULL;
            uint32_t len = 0;
            int r = hxfr_test_recv_msg(fd, 1000, m, &body, &len);
            free(body);
            return r == 1 ? 0 : -1;
        }
        if (hxfr_host_dispatch(h, 0) < 0) {
            return -1;
        }
    }
    return -1;
}

static int pump_error(struct hxfr_host *h, int fd, int32_t code)
{
    struct hxfr_msg m;
    if (pump_expect(h, fd, HXFR_MSG_ERROR, &m, NULL, NULL) < 0) {
        return -1;
    }
    if (m.u.error.code != code) {
        fprintf(stderr, "ERROR %d (%s), wanted %d\n", m.u.error.code, m.u.error.message, code);
        return -1;
    }
    return 0;
}

static void send_resource(int fd, uint32_t id, int64_t pts)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.u.frame_request.resource_id = id;
    m.u.frame_request.width = RW;
    m.u.frame_request.height = RH;
    m.u.frame_request.format = HXFR_FORMAT_XRGB8888;
    m.u.frame_request.pts = pts;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
}

static struct hxfr_host *host_with(struct hxfr_host_config *cfg, int *fd)
{
    struct hxfr_host *h = hxfr_host_new(cfg);
    CHECK(h != NULL);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(hxfr_host_add_client(h, sv[0], "guest"), 0);
    *fd = sv[1];
    return h;
}

/* FRAME_REQUEST(resource id) of a scattered resource: encoded from the
 * pieces in place (no copy, no bounce: page-multiple pieces), the picture
 * intact; no backing is NO_SURFACE, an unknown id RESOURCE_NOT_FOUND,
 * pieces with a gap BAD_GEOMETRY, and every acquire is released. */
TEST_T(resolver_scattered_in_place, 120)
{
    static struct guest g;
    guest_init(&g, 4);
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    cfg.resolver = (struct hxfr_host_resolver){
        .version = HXFR_HOST_RESOLVER_VERSION,
        .acquire = guest_acquire,
        .release = guest_release,
        .opaque = &g,
    };
    int fd;
    struct hxfr_host *h = host_with(&cfg, &fd);
    struct hxfr_avcheck *av = hxfr_avcheck_new(1);
    for (int i = 0; i < 3; i++) {
        send_resource(fd, 1, 100 + i);
        struct hxfr_msg m;
        uint8_t *au = NULL;
        size_t len = 0;
        CHECK_EQ(pump_expect(h, fd, HXFR_MSG_FRAME_RESPONSE, &m, &au, &len), 0);
        CHECK_EQ(m.u.frame_response.pts, 100 + i);
        CHECK_EQ(hxfr_avcheck_decode_au(av, au, len), 1);
        free(au);
        double all = 0;
        CHECK_EQ(hxfr_avcheck_psnr_pattern(hxfr_avcheck_last(av), HXFR_PATTERN_DESKTOP,
                                           HXFR_FORMAT_XRGB8888, 4, NULL, &all),
                 0);
        printf("# frame %d: PSNR %.2f dB\n", i, all);
        CHECK(all >= 40.0);
    }
    hxfr_avcheck_destroy(av);
    send_resource(fd, 3, 0);
    CHECK_EQ(pump_error(h, fd, HXFR_STATUS_NO_SURFACE), 0);
    send_resource(fd, 2, 0);
    CHECK_EQ(pump_error(h, fd, HXFR_STATUS_RESOURCE_NOT_FOUND), 0);
    g.gap = 1;
    send_resource(fd, 1, 0);
    CHECK_EQ(pump_error(h, fd, HXFR_STATUS_BAD_GEOMETRY), 0);
    struct hxfr_host_stats st;
    CHECK_EQ(hxfr_host_get_stats(h, &st), 0);
    CHECK_EQ(st.gpu_frames, 3);
    CHECK_EQ(st.gpu_converted_pixels, 3u * RW * RH);
    CHECK_EQ(st.gpu_bounced_bytes, 0);
    CHECK_EQ(st.gpu_frame_copies, 0);
    CHECK_EQ(st.pixel_bytes_copied, 0);
    CHECK_EQ(g.acquires, 4);
    CHECK_EQ(g.releases, 4);
    close(fd);
    hxfr_host_destroy(h);
    free(g.ram);
}

/* A version-1 resolver is still accepted; versions 0 and 3 are not. */
TEST(resolver_versions)
{
    struct guest g = {0};
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    cfg.resolver = (struct hxfr_host_resolver){
        .version = 1, .acquire = guest_acquire, .release = guest_release, .opaque = &g};
    struct hxfr_host *h = hxfr_host_new(&cfg);
    CHECK(h != NULL);
    hxfr_host_destroy(h);
    cfg.resolver.version = 0;
    CHECK(hxfr_host_new(&cfg) == NULL && errno == EINVAL);
    cfg.resolver.version = HXFR_HOST_RESOLVER_VERSION + 1;
    CHECK(hxfr_host_new(&cfg) == NULL && errno == EINVAL);
}

/* ---- Scanouts the VMM publishes ---------------------------------------- */

/* The VMM side: the guest's picture (scattered, as above) plus a
 * contiguous reference of the same pixels, what was lent and given back,
 * and the peers' commands. */
struct vmm {
    struct guest g;
    uint8_t *ref; /* RW x RH XRGB, what the guest shows */
    struct hxfr_host *host;
    int lent, released, acquires;
    int enables, disables;
    uint32_t enabled_w, enabled_h;
    int refuse_enable;
};

static void vmm_init(struct vmm *v)
{
    memset(v, 0, sizeof(*v));
    guest_init(&v->g, 4);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_XRGB8888, RW, RH, 0, 4), 0);
    v->ref = malloc(f.g.size);
    CHECK(v->ref);
    memcpy(v->ref, f.data, f.g.size);
    test_frame_free(&f);
}

/* The guest draws: a w x h rectangle at (x, y) in colour c, in its
 * scattered memory and in the reference. */
static void vmm_draw(struct vmm *v, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint32_t c)
{
    for (uint32_t row = y; row < y + h; row++) {
        for (uint32_t col = x; col < x + w; col++) {
            uint64_t off = (uint64_t)row * RW * 4 + (uint64_t)col * 4;
            memcpy(v->ref + off, &c, 4);
            for (uint32_t i = 0; i < v->g.n_pieces; i++) {
                const struct hxfr_host_piece *p = &v->g.pieces[i];
                if (off >= p->offset && off < p->offset + p->len) {
                    memcpy((uint8_t *)p->host + (off - p->offset), &c, 4);
                }
            }
        }
    }
}

static void vmm_pixels(struct vmm *v, struct hxfr_host_pixels *px)
{
    memset(px, 0, sizeof(*px));
    px->format = HXFR_FORMAT_XRGB8888;
    px->width = RW;
    px->height = RH;
    px->strides[0] = RW * 4;
    px->pieces = v->g.pieces;
    px->n_pieces = v->g.n_pieces;
}

static int vmm_acquire_scanout(void *opaque, uint32_t id, struct hxfr_host_pixels *out)
{
    struct vmm *v = opaque;
    if (id != 0 && id != 1) {
        return -ENOENT;
    }
    vmm_pixels(v, out);
    v->acquires++;
    v->lent++;
    return 0;
}

static void vmm_release_scanout(void *opaque, uint32_t id, struct hxfr_host_pixels *px)
{
    struct vmm *v = opaque;
    (void)id;
    CHECK(px->pieces == v->g.pieces);
    v->released++;
}

static int vmm_enable(void *opaque, uint32_t id, uint32_t w, uint32_t h, uint32_t hz, char *conn,
                      size_t len)
{
    struct vmm *v = opaque;
    (void)hz;
    v->enables++;
    if (v->refuse_enable) {
        return -ENOSPC;
    }
    v->enabled_w = w;
    v->enabled_h = h;
    snprintf(conn, len, "Virtual-%u", id + 1);
    /* The device hot-plugs; its listener enables the scanout from inside
     * this callback, as hxfr-gpu does. */
    CHECK_EQ(hxfr_host_scanout_enable(v->host, id, w, h, conn), 0);
    return 0;
}

static int vmm_disable(void *opaque, uint32_t id)
{
    struct vmm *v = opaque;
    v->disables++;
    return hxfr_host_scanout_disable(v->host, id);
}

static struct hxfr_host *vmm_host(struct vmm *v, int *fd)
{
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    cfg.keepalive_ms = 100;
    cfg.scanout_ops = (struct hxfr_host_scanout_ops){
        .version = HXFR_HOST_SCANOUT_OPS_VERSION,
        .enable = vmm_enable,
        .disable = vmm_disable,
        .acquire = vmm_acquire_scanout,
        .release = vmm_release_scanout,
        .opaque = v,
    };
    struct hxfr_host *h = host_with(&cfg, fd);
    v->host = h;
    return h;
}

/* A second connection to h (a socketpair end the server serves). */
static int another_client(struct hxfr_host *h)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(hxfr_host_add_client(h, sv[0], "peer"), 0);
    return sv[1];
}

static int publish(struct vmm *v, uint32_t id, const struct hxfr_host_rect *d, uint32_t n,
                   int64_t pts)
{
    struct hxfr_host_frame fr = {.damage = d, .n_damage = n, .pts = pts};
    vmm_pixels(v, &fr.pixels);
    int r = hxfr_host_scanout_publish(v->host, id, &fr);
    if (r == 0) {
        v->lent++;
    }
    return r;
}

static void subscribe(struct hxfr_host *h, int fd, uint32_t id)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_SUBSCRIBE;
    m.u.subscribe.scanout_id = id;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(pump_expect(h, fd, HXFR_MSG_SUBSCRIBE_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.subscribe_resp.success, 1);
}

/* Receives the next pushed unit, decodes it, checks it against the
 * reference picture and says whether it was a keyframe. */
static bool pushed_matches(struct hxfr_host *h, int fd, struct hxfr_avcheck *av, struct vmm *v,
                           double min_psnr)
{
    struct hxfr_msg m;
    uint8_t *au = NULL;
    size_t len = 0;
    CHECK_EQ(pump_expect(h, fd, HXFR_MSG_FRAME_RESPONSE, &m, &au, &len), 0);
    CHECK_EQ(hxfr_avcheck_decode_au(av, au, len), 1);
    free(au);
    const uint8_t *planes[3] = {v->ref, NULL, NULL};
    const uint32_t strides[3] = {RW * 4, 0, 0};
    double all = 0;
    CHECK_EQ(hxfr_avcheck_psnr(hxfr_avcheck_last(av), HXFR_FORMAT_XRGB8888, RW, RH, planes, strides,
                               NULL, &all),
             0);
    if (all < min_psnr) {
        FAIL("pushed picture PSNR %.2f dB < %.0f", all, min_psnr);
    }
    return m.u.frame_response.is_keyframe != 0;
}

/* A VMM whose scanout 0 is enabled and watched by one subscriber (fd),
 * which got the IDR of the still screen. */
static struct hxfr_host *vmm_watched(struct vmm *v, int *fd, struct hxfr_avcheck **av)
{
    vmm_init(v);
    struct hxfr_host *h = vmm_host(v, fd);
    CHECK_EQ(hxfr_host_scanout_enable(h, 0, RW, RH, NULL), 0);
    subscribe(h, *fd, 0);
    *av = hxfr_avcheck_new(1);
    CHECK(pushed_matches(h, *fd, *av, v, 40.0));
    return h;
}

/* Ends the server; every picture lent came back. */
static void vmm_end(struct vmm *v, struct hxfr_host *h, int fd, struct hxfr_avcheck *av)
{
    hxfr_avcheck_destroy(av);
    close(fd);
    hxfr_host_destroy(h);
    CHECK_EQ(v->lent, v->released);
    free(v->g.ram);
    free(v->ref);
}

/* Push: without subscribers a flush costs nothing (not taken); a
 * subscriber of a still scanout gets an IDR of what it shows; a flush
 * with damage is converted only there (the stream still shows the whole
 * picture right); pixels are given back once converted; no whole-frame
 * copy anywhere. */
TEST_T(vmm_push_with_damage, 120)
{
    static struct vmm v;
    vmm_init(&v);
    int fd;
    struct hxfr_host *h = vmm_host(&v, &fd);
    CHECK_EQ(hxfr_host_scanout_enable(h, 0, RW, RH, NULL), 0);
    CHECK_EQ(publish(&v, 0, NULL, 0, 1), 1);
    CHECK_EQ(v.acquires, 0);

    subscribe(h, fd, 0);
    struct hxfr_avcheck *av = hxfr_avcheck_new(1);
    CHECK(pushed_matches(h, fd, av, &v, 40.0)); /* the IDR of the still screen */
    struct hxfr_host_stats st0;
    hxfr_host_get_stats(h, &st0);
    CHECK_EQ(st0.gpu_converted_pixels, (uint64_t)RW * RH);

    /* The guest draws two rectangles and flushes them. */
    vmm_draw(&v, 10, 10, 40, 30, 0x00ff0000);
    vmm_draw(&v, 201, 101, 21, 11, 0x0000ff00);
    struct hxfr_host_rect d[2] = {{10, 10, 40, 30}, {201, 101, 21, 11}};
    CHECK_EQ(publish(&v, 0, d, 2, 2), 0);
    CHECK(!pushed_matches(h, fd, av, &v, 40.0));
    struct hxfr_host_stats st;
    hxfr_host_get_stats(h, &st);
    /* Only the damage, widened to even: 40x30 and 22x12. */
    CHECK_EQ(st.gpu_converted_pixels - st0.gpu_converted_pixels, 40u * 30 + 22 * 12);
    CHECK_EQ(st.gpu_damage_pixels, 40u * 30 + 21 * 11);
    CHECK_EQ(st.gpu_flushes, 2);
    CHECK_EQ(st.gpu_flushes_encoded, 1);
    CHECK_EQ(st.gpu_flushes_skipped, 1);
    CHECK_EQ(st.gpu_frame_copies, 0);
    CHECK_EQ(st.keep_copy_bytes, 0);
    CHECK_EQ(st.pixel_bytes_copied, 0);

    vmm_end(&v, h, fd, av);
}

/* A guest that flushes faster than the encoder: one frame runs, one
 * waits, a newer one replaces the waiting one (released unencoded, its
 * damage carried over), so the stream ends on the newest picture. */
TEST_T(vmm_newest_frame_wins, 120)
{
    static struct vmm v;
    int fd;
    struct hxfr_avcheck *av;
    struct hxfr_host *h = vmm_watched(&v, &fd, &av);
    /* Three flushes without the loop running in between: the first is
     * submitted, the second waits, the third replaces it. */
    vmm_draw(&v, 0, 0, 64, 64, 0x00ffffff);
    struct hxfr_host_rect a = {0, 0, 64, 64};
    CHECK_EQ(publish(&v, 0, &a, 1, 10), 0);
    vmm_draw(&v, 100, 20, 30, 30, 0x000000ff);
    struct hxfr_host_rect b = {100, 20, 30, 30};
    CHECK_EQ(publish(&v, 0, &b, 1, 11), 0);
    vmm_draw(&v, 250, 150, 20, 20, 0x00ff00ff);
    struct hxfr_host_rect c = {250, 150, 20, 20};
    CHECK_EQ(publish(&v, 0, &c, 1, 12), 0);
    struct hxfr_host_stats st;
    hxfr_host_get_stats(h, &st);
    CHECK_EQ(st.gpu_flushes_skipped, 1);
    CHECK_EQ(v.released, 2); /* the IDR's picture and the replaced frame */
    /* Two units follow; the last shows all three changes (the replaced
     * frame's damage went with the newest one). */
    pushed_matches(h, fd, av, &v, 0.0);
    pushed_matches(h, fd, av, &v, 40.0);
    vmm_end(&v, h, fd, av);
}

/* A still screen: nothing flushed, nothing encoded but keepalives, which
 * convert nothing (the encoder's picture is current). */
TEST_T(vmm_static_screen_keepalives_only, 120)
{
    static struct vmm v;
    int fd;
    struct hxfr_avcheck *av;
    struct hxfr_host *h = vmm_watched(&v, &fd, &av);
    struct hxfr_host_stats st0, st;
    hxfr_host_get_stats(h, &st0);
    for (int i = 0; i < 3; i++) {
        pushed_matches(h, fd, av, &v, 40.0); /* keepalives, 100 ms apart */
    }
    hxfr_host_get_stats(h, &st);
    CHECK(st.keepalive_frames >= st0.keepalive_frames + 3);
    CHECK_EQ(st.gpu_flushes, 0);
    CHECK_EQ(st.gpu_flushes_encoded, 0);
    CHECK_EQ(st.gpu_converted_pixels, st0.gpu_converted_pixels);
    vmm_end(&v, h, fd, av);
}

static void scanout_cmd(int fd, uint8_t type, uint32_t id, uint32_t w, uint32_t hgt)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = type;
    if (type == HXFR_MSG_ENABLE_SCANOUT) {
        m.u.enable_scanout = (struct hxfr_enable_scanout){id, w, hgt, 60};
    } else {
        m.u.disable_scanout.scanout_id = id;
    }
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
}

/* Helix's flow: ENABLE_SCANOUT 1 on a connection that then closes is a
 * command to the VMM (Virtual-2 at the asked size); the scanout outlives
 * it; a subscriber on another connection gets its picture; DISABLE from a
 * third connection goes to the VMM too, is answered, and ends the
 * subscription. A refused enable is answered success 0. */
TEST_T(vmm_helix_enable_close_subscribe_disable, 120)
{
    static struct vmm v;
    vmm_init(&v);
    int fd;
    struct hxfr_host *h = vmm_host(&v, &fd);
    struct hxfr_msg m;
    scanout_cmd(fd, HXFR_MSG_ENABLE_SCANOUT, 1, RW, RH);
    CHECK_EQ(pump_expect(h, fd, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.scanout_resp.success, 1);
    CHECK(strcmp(m.u.scanout_resp.connector, "Virtual-2") == 0);
    CHECK_EQ(v.enables, 1);
    CHECK_EQ(v.enabled_w, RW);
    close(fd);
    /* Let the server see the close. */
    for (int i = 0; i < 20; i++) {
        hxfr_host_dispatch(h, 10);
    }
    struct hxfr_host_stats st;
    hxfr_host_get_stats(h, &st);
    CHECK_EQ(st.scanouts, 1);

    int sub = another_client(h);
    subscribe(h, sub, 1);
    struct hxfr_avcheck *av = hxfr_avcheck_new(1);
    CHECK(pushed_matches(h, sub, av, &v, 40.0));

    int third = another_client(h);
    scanout_cmd(third, HXFR_MSG_DISABLE_SCANOUT, 1, 0, 0);
    CHECK_EQ(pump_expect(h, third, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.scanout_resp.success, 1);
    CHECK_EQ(v.disables, 1);
    /* The subscriber hears of it (keepalives before it may come first). */
    for (;;) {
        CHECK_EQ(pump_any(h, sub, &m), 0);
        if (m.hdr.type == HXFR_MSG_ERROR) {
            CHECK_EQ(m.u.error.code, HXFR_STATUS_NO_SCANOUT);
            break;
        }
        CHECK_EQ(m.hdr.type, HXFR_MSG_FRAME_RESPONSE);
    }
    /* Disabling again: nothing there, success 0; the VMM refusing an
     * enable: success 0. */
    scanout_cmd(third, HXFR_MSG_DISABLE_SCANOUT, 1, 0, 0);
    CHECK_EQ(pump_expect(h, third, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.scanout_resp.success, 0);
    v.refuse_enable = 1;
    scanout_cmd(third, HXFR_MSG_ENABLE_SCANOUT, 2, RW, RH);
    CHECK_EQ(pump_expect(h, third, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.scanout_resp.success, 0);
    hxfr_avcheck_destroy(av);
    close(sub);
    close(third);
    hxfr_host_destroy(h);
    CHECK_EQ(v.lent, v.released);
    free(v.g.ram);
    free(v.ref);
}

/* What the embedder can get wrong is refused without taking anything. */
TEST(vmm_api_misuse)
{
    static struct vmm v;
    vmm_init(&v);
    int fd;
    struct hxfr_host *h = vmm_host(&v, &fd);
    CHECK_EQ(publish(&v, 3, NULL, 0, 0), -ENOENT);
    CHECK_EQ(hxfr_host_scanout_disable(h, 3), -ENOENT);
    CHECK_EQ(hxfr_host_scanout_enable(h, 0, 0, 10, NULL), -EINVAL);
    CHECK_EQ(hxfr_host_scanout_enable(h, 70000, 10, 10, NULL), -EINVAL);
    CHECK_EQ(hxfr_host_scanout_enable(h, 0, RW, RH, NULL), 0);
    subscribe(h, fd, 0);
    /* Pieces that do not cover the picture: -EINVAL, nothing lent. */
    struct hxfr_host_frame fr = {0};
    vmm_pixels(&v, &fr.pixels);
    fr.pixels.n_pieces = 1;
    CHECK_EQ(hxfr_host_scanout_publish(h, 0, &fr), -EINVAL);
    close(fd);
    hxfr_host_destroy(h);
    CHECK_EQ(v.lent, v.released);
    /* Scanout ops without a version, or with only one of acquire and
     * release, are refused. */
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.scanout_ops.acquire = vmm_acquire_scanout;
    cfg.scanout_ops.release = vmm_release_scanout;
    CHECK(hxfr_host_new(&cfg) == NULL && errno == EINVAL);
    cfg.scanout_ops.version = HXFR_HOST_SCANOUT_OPS_VERSION;
    cfg.scanout_ops.release = NULL;
    CHECK(hxfr_host_new(&cfg) == NULL && errno == EINVAL);
    /* Without acquire/release no scanout can be the VMM's. */
    hxfr_host_config_init(&cfg);
    h = hxfr_host_new(&cfg);
    CHECK(h);
    CHECK_EQ(hxfr_host_scanout_enable(h, 0, RW, RH, NULL), -EINVAL);
    hxfr_host_destroy(h);
    free(v.g.ram);
    free(v.ref);
}
