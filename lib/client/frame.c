/* Frames (client-private.h): validation and the scatter-gather list of a
 * submitted frame, the window of frames in flight, dispatch and flush,
 * and settle(), which drains the window before a blocking request. */
#include <errno.h>
#include <stdlib.h>

#include "client-private.h"

int hxfr_client_flush(struct hxfr_client *c, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    uint64_t deadline = deadline_after(timeout_ms);
    while (c->count > 0) {
        int r = hxfr__guest_wait_input(c, deadline);
        if (r < 0) {
            /* The host may close right after answering the last frame:
             * that is only an error if it cost a frame. The caller learns
             * about the closed connection on its next call. */
            return c->count == 0 && c->lost_failed == 0 ? 0 : r;
        }
        if (r == 0 && c->count > 0 && poll_timeout(deadline) == 0) {
            return -ETIMEDOUT;
        }
    }
    return 0;
}

int hxfr__guest_settle(struct hxfr_client *c)
{
    int r = hxfr__guest_ensure_connected(c);
    if (r < 0) {
        return r;
    }
    return hxfr_client_flush(c, c->o.io_timeout_ms);
}

/* Fills c->iov for frame f; *wire_stride gets the plane-0 stride put in
 * the request and *size the pixel byte count. */
static int build_frame_iov(struct hxfr_client *c, const struct hxfr_client_frame *f, size_t *iovcnt,
                           uint32_t *wire_stride, uint64_t *size)
{
    uint32_t stride0 = f->strides[0] ? f->strides[0] : hxfr_format_min_stride(f->format, f->width);
    struct hxfr_geometry g;
    int r = hxfr_geometry_compute(f->format, f->width, f->height, stride0, c->o.max_dim, &g);
    if (r < 0) {
        return r;
    }
    uint32_t caller_stride[3] = {stride0, 0, 0};
    bool blocks = true;
    for (uint32_t i = 0; i < g.num_planes; i++) {
        if (!f->planes[i]) {
            return -EINVAL;
        }
        if (i > 0) {
            /* A zero chroma stride is the tight one: the derived stride of
             * the tight luma stride. */
            struct hxfr_geometry tight;
            r = hxfr_geometry_compute(f->format, f->width, f->height,
                                      hxfr_format_min_stride(f->format, f->width), c->o.max_dim,
                                      &tight);
            if (r < 0) {
                return r;
            }
            caller_stride[i] = f->strides[i] ? f->strides[i] : tight.stride[i];
            if (caller_stride[i] != g.stride[i]) {
                blocks = false;
            }
        }
    }
    if (!blocks) {
        /* Chroma strides do not follow from the luma stride: send tight
         * rows, one iovec each. */
        r = hxfr_geometry_compute(f->format, f->width, f->height,
                                  hxfr_format_min_stride(f->format, f->width), c->o.max_dim, &g);
        if (r < 0) {
            return r;
        }
    }
    size_t need = 1;
    for (uint32_t i = 0; i < g.num_planes; i++) {
        need += blocks ? 1 : g.plane_height[i];
    }
    if (need > c->iov_cap) {
        struct iovec *v = realloc(c->iov, need * sizeof(*v));
        if (!v) {
            return -ENOMEM;
        }
        c->iov = v;
        c->iov_cap = need;
    }
    size_t n = 1; /* iov[0] is the header, filled by the caller */
    for (uint32_t i = 0; i < g.num_planes; i++) {
        const uint8_t *src = f->planes[i];
        if (blocks) {
            c->iov[n++] = (struct iovec){.iov_base = (void *)src, .iov_len = g.plane_size[i]};
            continue;
        }
        if (caller_stride[i] < g.stride[i]) {
            return -HXFR_ESTRIDE;
        }
        for (uint32_t y = 0; y < g.plane_height[i]; y++) {
            c->iov[n++] = (struct iovec){
                .iov_base = (void *)(src + (size_t)y * caller_stride[i]),
                .iov_len = g.stride[i],
            };
        }
    }
    *iovcnt = n;
    *wire_stride = g.stride[0];
    *size = g.size;
    return 0;
}

/* Waits up to timeout_ms for room in the window, delivering results.
 * Returns 0, -EAGAIN or a connection error. */
static int wait_window(struct hxfr_client *c, int timeout_ms)
{
    int r;
    uint64_t deadline = deadline_after(timeout_ms);
    while (c->count >= c->o.window) {
        if (timeout_ms == 0) {
            /* Take what is already there before giving up. */
            r = hxfr__guest_pump(c);
            if (r < 0) {
                return r;
            }
            if (c->count >= c->o.window) {
                return -EAGAIN;
            }
            break;
        }
        r = hxfr__guest_wait_input(c, deadline);
        if (r < 0) {
            return r;
        }
        if (r == 0 && c->count >= c->o.window && poll_timeout(deadline) == 0) {
            return -EAGAIN;
        }
    }
    return 0;
}

