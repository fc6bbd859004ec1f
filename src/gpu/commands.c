/* The virtio-gpu commands (virtio spec 5.7, 2D subset): each one is
 * copied out of the guest's buffers into a zeroed local struct once,
 * checked there, carried out by resource.c / scanout.c, and answered with
 * a reply built in zeroed local memory (nothing of ours reaches the guest
 * but the reply's own fields). */
#include "gpu-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_gpu.h>

#include <hxfr/proto.h>

#include "edid.h"

#define HDR_SIZE 24u

void hxfr__gpu_config_init(struct hxfr_gpu_config *cfg)
{
    *cfg = (struct hxfr_gpu_config){
        .max_outputs = HXFR_GPU_MAX_SCANOUTS,
        .max_resource_memory = 256ull << 20,
        .max_resources = 65536,
        .width = 1920,
        .height = 1080,
    };
}

int hxfr__gpu_init(struct hxfr_gpu *gpu, const struct hxfr_gpu_config *cfg, struct hxfr_mem *mem)
{
    memset(gpu, 0, sizeof(*gpu));
    if (cfg->max_outputs == 0 || cfg->max_outputs > HXFR_GPU_MAX_SCANOUTS || cfg->width == 0 ||
        cfg->height == 0 || cfg->width > HXFR_GPU_MAX_DIM || cfg->height > HXFR_GPU_MAX_DIM ||
        cfg->max_resources == 0) {
        return -EINVAL;
    }
    gpu->cfg = *cfg;
    gpu->mem = mem;
    hxfr__gpu_outputs_init(gpu);
    return 0;
}

void hxfr__gpu_finish(struct hxfr_gpu *gpu)
{
    hxfr__res_destroy_all(gpu);
    free(gpu->table);
    gpu->table = NULL;
    gpu->table_size = 0;
}

void hxfr__gpu_reset(struct hxfr_gpu *gpu)
{
    hxfr__gpu_unhold(gpu);
    hxfr__res_destroy_all(gpu);
    for (uint32_t i = 0; i < HXFR_GPU_MAX_SCANOUTS; i++) {
        struct hxfr_gpu_output *o = &gpu->out[i];
        o->resource_id = 0;
        o->rect = (struct hxfr_gpu_rect){0, 0, 0, 0};
        memset(&o->cursor, 0, sizeof(o->cursor));
    }
    gpu->edid = false;
    gpu->stats.resets++;
    hxfr__emit_reset(gpu);
}

void hxfr__gpu_mem_changed(struct hxfr_gpu *gpu)
{
    for (uint32_t i = 0; i < gpu->table_size; i++) {
        for (struct hxfr_gpu_res *r = gpu->table[i]; r != NULL; r = r->next) {
            hxfr__res_resolve(gpu, r);
        }
    }
}

int hxfr__gpu_get_config(struct hxfr_gpu *gpu, uint32_t offset, uint8_t *buf, uint32_t len)
{
    uint8_t cfg[16];
    hxfr_put_u32(cfg, gpu->events_read);
    hxfr_put_u32(cfg + 4, 0);
    hxfr_put_u32(cfg + 8, gpu->cfg.max_outputs);
    hxfr_put_u32(cfg + 12, 0); /* num_capsets: no virgl */
    if (offset > sizeof(cfg) || len > sizeof(cfg) - offset) {
        return -EINVAL;
    }
    memcpy(buf, cfg + offset, len);
    return 0;
}

int hxfr__gpu_set_config(struct hxfr_gpu *gpu, uint32_t offset, const uint8_t *buf, uint32_t len)
{
    /* Only events_clear (bytes 4-7) is writable by the driver. QEMU
     * writes the whole 16 bytes: the read-only fields in such a write are
     * ignored, a write that misses events_clear is refused. */
    if (offset > 16 || len > 16 - offset || offset > 4 || offset + len < 8) {
        return -EINVAL;
    }
    gpu->events_read &= ~hxfr_get_u32(buf + (4 - offset));
    return 0;
}

/* A reply under construction: zeroed, header filled from the request. */
struct reply {
    uint8_t b[HDR_SIZE + 8 + 1024];
    uint32_t len;
};

