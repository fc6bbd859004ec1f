#include "hostutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "pattern.h"

int test_frame_make(struct test_frame *f, uint32_t format, uint32_t w, uint32_t h, uint32_t pad,
                    uint64_t index)
{
    memset(f, 0, sizeof(*f));
    uint32_t stride = hxfr_format_min_stride(format, w) + pad;
    if (hxfr_geometry_compute(format, w, h, stride, 0, &f->g) < 0) {
        fprintf(stderr, "bad test geometry %ux%u\n", w, h);
        return -1;
    }
    f->data = calloc(1, (size_t)f->g.size);
    if (!f->data) {
        return -1;
    }
    uint8_t *planes[3] = {NULL, NULL, NULL};
    uint32_t strides[3] = {0, 0, 0};
    for (uint32_t i = 0; i < f->g.num_planes; i++) {
        planes[i] = f->data + f->g.offset[i];
        strides[i] = f->g.stride[i];
    }
    if (hxfr_pattern_render(HXFR_PATTERN_DESKTOP, format, w, h, index, planes, strides) < 0) {
        fprintf(stderr, "pattern render failed\n");
        return -1;
    }
    return 0;
}

void test_frame_free(struct test_frame *f)
{
    free(f->data);
    f->data = NULL;
}

int send_frame(int fd, uint16_t sid, const struct test_frame *f, int64_t pts, bool force_kf)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
    m.hdr.session_id = sid;
    m.u.frame_request.width = f->g.width;
    m.u.frame_request.height = f->g.height;
    m.u.frame_request.format = f->g.format;
    m.u.frame_request.stride = f->g.stride[0];
    m.u.frame_request.pts = pts;
    m.u.frame_request.duration = 16666667;
    m.u.frame_request.force_keyframe = force_kf ? 1 : 0;
    return hxfr_test_send_msg(fd, &m, f->data, (uint32_t)f->g.size);
}

int send_simple(int fd, uint8_t type, uint16_t sid)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = type;
    m.hdr.session_id = sid;
    return hxfr_test_send_msg(fd, &m, NULL, 0);
}

int expect_msg(int fd, uint8_t type, struct hxfr_msg *m, uint8_t **au, size_t *au_len)
{
    struct hxfr_msg local;
    uint8_t *body = NULL;
    uint32_t blen = 0;
    if (!m) {
        m = &local;
    }
    int r = hxfr_test_recv_msg(fd, RECV_TIMEOUT_MS, m, &body, &blen);
    if (r != 1) {
        fprintf(stderr, "expected %s, got recv result %d (%s)\n", hxfr_msg_type_name(type), r,
                r < 0 ? strerror(-r) : "EOF");
        free(body);
        return -1;
    }
    if (m->hdr.type != type) {
        fprintf(stderr, "expected %s, got %s", hxfr_msg_type_name(type),
                hxfr_msg_type_name(m->hdr.type) ? hxfr_msg_type_name(m->hdr.type) : "?");
        if (m->hdr.type == HXFR_MSG_ERROR) {
            fprintf(stderr, " %s: %s", hxfr_status_name(m->u.error.code), m->u.error.message);
        }
        fprintf(stderr, "\n");
        free(body);
        return -1;
    }
    if (type == HXFR_MSG_FRAME_RESPONSE) {
        if (hxfr_units_validate(body, blen, m->u.frame_response.nal_count) < 0) {
            fprintf(stderr, "malformed unit list\n");
            free(body);
            return -1;
        }
        if (au) {
            /* Units carry their own start codes: concatenating them gives
             * the Annex B access unit. */
            uint8_t *out = malloc(blen ? blen : 1);
            size_t len = 0, pos = 0;
            const uint8_t *unit;
            uint32_t usize;
            while (hxfr_units_next(body, blen, &pos, &unit, &usize) == 1) {
                memcpy(out + len, unit, usize);
                len += usize;
            }
            *au = out;
            *au_len = len;
        }
    }
    free(body);
    return 0;
}

int expect_error(int fd, int32_t code)
{
    struct hxfr_msg m;
    if (expect_msg(fd, HXFR_MSG_ERROR, &m, NULL, NULL) < 0) {
        return -1;
    }
    if (m.u.error.code != code) {
        fprintf(stderr, "expected ERROR %s, got %s: %s\n", hxfr_status_name(code),
                hxfr_status_name(m.u.error.code), m.u.error.message);
        return -1;
    }
    if (m.u.error.message[0] == '\0') {
        fprintf(stderr, "ERROR without a message\n");
        return -1;
    }
    return 0;
}

int ping_ok(int fd)
{
    if (send_simple(fd, HXFR_MSG_PING, 0) < 0) {
        fprintf(stderr, "ping send failed\n");
        return -1;
    }
    return expect_msg(fd, HXFR_MSG_PONG, NULL, NULL, NULL);
}

int roundtrip_frame(int fd, uint16_t sid, const struct test_frame *f, int64_t pts, bool force_kf,
                    struct hxfr_msg *m, uint8_t **au, size_t *au_len)
{
    if (send_frame(fd, sid, f, pts, force_kf) < 0) {
        fprintf(stderr, "frame send failed\n");
        return -1;
    }
    if (expect_msg(fd, HXFR_MSG_FRAME_RESPONSE, m, au, au_len) < 0) {
        return -1;
    }
    if (m->u.frame_response.pts != pts) {
        fprintf(stderr, "pts %lld echoed as %lld\n", (long long)pts,
                (long long)m->u.frame_response.pts);
        return -1;
    }
    return 0;
}
