/* The GPU socket to QEMU (see display.h). Messages are {u32 request, u32
 * flags, u32 size} and a payload, in the host's byte order. */
#include "display.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

#include "gpu-private.h"

#define MSG_HDR 12u

static void mark_all(struct hxfr_display *d)
{
    for (uint32_t i = 0; i < HXFR_GPU_MAX_SCANOUTS; i++) {
        d->s[i].config_dirty = true;
        d->s[i].cursor_dirty = true;
        d->s[i].cursor_image_dirty = true;
    }
}

static void on_scanout(void *data, uint32_t id)
{
    struct hxfr_display *d = data;
    d->s[id].config_dirty = true;
}

/* QEMU's display never holds a flush: its pixels are copied out of the
 * host copy (what TRANSFER_TO_HOST_2D put there) when the socket has room. */
static int on_flush(void *data, uint32_t id, uint32_t resource, const struct hxfr_gpu_rect *r,
                    uint64_t token)
{
    struct hxfr_display *d = data;
    struct hxfr_display_scanout *s = &d->s[id];
    struct hxfr_gpu_scanout_info info;
    (void)resource;
    (void)token;
    if (hxfr_gpu_scanout_get(d->gpu, id, &info) < 0) {
        return HXFR_GPU_FLUSH_DONE;
    }
    /* Resource coordinates to scanout coordinates (r lies inside the
     * scanout's rectangle: the device clipped it). */
    uint32_t x0 = r->x - info.rect.x, y0 = r->y - info.rect.y;
    uint32_t x1 = x0 + r->width, y1 = y0 + r->height;
    if (s->damage) {
        d->coalesced++;
        uint32_t ox1 = s->dmg.x + s->dmg.width, oy1 = s->dmg.y + s->dmg.height;
        x0 = x0 < s->dmg.x ? x0 : s->dmg.x;
        y0 = y0 < s->dmg.y ? y0 : s->dmg.y;
        x1 = x1 > ox1 ? x1 : ox1;
        y1 = y1 > oy1 ? y1 : oy1;
    }
    s->dmg = (struct hxfr_gpu_rect){x0, y0, x1 - x0, y1 - y0};
    s->damage = true;
    return HXFR_GPU_FLUSH_DONE;
}

static void on_cursor(void *data, uint32_t id, bool image)
{
    struct hxfr_display *d = data;
    d->s[id].cursor_dirty = true;
    if (image) {
        d->s[id].cursor_image_dirty = true;
    }
}

static void on_reset(void *data)
{
    struct hxfr_display *d = data;
    for (uint32_t i = 0; i < HXFR_GPU_MAX_SCANOUTS; i++) {
        d->s[i].config_dirty = true;
        d->s[i].damage = false;
        d->s[i].cursor_dirty = true;
    }
}

int hxfr__display_init(struct hxfr_display *d, struct hxfr_gpu *gpu)
{
    memset(d, 0, sizeof(*d));
    d->fd = -1;
    d->gpu = gpu;
    struct hxfr_gpu_listener l = {
        .data = d,
        .flush = on_flush,
        .scanout = on_scanout,
        .cursor = on_cursor,
        .reset = on_reset,
    };
    d->listener = hxfr_gpu_add_listener(gpu, &l);
    return d->listener < 0 ? d->listener : 0;
}

void hxfr__display_finish(struct hxfr_display *d)
{
    hxfr__display_set_socket(d, -1);
    hxfr_gpu_remove_listener(d->gpu, d->listener);
    free(d->buf);
    d->buf = NULL;
}

void hxfr__display_set_socket(struct hxfr_display *d, int fd)
{
    if (d->fd >= 0) {
        close(d->fd);
    }
    d->fd = fd;
    d->len = d->off = 0;
    if (fd >= 0) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        /* A fresh QEMU side knows nothing: tell it everything. */
        mark_all(d);
        for (uint32_t i = 0; i < HXFR_GPU_MAX_SCANOUTS; i++) {
            d->s[i].sent_w = d->s[i].sent_h = 0;
        }
    }
}

static uint8_t *msg_start(struct hxfr_display *d, uint32_t request, size_t payload)
{
    size_t need = MSG_HDR + payload;
    if (need > d->cap) {
        uint8_t *b = realloc(d->buf, need);
        if (b == NULL) {
            return NULL;
        }
        d->buf = b;
        d->cap = need;
    }
    uint32_t hdr[3] = {request, 0, (uint32_t)payload};
    memcpy(d->buf, hdr, MSG_HDR);
    d->len = need;
    d->off = 0;
    d->messages++;
    return d->buf + MSG_HDR;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4); /* host byte order on this socket */
}

/* Copies a band of the scanout into x8r8g8b8 words (bytes B, G, R, X). */
static void convert_rows(const struct hxfr_gpu_resource_info *res, uint32_t x, uint32_t y,
                         uint32_t w, uint32_t h, uint8_t *out)
{
    for (uint32_t row = 0; row < h; row++) {
        const uint8_t *src = res->host_copy + (uint64_t)(y + row) * res->stride + (uint64_t)x * 4;
        uint8_t *dst = out + (uint64_t)row * w * 4;
        switch (res->virtio_format) {
        case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
        case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
            memcpy(dst, src, (size_t)w * 4);
            break;
        default:
            for (uint32_t i = 0; i < w; i++) {
                const uint8_t *p = src + 4 * i;
                uint8_t r, g, b;
                switch (res->virtio_format) {
                case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
                case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
                    r = p[1], g = p[2], b = p[3];
                    break;
                case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
                case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
                    b = p[1], g = p[2], r = p[3];
                    break;
                default: /* R8G8B8A8, R8G8B8X8 */
                    r = p[0], g = p[1], b = p[2];
                    break;
                }
                dst[4 * i] = b;
                dst[4 * i + 1] = g;
                dst[4 * i + 2] = r;
                dst[4 * i + 3] = 0xff;
            }
            break;
        }
    }
}