int hxfr__guest_prepare_submit(struct hxfr_client *c, int timeout_ms)
{
    int r = hxfr__guest_ensure_connected(c);
    if (r < 0) {
        return r;
    }
    return wait_window(c, timeout_ms);
}

int hxfr__guest_frame_geometry(const struct hxfr_client *c, const struct hxfr_client_frame *f,
                               uint32_t *stride, struct hxfr_geometry *g)
{
    *stride = f->strides[0] ? f->strides[0] : hxfr_format_min_stride(f->format, f->width);
    return hxfr_geometry_compute(f->format, f->width, f->height, *stride, c->o.max_dim, g);
}

bool hxfr__guest_frame_request_init(struct hxfr_client *c, struct hxfr_msg *m,
                                    const struct hxfr_client_frame *f, uint8_t flags,
                                    uint32_t resource_id, uint32_t stride)
{
    bool forced = f->force_keyframe || c->force_next_keyframe;
    *m = (struct hxfr_msg){
        .hdr.type = HXFR_MSG_FRAME_REQUEST, .hdr.flags = flags, .hdr.session_id = c->o.session_id};
    m->u.frame_request = (struct hxfr_frame_request){
        .resource_id = resource_id,
        .width = f->width,
        .height = f->height,
        .format = f->format,
        .stride = stride,
        .pts = f->pts,
        .duration = f->duration,
        .force_keyframe = forced ? 1 : 0,
    };
    return forced;
}

void hxfr__guest_pending_push(struct hxfr_client *c, const struct hxfr_client_frame *f,
                              uint64_t start_ns, bool forced, int slot)
{
    unsigned i = (c->head + c->count) % HXFR_CLIENT_MAX_WINDOW;
    c->ring[i] = (struct pending){
        .user = f->user,
        .seq = c->next_seq++,
        .pts = f->pts,
        .start_ns = start_ns,
        .forced = forced,
        .slot = slot,
    };
    c->count++;
    c->force_next_keyframe = false;
}

int hxfr_client_submit(struct hxfr_client *c, const struct hxfr_client_frame *f, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    size_t iovcnt;
    uint32_t stride;
    uint64_t size;
    int r = build_frame_iov(c, f, &iovcnt, &stride, &size);
    if (r < 0) {
        return r;
    }
    if (size > UINT32_MAX - HXFR_FRAME_REQUEST_SIZE) {
        return -HXFR_EOVERFLOW;
    }
    r = hxfr__guest_prepare_submit(c, timeout_ms);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg m;
    bool forced = hxfr__guest_frame_request_init(c, &m, f, HXFR_FLAG_PIXEL_DATA, 0, stride);
    uint8_t hdr[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    int n = hxfr_msg_encode(&m, (uint32_t)size, hdr, sizeof(hdr));
    if (n < 0) {
        return n;
    }
    c->iov[0] = (struct iovec){.iov_base = hdr, .iov_len = (size_t)n};
    uint64_t start = now_ns();
    r = hxfr__guest_send_iov(c, c->iov, iovcnt);
    if (r < 0) {
        return r;
    }
    hxfr__guest_pending_push(c, f, start, forced, -1);
    return 0;
}

int hxfr_client_submit_resource(struct hxfr_client *c, uint32_t resource_id,
                                const struct hxfr_client_frame *f, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (resource_id == 0) {
        return -EINVAL;
    }
    uint32_t stride;
    struct hxfr_geometry g;
    int r = hxfr__guest_frame_geometry(c, f, &stride, &g);
    if (r < 0) {
        return r;
    }
    r = hxfr__guest_prepare_submit(c, timeout_ms);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg m;
    bool forced = hxfr__guest_frame_request_init(c, &m, f, 0, resource_id, stride);
    uint64_t start = now_ns();
    r = hxfr__guest_send_msg(c, &m);
    if (r < 0) {
        return r;
    }
    hxfr__guest_pending_push(c, f, start, forced, -1);
    return 0;
}

int hxfr_client_dispatch(struct hxfr_client *c, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (c->fd < 0) {
        return -ENOTCONN;
    }
    uint64_t start = c->delivered + c->pushed;
    int r = hxfr__guest_pump(c);
    if (r < 0) {
        return r;
    }
    uint64_t deadline = deadline_after(timeout_ms);
    while (c->delivered + c->pushed == start && (c->count > 0 || c->subscribed) &&
           timeout_ms != 0) {
        r = hxfr__guest_wait_input(c, deadline);
        if (r < 0) {
            return r;
        }
        if (r == 0 && poll_timeout(deadline) == 0) {
            break;
        }
    }
    return (int)(c->delivered + c->pushed - start);
}
