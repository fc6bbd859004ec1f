/* Connectors, scanouts, flushes and cursors of the virtio-gpu device, and
 * the listeners that hear about them. A connector (connected, offered
 * size) is host configuration; which resource a scanout shows, and the
 * cursor, are guest state that a reset clears. */
#include "gpu-private.h"

#include <errno.h>
#include <string.h>

#include <linux/virtio_gpu.h>

void hxfr__gpu_outputs_init(struct hxfr_gpu *gpu)
{
    memset(gpu->out, 0, sizeof(gpu->out));
    gpu->out[0].connected = true;
    gpu->out[0].width = gpu->cfg.width;
    gpu->out[0].height = gpu->cfg.height;
}

/* Calls cb(data, args...) of every listener that has it. */
#define EMIT(gpu, cb, ...)                                                                         \
    do {                                                                                           \
        for (int i_ = 0; i_ < HXFR_GPU_MAX_LISTENERS; i_++) {                                      \
            const struct hxfr_gpu_listener *l_ = &(gpu)->listeners[i_];                            \
            if ((gpu)->listener_used[i_] && l_->cb != NULL) {                                      \
                l_->cb(__VA_ARGS__);                                                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

void hxfr__emit_flush(struct hxfr_gpu *gpu, uint32_t scanout, uint32_t resource,
                      const struct hxfr_gpu_rect *r, uint64_t token)
{
    for (int i = 0; i < HXFR_GPU_MAX_LISTENERS; i++) {
        const struct hxfr_gpu_listener *l = &gpu->listeners[i];
        if (gpu->listener_used[i] && l->flush != NULL &&
            l->flush(l->data, scanout, resource, r, token) == HXFR_GPU_FLUSH_HOLD) {
            gpu->flush_holds++;
        }
    }
}

bool hxfr__gpu_held(const struct hxfr_gpu *gpu)
{
    return gpu->flush_holds > 0;
}

void hxfr__gpu_unhold(struct hxfr_gpu *gpu)
{
    gpu->flush_holds = 0;
}

int hxfr_gpu_flush_done(struct hxfr_gpu *gpu, uint64_t token)
{
    if (token != gpu->flush_token || gpu->flush_holds == 0) {
        return -ENOENT;
    }
    if (--gpu->flush_holds == 0 && gpu->flush_released != NULL) {
        gpu->flush_released(gpu->flush_released_data);
    }
    return 0;
}

void hxfr__emit_scanout(struct hxfr_gpu *gpu, uint32_t scanout)
{
    EMIT(gpu, scanout, l_->data, scanout);
}

void hxfr__emit_cursor(struct hxfr_gpu *gpu, uint32_t scanout, bool image)
{
    EMIT(gpu, cursor, l_->data, scanout, image);
}

void hxfr__emit_display_changed(struct hxfr_gpu *gpu)
{
    EMIT(gpu, display_changed, l_->data);
}

void hxfr__emit_resource_destroy(struct hxfr_gpu *gpu, uint32_t resource)
{
    EMIT(gpu, resource_destroy, l_->data, resource);
}

void hxfr__emit_reset(struct hxfr_gpu *gpu)
{
    EMIT(gpu, reset, l_->data);
}

int hxfr_gpu_add_listener(struct hxfr_gpu *gpu, const struct hxfr_gpu_listener *l)
{
    for (int i = 0; i < HXFR_GPU_MAX_LISTENERS; i++) {
        if (!gpu->listener_used[i]) {
            gpu->listeners[i] = *l;
            gpu->listener_used[i] = true;
            return i;
        }
    }
    return -ENOSPC;
}

void hxfr_gpu_remove_listener(struct hxfr_gpu *gpu, int handle)
{
    if (handle >= 0 && handle < HXFR_GPU_MAX_LISTENERS) {
        gpu->listener_used[handle] = false;
    }
}

uint32_t hxfr_gpu_scanout_count(const struct hxfr_gpu *gpu)
{
    return gpu->cfg.max_outputs;
}

int hxfr_gpu_scanout_get(const struct hxfr_gpu *gpu, uint32_t id, struct hxfr_gpu_scanout_info *out)
{
    if (id >= gpu->cfg.max_outputs) {
        return -EINVAL;
    }
    const struct hxfr_gpu_output *o = &gpu->out[id];
    *out = (struct hxfr_gpu_scanout_info){
        .connected = o->connected,
        .width = o->width,
        .height = o->height,
        .resource_id = o->resource_id,
        .rect = o->rect,
    };
    return 0;
}

int hxfr_gpu_scanout_configure(struct hxfr_gpu *gpu, uint32_t id, uint32_t width, uint32_t height)
{
    if (id >= gpu->cfg.max_outputs) {
        return -EINVAL;
    }
    if ((width == 0) != (height == 0) || width > HXFR_GPU_MAX_DIM || height > HXFR_GPU_MAX_DIM) {
        return -ERANGE;
    }
    struct hxfr_gpu_output *o = &gpu->out[id];
    o->connected = width != 0;
    if (width != 0) {
        o->width = width;
        o->height = height;
    }
    gpu->events_read |= VIRTIO_GPU_EVENT_DISPLAY;
    hxfr__emit_scanout(gpu, id);
    hxfr__emit_display_changed(gpu);
    return 0;
}

int hxfr_gpu_cursor_get(const struct hxfr_gpu *gpu, uint32_t id, struct hxfr_gpu_cursor_info *out)
{
    if (id >= gpu->cfg.max_outputs) {
        return -EINVAL;
    }
    const struct hxfr_gpu_cursor *c = &gpu->out[id].cursor;
    *out = (struct hxfr_gpu_cursor_info){
        .visible = c->visible,
        .has_image = c->has_image,
        .x = c->x,
        .y = c->y,
        .hot_x = c->hot_x,
        .hot_y = c->hot_y,
        .image = c->image,
        .image_serial = c->serial,
    };
    return 0;
}

static void unbind(struct hxfr_gpu *gpu, uint32_t id)
{
    struct hxfr_gpu_output *o = &gpu->out[id];
    if (o->resource_id != 0) {
        struct hxfr_gpu_res *old = hxfr__res_find(gpu, o->resource_id);
        if (old != NULL) {
            old->scanouts &= ~(1u << id);
        }
    }
    o->resource_id = 0;
    o->rect = (struct hxfr_gpu_rect){0, 0, 0, 0};
}

uint32_t hxfr__scanout_set(struct hxfr_gpu *gpu, uint32_t id, uint32_t resource_id,
                           const struct hxfr_gpu_rect *r)
{
    if (id >= gpu->cfg.max_outputs) {
        gpu->stats.last_error = "scanout id out of range";
        return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
    }
    struct hxfr_gpu_output *o = &gpu->out[id];
    if (resource_id == 0) {
        /* The guest turns the scanout off. */
        bool was = o->resource_id != 0;
        unbind(gpu, id);
        if (was) {
            hxfr__emit_scanout(gpu, id);
        }
        return VIRTIO_GPU_RESP_OK_NODATA;
    }
    struct hxfr_gpu_res *res = hxfr__res_find(gpu, resource_id);
    if (res == NULL) {
        gpu->stats.last_error = "SET_SCANOUT of an unknown resource";
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    }
    if (!hxfr__rect_inside(r, res->width, res->height)) {
        gpu->stats.last_error = "SET_SCANOUT rectangle outside the resource";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    bool same = o->resource_id == resource_id && !memcmp(&o->rect, r, sizeof(*r));
    /* Rebinding replaces the old binding; nothing else holds on to it, so
     * repeating SET_SCANOUT cannot leak (the CVE-2021-3544 class). */
    unbind(gpu, id);
    o->resource_id = resource_id;
    o->rect = *r;
    res->scanouts |= 1u << id;
    if (!same) {
        hxfr__emit_scanout(gpu, id);
    }
    return VIRTIO_GPU_RESP_OK_NODATA;
}

void hxfr__scanout_forget_resource(struct hxfr_gpu *gpu, uint32_t resource_id)
{
    for (uint32_t i = 0; i < gpu->cfg.max_outputs; i++) {
        if (gpu->out[i].resource_id == resource_id) {
            unbind(gpu, i);
            hxfr__emit_scanout(gpu, i);
        }
    }
}

uint32_t hxfr__scanout_flush(struct hxfr_gpu *gpu, uint32_t resource_id,
                             const struct hxfr_gpu_rect *r)
{
    struct hxfr_gpu_res *res = hxfr__res_find(gpu, resource_id);
    if (res == NULL) {
        gpu->stats.last_error = "RESOURCE_FLUSH of an unknown resource";
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    }
    if (!hxfr__rect_inside(r, res->width, res->height)) {
        gpu->stats.last_error = "RESOURCE_FLUSH rectangle outside the resource";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    gpu->stats.flushes++;
    /* Every flush gets a new token, so that a late flush_done for an
     * earlier one (answered by a ring stop) cannot end this one's hold. */
    uint64_t token = ++gpu->flush_token;
    for (uint32_t i = 0; i < gpu->cfg.max_outputs; i++) {
        const struct hxfr_gpu_output *o = &gpu->out[i];
        if (o->resource_id != resource_id) {
            continue;
        }
        /* The part of the flush this scanout shows. */
        uint64_t x0 = r->x > o->rect.x ? r->x : o->rect.x;
        uint64_t y0 = r->y > o->rect.y ? r->y : o->rect.y;
        uint64_t x1 = (uint64_t)r->x + r->width;
        uint64_t y1 = (uint64_t)r->y + r->height;
        uint64_t sx1 = (uint64_t)o->rect.x + o->rect.width;
        uint64_t sy1 = (uint64_t)o->rect.y + o->rect.height;
        x1 = x1 < sx1 ? x1 : sx1;
        y1 = y1 < sy1 ? y1 : sy1;
        if (x1 <= x0 || y1 <= y0) {
            continue;
        }
        struct hxfr_gpu_rect c = {(uint32_t)x0, (uint32_t)y0, (uint32_t)(x1 - x0),
                                  (uint32_t)(y1 - y0)};
        hxfr__emit_flush(gpu, i, resource_id, &c, token);
    }
    return VIRTIO_GPU_RESP_OK_NODATA;
}

bool hxfr__cursor_update(struct hxfr_gpu *gpu, uint32_t id, uint32_t resource_id, uint32_t x,
                         uint32_t y, uint32_t hot_x, uint32_t hot_y)
{
    struct hxfr_gpu_cursor *c = &gpu->out[id].cursor;
    c->x = x;
    c->y = y;
    if (resource_id == 0) {
        c->visible = false;
        hxfr__emit_cursor(gpu, id, false);
        return true;
    }
    const struct hxfr_gpu_res *res = hxfr__res_find(gpu, resource_id);
    bool ok = res != NULL && res->width == HXFR_GPU_CURSOR_SIZE &&
              res->height == HXFR_GPU_CURSOR_SIZE && hot_x < HXFR_GPU_CURSOR_SIZE &&
              hot_y < HXFR_GPU_CURSOR_SIZE;
    if (!ok) {
        /* Not a 64x64 cursor (all 2D formats are 32 bpp): the image and
         * the shown state stay as they were, only the position moves. */
        gpu->stats.last_error = res == NULL ? "cursor resource unknown"
                                            : "cursor resource not 64x64 or hot spot outside";
        hxfr__emit_cursor(gpu, id, false);
        return false;
    }
    /* The image is the host copy (the guest transfers it first), copied
     * now: a later UNREF of the resource leaves the cursor intact. QEMU's
     * display takes A8R8G8B8 words, which is B8G8R8A8 in memory. */
    const uint8_t *src = res->pixels;
    for (uint32_t i = 0; i < HXFR_GPU_CURSOR_SIZE * HXFR_GPU_CURSOR_SIZE; i++) {
        const uint8_t *p = src + 4 * i;
        uint8_t b, g, r, a;
        switch (res->format) {
        case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
            b = p[0], g = p[1], r = p[2], a = p[3];
            break;
        case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
            b = p[0], g = p[1], r = p[2], a = 0xff;
            break;
        case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
            a = p[0], r = p[1], g = p[2], b = p[3];
            break;
        case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
            a = 0xff, r = p[1], g = p[2], b = p[3];
            break;
        case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
            r = p[0], g = p[1], b = p[2], a = p[3];
            break;
        case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
            a = 0xff, b = p[1], g = p[2], r = p[3];
            break;
        case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
            a = p[0], b = p[1], g = p[2], r = p[3];
            break;
        default: /* R8G8B8X8 */
            r = p[0], g = p[1], b = p[2], a = 0xff;
            break;
        }
        c->image[i] = (uint32_t)b | (uint32_t)g << 8 | (uint32_t)r << 16 | (uint32_t)a << 24;
    }
    c->resource_id = resource_id;
    c->hot_x = hot_x;
    c->hot_y = hot_y;
    c->has_image = true;
    c->visible = true;
    c->serial++;
    hxfr__emit_cursor(gpu, id, true);
    return true;
}

void hxfr__cursor_move(struct hxfr_gpu *gpu, uint32_t id, uint32_t x, uint32_t y)
{
    struct hxfr_gpu_cursor *c = &gpu->out[id].cursor;
    c->x = x;
    c->y = y;
    hxfr__emit_cursor(gpu, id, false);
}
