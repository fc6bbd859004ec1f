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