static void reply_start(struct reply *rp, const uint8_t *hdr, uint32_t type, uint32_t len)
{
    memset(rp->b, 0, len);
    hxfr_put_u32(rp->b, type);
    /* A fenced command is done when we answer (a held flush is answered
     * when its hold ends): echo the fence. ctx_id is 0 without virgl; ring_idx
     * needs context init, never offered. */
    uint32_t flags = hxfr_get_u32(hdr + 4);
    if (flags & VIRTIO_GPU_FLAG_FENCE) {
        hxfr_put_u32(rp->b + 4, VIRTIO_GPU_FLAG_FENCE);
        hxfr_put_u64(rp->b + 8, hxfr_get_u64(hdr + 8));
    }
    hxfr_put_u32(rp->b + 16, hxfr_get_u32(hdr + 16));
    rp->len = len;
}

static const char *cmd_name(uint32_t type)
{
    switch (type) {
    case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
        return "GET_DISPLAY_INFO";
    case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
        return "RESOURCE_CREATE_2D";
    case VIRTIO_GPU_CMD_RESOURCE_UNREF:
        return "RESOURCE_UNREF";
    case VIRTIO_GPU_CMD_SET_SCANOUT:
        return "SET_SCANOUT";
    case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
        return "RESOURCE_FLUSH";
    case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
        return "TRANSFER_TO_HOST_2D";
    case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
        return "RESOURCE_ATTACH_BACKING";
    case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
        return "RESOURCE_DETACH_BACKING";
    case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
        return "GET_CAPSET_INFO";
    case VIRTIO_GPU_CMD_GET_CAPSET:
        return "GET_CAPSET";
    case VIRTIO_GPU_CMD_GET_EDID:
        return "GET_EDID";
    case VIRTIO_GPU_CMD_UPDATE_CURSOR:
        return "UPDATE_CURSOR";
    case VIRTIO_GPU_CMD_MOVE_CURSOR:
        return "MOVE_CURSOR";
    default:
        return "command";
    }
}

static void note_error(struct hxfr_gpu *gpu, uint32_t cmd, uint32_t resp)
{
    gpu->stats.errors++;
    gpu->stats.last_error_cmd = cmd;
    gpu->stats.last_error_resp = resp;
    if (gpu->log != NULL) {
        char line[160];
        snprintf(line, sizeof(line), "%s (0x%04x) refused with 0x%04x: %s", cmd_name(cmd), cmd,
                 resp, gpu->stats.last_error ? gpu->stats.last_error : "invalid");
        gpu->log(gpu->log_data, line);
    }
}

static void rect_at(struct hxfr_gpu_rect *r, const uint8_t *p)
{
    r->x = hxfr_get_u32(p);
    r->y = hxfr_get_u32(p + 4);
    r->width = hxfr_get_u32(p + 8);
    r->height = hxfr_get_u32(p + 12);
}

static void display_info(struct hxfr_gpu *gpu, struct reply *rp)
{
    /* pmodes[16] of {rect, enabled, flags} after the header. Connected
     * outputs sit side by side, left to right, as a desktop would. */
    uint32_t x = 0;
    for (uint32_t i = 0; i < gpu->cfg.max_outputs; i++) {
        const struct hxfr_gpu_output *o = &gpu->out[i];
        uint8_t *m = rp->b + HDR_SIZE + 24 * i;
        if (!o->connected) {
            continue;
        }
        hxfr_put_u32(m, x);
        hxfr_put_u32(m + 8, o->width);
        hxfr_put_u32(m + 12, o->height);
        hxfr_put_u32(m + 16, 1);
        x += o->width;
    }
}

/* ATTACH_BACKING's entries follow the fixed part: copied into our own
 * array before any is looked at. */
