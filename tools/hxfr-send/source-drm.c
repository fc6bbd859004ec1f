/* --source drm[:/dev/dri/cardN]: the built-in test screen drawn into
 * virtio-gpu dumb buffers in the guest, sent as resource ids without
 * pixels (pull mode from GPU memory, docs/gpu.md). Two buffers, used in
 * turn: the host reads one in place while the next frame is drawn into
 * the other; a buffer is drawn into again only after its frame's result
 * arrived. lib/drm does the DRM work (dumb buffer, its resource id). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hxfr-drm.h"
#include "pattern.h"
#include "send.h"

#define DRM_BUFFERS 2

struct drm_buffer {
    struct hxfr_drm_dumb dumb;
    bool held; /* the host has it (a frame in flight) */
};

struct drm_source {
    struct send_source base;
    int fd;
    struct drm_buffer buf[DRM_BUFFERS];
    unsigned next;
};

static void drm_close(struct send_source *src)
{
    struct drm_source *d = (struct drm_source *)src;
    for (unsigned i = 0; i < DRM_BUFFERS; i++) {
        if (d->buf[i].dumb.map) {
            hxfr_drm_dumb_destroy(d->fd, &d->buf[i].dumb);
        }
    }
    if (d->fd >= 0) {
        close(d->fd);
    }
    free(d);
}

static struct send_source *drm_open(const char *arg, struct send_args *a)
{
    const char *path = arg && arg[0] ? arg : "/dev/dri/card0";
    struct drm_source *d = calloc(1, sizeof(*d));
    if (!d) {
        fprintf(stderr, "hxfr-send: out of memory\n");
        return NULL;
    }
    d->base.ops = &send_drm_source;
    d->fd = hxfr_drm_open(path);
    if (d->fd < 0) {
        fprintf(stderr, "hxfr-send: %s: %s\n", path, strerror(-d->fd));
        free(d);
        return NULL;
    }
    /* virtio-gpu dumb buffers are XRGB8888 (bytes B, G, R, x). */
    a->format = HXFR_FORMAT_XRGB8888;
    for (unsigned i = 0; i < DRM_BUFFERS; i++) {
        int r = hxfr_drm_dumb_create(d->fd, a->width, a->height, &d->buf[i].dumb);
        if (r < 0) {
            fprintf(stderr, "hxfr-send: %s: %ux%u dumb buffer: %s%s\n", path, a->width, a->height,
                    strerror(-r),
                    r == -ENOTTY || r == -EINVAL ? " (not a virtio-gpu device?)" : "");
            drm_close(&d->base);
            return NULL;
        }
    }
    fprintf(stderr, "hxfr-send: %s: resources %u and %u, %ux%u, pitch %u\n", path,
            d->buf[0].dumb.resource_id, d->buf[1].dumb.resource_id, a->width, a->height,
            d->buf[0].dumb.pitch);
    return &d->base;
}

static int drm_render(struct send_source *src, uint64_t index, uint32_t *resource_id,
                      uint32_t *stride, void **token)
{
    struct drm_source *d = (struct drm_source *)src;
    struct drm_buffer *b = &d->buf[d->next];
    if (b->held) {
        return -EBUSY;
    }
    uint8_t *planes[3] = {b->dumb.map, NULL, NULL};
    uint32_t strides[3] = {b->dumb.pitch, 0, 0};
    if (hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_XRGB8888, b->dumb.width,
                            b->dumb.height, index, planes, strides) < 0) {
        fprintf(stderr, "hxfr-send: cannot draw frame %llu\n", (unsigned long long)index);
        return -EINVAL;
    }
    b->held = true;
    d->next = (d->next + 1) % DRM_BUFFERS;
    *resource_id = b->dumb.resource_id;
    *stride = b->dumb.pitch;
    *token = b;
    return 1;
}

static void drm_done(struct send_source *src, void *token)
{
    (void)src;
    ((struct drm_buffer *)token)->held = false;
}

const struct send_source_ops send_drm_source = {
    .version = SEND_SOURCE_OPS_VERSION,
    .name = "drm",
    .form = "drm[:/dev/dri/cardN]",
    .open = drm_open,
    .render = drm_render,
    .done = drm_done,
    .close = drm_close,
};