/* Builds the next message, if anything is pending. Returns true if one was
 * built. */
static bool build_next(struct hxfr_display *d)
{
    uint32_t n = hxfr_gpu_scanout_count(d->gpu);
    for (uint32_t i = 0; i < n; i++) {
        struct hxfr_display_scanout *s = &d->s[i];
        if (!s->config_dirty) {
            continue;
        }
        struct hxfr_gpu_scanout_info info;
        hxfr_gpu_scanout_get(d->gpu, i, &info);
        uint32_t w = info.resource_id ? info.rect.width : 0;
        uint32_t h = info.resource_id ? info.rect.height : 0;
        s->config_dirty = false;
        if (w == s->sent_w && h == s->sent_h) {
            /* Same size (a page flip to another resource, or still off):
             * QEMU's surface stays, its pixels are all new. */
            if (w != 0) {
                s->damage = true;
                s->dmg = (struct hxfr_gpu_rect){0, 0, w, h};
            }
            continue;
        }
        uint8_t *p = msg_start(d, HXFR_VUGPU_SCANOUT, 12);
        if (p == NULL) {
            s->config_dirty = true;
            return false;
        }
        put32(p, i);
        put32(p + 4, w);
        put32(p + 8, h);
        s->sent_w = w;
        s->sent_h = h;
        /* QEMU shows a new surface only with an update: all of it. */
        s->damage = w != 0;
        s->dmg = (struct hxfr_gpu_rect){0, 0, w, h};
        return true;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct hxfr_display_scanout *s = &d->s[i];
        if (!s->damage) {
            continue;
        }
        struct hxfr_gpu_scanout_info info;
        struct hxfr_gpu_resource_info res;
        hxfr_gpu_scanout_get(d->gpu, i, &info);
        if (s->sent_w == 0 || info.resource_id == 0 ||
            hxfr_gpu_resource_get(d->gpu, info.resource_id, &res) < 0 ||
            info.rect.width != s->sent_w || info.rect.height != s->sent_h) {
            /* Whatever changed also marked the config dirty; the full
             * update follows the next SCANOUT. */
            s->damage = false;
            continue;
        }
        /* Clip to the size QEMU knows, then send the first band. */
        struct hxfr_gpu_rect r = s->dmg;
        if (r.x >= s->sent_w || r.y >= s->sent_h) {
            s->damage = false;
            continue;
        }
        if (r.width > s->sent_w - r.x) {
            r.width = s->sent_w - r.x;
        }
        if (r.height > s->sent_h - r.y) {
            r.height = s->sent_h - r.y;
        }
        uint32_t rows = HXFR_DISPLAY_MAX_UPDATE / (r.width * 4);
        if (rows == 0) {
            rows = 1;
        }
        if (rows > r.height) {
            rows = r.height;
        }
        uint8_t *p = msg_start(d, HXFR_VUGPU_UPDATE, 20 + (size_t)r.width * 4 * rows);
        if (p == NULL) {
            return false;
        }
        put32(p, i);
        put32(p + 4, r.x);
        put32(p + 8, r.y);
        put32(p + 12, r.width);
        put32(p + 16, rows);
        convert_rows(&res, info.rect.x + r.x, info.rect.y + r.y, r.width, rows, p + 20);
        d->updates++;
        if (rows == r.height) {
            s->damage = false;
        } else {
            s->dmg = (struct hxfr_gpu_rect){r.x, r.y + rows, r.width, r.height - rows};
        }
        return true;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct hxfr_display_scanout *s = &d->s[i];
        if (!s->cursor_dirty && !s->cursor_image_dirty) {
            continue;
        }
        struct hxfr_gpu_cursor_info c;
        hxfr_gpu_cursor_get(d->gpu, i, &c);
        uint8_t *p;
        if (s->cursor_image_dirty && c.has_image && c.visible) {
            p = msg_start(d, HXFR_VUGPU_CURSOR_UPDATE, 20 + 4 * 64 * 64);
            if (p == NULL) {
                return false;
            }
            put32(p + 12, c.hot_x);
            put32(p + 16, c.hot_y);
            memcpy(p + 20, c.image, 4 * 64 * 64);
        } else {
            p = msg_start(d, c.visible ? HXFR_VUGPU_CURSOR_POS : HXFR_VUGPU_CURSOR_POS_HIDE, 12);
            if (p == NULL) {
                return false;
            }
        }
        put32(p, i);
        put32(p + 4, c.x);
        put32(p + 8, c.y);
        s->cursor_dirty = s->cursor_image_dirty = false;
        return true;
    }
    return false;
}

int hxfr__display_flush(struct hxfr_display *d)
{
    while (d->fd >= 0) {
        if (d->off == d->len && !build_next(d)) {
            return 0;
        }
        ssize_t n = send(d->fd, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                return 1;
            }
            hxfr__display_set_socket(d, -1);
            return -EPIPE;
        }
        d->off += (size_t)n;
        d->bytes += (uint64_t)n;
    }
    return 0;
}

int hxfr__display_read(struct hxfr_display *d)
{
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = recv(d->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return 0;
        }
        hxfr__display_set_socket(d, -1);
        return -EPIPE;
    }
}