static uint32_t attach_backing(struct hxfr_gpu *gpu, const struct hxfr_vring_elem *e,
                               uint32_t resource_id, uint32_t n)
{
    struct hxfr_gpu_res *res = hxfr__res_find(gpu, resource_id);
    if (res == NULL) {
        gpu->stats.last_error = "ATTACH_BACKING of an unknown resource";
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    }
    if (n == 0 || n > HXFR_GPU_MAX_BACKING_ENTRIES) {
        gpu->stats.last_error = "nr_entries zero or above the cap";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    uint64_t bytes = (uint64_t)n * 16;
    if (e->out_bytes < HDR_SIZE + 8 + bytes) {
        gpu->stats.last_error = "fewer entries than nr_entries";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    uint8_t *raw = malloc(bytes);
    struct hxfr_gpu_entry *entries = malloc(n * sizeof(*entries));
    if (raw == NULL || entries == NULL) {
        free(raw);
        free(entries);
        gpu->stats.last_error = "out of memory";
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    hxfr__elem_read(e, HDR_SIZE + 8, raw, bytes);
    for (uint32_t i = 0; i < n; i++) {
        entries[i].gpa = hxfr_get_u64(raw + 16 * i);
        entries[i].len = hxfr_get_u32(raw + 16 * i + 8);
    }
    free(raw);
    uint32_t resp = hxfr__res_attach(gpu, res, entries, n);
    if (resp != VIRTIO_GPU_RESP_OK_NODATA) {
        free(entries);
    }
    return resp;
}

/* The fixed size of each command's request, header included. */
static uint32_t request_size(uint32_t type)
{
    switch (type) {
    case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
        return HDR_SIZE;
    case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
        return HDR_SIZE + 16;
    case VIRTIO_GPU_CMD_RESOURCE_UNREF:
    case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
    case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
    case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
    case VIRTIO_GPU_CMD_GET_CAPSET:
    case VIRTIO_GPU_CMD_GET_EDID:
        return HDR_SIZE + 8;
    case VIRTIO_GPU_CMD_SET_SCANOUT:
    case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
        return HDR_SIZE + 24;
    case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
        return HDR_SIZE + 32;
    default:
        return HDR_SIZE;
    }
}

uint32_t hxfr__gpu_ctrl(struct hxfr_gpu *gpu, const struct hxfr_vring_elem *e)
{
    /* The largest fixed request is 56 bytes; zeroes past what the guest
     * sent, and never more than it sent is trusted (checked below). */
    uint8_t req[64];
    memset(req, 0, sizeof(req));
    uint64_t got = hxfr__elem_read(e, 0, req, sizeof(req));
    struct reply rp;
    uint32_t type = hxfr_get_u32(req);
    uint32_t resp = VIRTIO_GPU_RESP_OK_NODATA;
    const uint8_t *p = req + HDR_SIZE;
    struct hxfr_gpu_rect r;

    gpu->stats.commands++;
    gpu->stats.last_error = NULL;
    if (got < HDR_SIZE) {
        /* Not even a header: the reply's fence fields stay zero. */
        memset(req, 0, sizeof(req));
        gpu->stats.last_error = "request shorter than the 24-byte header";
        resp = VIRTIO_GPU_RESP_ERR_UNSPEC;
        goto error;
    }
    if (got < request_size(type)) {
        gpu->stats.last_error = "request shorter than its command";
        resp = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        goto error;
    }
    switch (type) {
    case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
        reply_start(&rp, req, VIRTIO_GPU_RESP_OK_DISPLAY_INFO, HDR_SIZE + 24 * 16);
        display_info(gpu, &rp);
        gpu->events_read &= ~(uint32_t)VIRTIO_GPU_EVENT_DISPLAY;
        goto send;
    case VIRTIO_GPU_CMD_GET_EDID: {
        uint32_t scanout = hxfr_get_u32(p);
        if (!gpu->edid) {
            gpu->stats.last_error = "GET_EDID without the EDID feature";
            resp = VIRTIO_GPU_RESP_ERR_UNSPEC;
            break;
        }
        if (scanout >= gpu->cfg.max_outputs) {
            gpu->stats.last_error = "scanout id out of range";
            resp = VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
            break;
        }
        const struct hxfr_gpu_output *o = &gpu->out[scanout];
        reply_start(&rp, req, VIRTIO_GPU_RESP_OK_EDID, HDR_SIZE + 8 + 1024);
        /* A disconnected output still describes the monitor it would be. */
        size_t n = hxfr__edid_build(rp.b + HDR_SIZE + 8, o->width ? o->width : gpu->cfg.width,
                                    o->height ? o->height : gpu->cfg.height, scanout);
        hxfr_put_u32(rp.b + HDR_SIZE, (uint32_t)n);
        goto send;
    }
    case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
        resp = hxfr__res_create(gpu, hxfr_get_u32(p), hxfr_get_u32(p + 4), hxfr_get_u32(p + 8),
                                hxfr_get_u32(p + 12));
        break;
    case VIRTIO_GPU_CMD_RESOURCE_UNREF: {
        struct hxfr_gpu_res *res = hxfr__res_find(gpu, hxfr_get_u32(p));
        if (res == NULL) {
            gpu->stats.last_error = "UNREF of an unknown resource";
            resp = VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        } else {
            hxfr__res_destroy(gpu, res);
        }
        break;
    }
    case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
        resp = attach_backing(gpu, e, hxfr_get_u32(p), hxfr_get_u32(p + 4));
        break;
    case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING: {
        struct hxfr_gpu_res *res = hxfr__res_find(gpu, hxfr_get_u32(p));
        if (res == NULL) {
            gpu->stats.last_error = "DETACH_BACKING of an unknown resource";
            resp = VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        } else if (res->entries == NULL) {
            gpu->stats.last_error = "DETACH_BACKING without backing";
            resp = VIRTIO_GPU_RESP_ERR_UNSPEC;
        } else {
            hxfr__res_detach(res);
        }
        break;
    }
    case VIRTIO_GPU_CMD_SET_SCANOUT:
        rect_at(&r, p);
        resp = hxfr__scanout_set(gpu, hxfr_get_u32(p + 16), hxfr_get_u32(p + 20), &r);
        break;
    case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
        rect_at(&r, p);
        resp = hxfr__scanout_flush(gpu, hxfr_get_u32(p + 16), &r);
        break;
    case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: {
        rect_at(&r, p);
        struct hxfr_gpu_res *res = hxfr__res_find(gpu, hxfr_get_u32(p + 24));
        if (res == NULL) {
            gpu->stats.last_error = "TRANSFER of an unknown resource";
            resp = VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        } else {
            resp = hxfr__res_transfer(gpu, res, &r, hxfr_get_u64(p + 16));
        }
        break;
    }
    case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
    case VIRTIO_GPU_CMD_GET_CAPSET:
        /* num_capsets is 0: no index or id is valid (QEMU answered some of
         * these from uninitialised memory: CVE-2016-10028, -2021-3546). */
        gpu->stats.last_error = "no capsets";
        resp = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        break;
    default:
        /* 3D, blob, UUID and cursor commands on the control queue: not
         * offered, not accepted. */
        gpu->stats.last_error = "command not supported";
        resp = VIRTIO_GPU_RESP_ERR_UNSPEC;
        break;
    }
    if (resp == VIRTIO_GPU_RESP_OK_NODATA) {
        reply_start(&rp, req, resp, HDR_SIZE);
        goto send;
    }
error:
    note_error(gpu, type, resp);
    reply_start(&rp, req, resp, HDR_SIZE);
send:
    /* A reply larger than the room the guest gave is cut to fit; the used
     * length says how much was written. */
    return (uint32_t)hxfr__elem_write(e, rp.b, rp.len);
}

void hxfr__gpu_cursor_cmd(struct hxfr_gpu *gpu, const struct hxfr_vring_elem *e)
{
    uint8_t req[56];
    memset(req, 0, sizeof(req));
    uint64_t got = hxfr__elem_read(e, 0, req, sizeof(req));
    uint32_t type = hxfr_get_u32(req);
    const uint8_t *p = req + HDR_SIZE;
    uint32_t scanout = hxfr_get_u32(p);

    gpu->stats.cursor_commands++;
    gpu->stats.last_error = NULL;
    if (got < HDR_SIZE + 16 || (type == VIRTIO_GPU_CMD_UPDATE_CURSOR && got < HDR_SIZE + 32)) {
        gpu->stats.last_error = "cursor request too short";
    } else if (type != VIRTIO_GPU_CMD_UPDATE_CURSOR && type != VIRTIO_GPU_CMD_MOVE_CURSOR) {
        gpu->stats.last_error = "not a cursor command";
    } else if (scanout >= gpu->cfg.max_outputs) {
        gpu->stats.last_error = "scanout id out of range";
    } else if (type == VIRTIO_GPU_CMD_MOVE_CURSOR) {
        hxfr__cursor_move(gpu, scanout, hxfr_get_u32(p + 4), hxfr_get_u32(p + 8));
        return;
    } else if (hxfr__cursor_update(gpu, scanout, hxfr_get_u32(p + 16), hxfr_get_u32(p + 4),
                                   hxfr_get_u32(p + 8), hxfr_get_u32(p + 20),
                                   hxfr_get_u32(p + 24))) {
        return;
    }
    gpu->stats.cursor_errors++;
    if (gpu->log != NULL) {
        char line[128];
        snprintf(line, sizeof(line), "%s (0x%04x) on the cursor queue ignored: %s", cmd_name(type),
                 type, gpu->stats.last_error);
        gpu->log(gpu->log_data, line);
    }
}
