/* Resources of the virtio-gpu 2D device: a table of them, their host
 * copies, the guest backing each one names (resolved into our mapping of
 * guest RAM), transfers from backing to host copy, and the per-VM memory
 * cap. Every size the guest gives is checked in 64-bit arithmetic before
 * anything is allocated or touched. */
#include "gpu-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_gpu.h>

#include <hxfr/proto.h>

uint32_t hxfr__format_drm(uint32_t virtio_format)
{
    /* The DRM fourcc that names the same bytes in memory (DRM formats are
     * little-endian words: XRGB8888 is B, G, R, X in memory). */
    switch (virtio_format) {
    case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
        return HXFR_FORMAT_ARGB8888;
    case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
        return HXFR_FORMAT_XRGB8888;
    case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
        return 0x34324142; /* DRM_FORMAT_BGRA8888: bytes A, R, G, B */
    case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
        return 0x34325842; /* DRM_FORMAT_BGRX8888: bytes X, R, G, B */
    case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
        return HXFR_FORMAT_ABGR8888;
    case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
        return 0x34325852; /* DRM_FORMAT_RGBX8888: bytes X, B, G, R */
    case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
        return 0x34324152; /* DRM_FORMAT_RGBA8888: bytes A, B, G, R */
    case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
        return HXFR_FORMAT_XBGR8888;
    default:
        return 0;
    }
}

bool hxfr__rect_inside(const struct hxfr_gpu_rect *r, uint32_t width, uint32_t height)
{
    return r->width > 0 && r->height > 0 && (uint64_t)r->x + r->width <= width &&
           (uint64_t)r->y + r->height <= height;
}

static uint32_t bucket(const struct hxfr_gpu *gpu, uint32_t id)
{
    /* Guests hand out ids 1, 2, 3, ...: a multiplicative hash spreads them. */
    return (id * 2654435761u) & (gpu->table_size - 1);
}

struct hxfr_gpu_res *hxfr__res_find(const struct hxfr_gpu *gpu, uint32_t id)
{
    if (gpu->table == NULL) {
        return NULL;
    }
    for (struct hxfr_gpu_res *r = gpu->table[bucket(gpu, id)]; r != NULL; r = r->next) {
        if (r->id == id) {
            return r;
        }
    }
    return NULL;
}

static int grow_table(struct hxfr_gpu *gpu)
{
    uint32_t size = gpu->table_size ? gpu->table_size * 2 : 64;
    struct hxfr_gpu_res **t = calloc(size, sizeof(*t));
    if (t == NULL) {
        return -ENOMEM;
    }
    struct hxfr_gpu_res **old = gpu->table;
    uint32_t old_size = gpu->table_size;
    gpu->table = t;
    gpu->table_size = size;
    for (uint32_t i = 0; i < old_size; i++) {
        struct hxfr_gpu_res *r = old[i];
        while (r != NULL) {
            struct hxfr_gpu_res *next = r->next;
            uint32_t b = bucket(gpu, r->id);
            r->next = t[b];
            t[b] = r;
            r = next;
        }
    }
    free(old);
    return 0;
}

uint32_t hxfr__res_create(struct hxfr_gpu *gpu, uint32_t id, uint32_t format, uint32_t width,
                          uint32_t height)
{
    if (id == 0 || hxfr__res_find(gpu, id) != NULL) {
        gpu->stats.last_error = id == 0 ? "resource id 0" : "resource id already in use";
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    }
    uint32_t drm = hxfr__format_drm(format);
    if (drm == 0) {
        gpu->stats.last_error = "unknown format";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    if (width == 0 || height == 0 || width > HXFR_GPU_MAX_RESOURCE_DIM ||
        height > HXFR_GPU_MAX_RESOURCE_DIM) {
        gpu->stats.last_error = "resource size zero or too large";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    /* At most 16384 * 4 * 16384 = 1 GiB: cannot wrap 64 bits, and is
     * checked against the cap before any allocation. */
    uint64_t size = (uint64_t)width * 4 * height;
    uint64_t charge = size + HXFR_GPU_RESOURCE_OVERHEAD;
    if (gpu->n_resources >= gpu->cfg.max_resources ||
        charge > gpu->cfg.max_resource_memory - gpu->memory ||
        gpu->memory > gpu->cfg.max_resource_memory) {
        gpu->stats.last_error = "resource memory cap reached";
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    if (gpu->n_resources + 1 > gpu->table_size && grow_table(gpu) < 0) {
        gpu->stats.last_error = "out of memory";
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    struct hxfr_gpu_res *r = calloc(1, sizeof(*r));
    /* calloc: a new resource shows zeroes, never pixels of a freed one. */
    uint8_t *pixels = calloc(1, (size_t)size);
    if (r == NULL || pixels == NULL) {
        free(r);
        free(pixels);
        gpu->stats.last_error = "out of memory";
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    r->id = id;
    r->format = format;
    r->drm_format = drm;
    r->width = width;
    r->height = height;
    r->stride = width * 4;
    r->size = size;
    r->pixels = pixels;
    uint32_t b = bucket(gpu, id);
    r->next = gpu->table[b];
    gpu->table[b] = r;
    gpu->n_resources++;
    gpu->memory += charge;
    return VIRTIO_GPU_RESP_OK_NODATA;
}

void hxfr__res_detach(struct hxfr_gpu_res *res)
{
    free(res->entries);
    free(res->pieces);
    res->entries = NULL;
    res->pieces = NULL;
    res->n_entries = res->n_pieces = 0;
    res->backing_size = 0;
}

static void unlink_res(struct hxfr_gpu *gpu, struct hxfr_gpu_res *res)
{
    struct hxfr_gpu_res **pp = &gpu->table[bucket(gpu, res->id)];
    while (*pp != NULL && *pp != res) {
        pp = &(*pp)->next;
    }
    if (*pp == res) {
        *pp = res->next;
    }
}

static void free_res(struct hxfr_gpu *gpu, struct hxfr_gpu_res *res)
{
    gpu->memory -= res->size + HXFR_GPU_RESOURCE_OVERHEAD;
    gpu->n_resources--;
    hxfr__res_detach(res);
    free(res->pixels);
    free(res);
}

void hxfr__res_destroy(struct hxfr_gpu *gpu, struct hxfr_gpu_res *res)
{
    hxfr__emit_resource_destroy(gpu, res->id);
    hxfr__scanout_forget_resource(gpu, res->id);
    unlink_res(gpu, res);
    free_res(gpu, res);
}

void hxfr__res_destroy_all(struct hxfr_gpu *gpu)
{
    for (uint32_t i = 0; i < gpu->table_size; i++) {
        struct hxfr_gpu_res *r = gpu->table[i];
        while (r != NULL) {
            struct hxfr_gpu_res *next = r->next;
            free_res(gpu, r);
            r = next;
        }
        gpu->table[i] = NULL;
    }
}

/* Resolves the entries into pieces; returns false when an entry falls
 * outside guest RAM (res is left without pieces). */
static bool resolve(const struct hxfr_gpu *gpu, struct hxfr_gpu_res *res)
{
    struct hxfr_gpu_piece *pieces = NULL;
    uint32_t n = 0, cap = 0;
    uint64_t offset = 0;

    free(res->pieces);
    res->pieces = NULL;
    res->n_pieces = 0;
    res->backing_size = 0;
    for (uint32_t i = 0; i < res->n_entries; i++) {
        uint64_t gpa = res->entries[i].gpa;
        uint64_t left = res->entries[i].len;
        while (left > 0) {
            uint8_t *host;
            uint64_t got = hxfr__mem_gpa_span(gpu->mem, gpa, left, &host);
            if (got == 0) {
                free(pieces);
                return false;
            }
            if (n > 0 && pieces[n - 1].host + pieces[n - 1].len == host) {
                pieces[n - 1].len += got; /* adjacent in our mapping: one piece */
            } else {
                if (n == cap) {
                    uint32_t ncap = cap ? cap * 2 : 16;
                    struct hxfr_gpu_piece *p = realloc(pieces, ncap * sizeof(*p));
                    if (p == NULL) {
                        free(pieces);
                        return false;
                    }
                    pieces = p;
                    cap = ncap;
                }
                pieces[n++] = (struct hxfr_gpu_piece){host, offset, got};
            }
            offset += got;
            gpa += got;
            left -= got;
        }
    }
    res->pieces = pieces;
    res->n_pieces = n;
    res->backing_size = offset;
    return true;
}

uint32_t hxfr__res_attach(struct hxfr_gpu *gpu, struct hxfr_gpu_res *res,
                          struct hxfr_gpu_entry *entries, uint32_t n)
{
    if (res->entries != NULL) {
        /* Attaching twice leaked the first list in QEMU (CVE-2016-10214
         * class): refuse, keep the first. */
        gpu->stats.last_error = "backing already attached";
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        total += entries[i].len; /* n <= 16384 entries of < 2^32: no wrap */
    }
    if (total < res->size) {
        gpu->stats.last_error = "backing smaller than the resource";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    res->entries = entries;
    res->n_entries = n;
    if (!resolve(gpu, res)) {
        res->entries = NULL;
        res->n_entries = 0;
        gpu->stats.last_error = "backing outside guest RAM";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    return VIRTIO_GPU_RESP_OK_NODATA;
}

bool hxfr__res_resolve(const struct hxfr_gpu *gpu, struct hxfr_gpu_res *res)
{
    if (res->entries == NULL) {
        return true;
    }
    if (!resolve(gpu, res)) {
        hxfr__res_detach(res);
        return false;
    }
    return true;
}

/* The piece holding resource byte off (off < backing_size). */
static uint32_t find_piece(const struct hxfr_gpu_piece *p, uint32_t n, uint64_t off)
{
    uint32_t lo = 0, hi = n;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p[mid].offset <= off) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

void hxfr__res_gather(const struct hxfr_gpu_res *res, uint64_t off, uint8_t *dst, uint64_t len)
{
    if (len == 0) {
        return;
    }
    uint32_t i = find_piece(res->pieces, res->n_pieces, off);
    while (len > 0 && i < res->n_pieces) {
        const struct hxfr_gpu_piece *p = &res->pieces[i];
        uint64_t in = off - p->offset;
        uint64_t n = p->len - in;
        if (n > len) {
            n = len;
        }
        memcpy(dst, p->host + in, n);
        dst += n;
        off += n;
        len -= n;
        i++;
    }
}

uint32_t hxfr__res_transfer(struct hxfr_gpu *gpu, struct hxfr_gpu_res *res,
                            const struct hxfr_gpu_rect *r, uint64_t offset)
{
    if (res->pieces == NULL) {
        gpu->stats.last_error = "transfer without backing";
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    }
    if (!hxfr__rect_inside(r, res->width, res->height)) {
        gpu->stats.last_error = "transfer rectangle outside the resource";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    /* Row h of the rectangle comes from backing offset + h * stride (the
     * guest's offset names the first pixel). The last byte read must lie in
     * the backing; offset is any 64-bit value, so check it without wrap. */
    uint64_t row = (uint64_t)r->width * 4;
    uint64_t span = (uint64_t)(r->height - 1) * res->stride + row;
    if (offset > res->backing_size || span > res->backing_size - offset) {
        gpu->stats.last_error = "transfer reads past the backing";
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    uint8_t *dst = res->pixels + (uint64_t)r->y * res->stride + (uint64_t)r->x * 4;
    if (r->width == res->width) {
        /* Whole rows: one contiguous run on both sides. */
        hxfr__res_gather(res, offset, dst, (uint64_t)r->height * res->stride);
    } else {
        for (uint32_t h = 0; h < r->height; h++) {
            hxfr__res_gather(res, offset + (uint64_t)h * res->stride,
                             dst + (uint64_t)h * res->stride, row);
        }
    }
    gpu->stats.transfers++;
    gpu->stats.transfer_bytes += row * r->height;
    return VIRTIO_GPU_RESP_OK_NODATA;
}

void hxfr__res_info(const struct hxfr_gpu_res *res, struct hxfr_gpu_resource_info *info)
{
    *info = (struct hxfr_gpu_resource_info){
        .id = res->id,
        .width = res->width,
        .height = res->height,
        .virtio_format = res->format,
        .drm_format = res->drm_format,
        .stride = res->stride,
        .size = res->size,
        .host_copy = res->pixels,
        .pieces = res->pieces,
        .n_pieces = res->n_pieces,
        .backing_size = res->backing_size,
        .scanouts = res->scanouts,
    };
}

int hxfr_gpu_resource_get(const struct hxfr_gpu *gpu, uint32_t id,
                          struct hxfr_gpu_resource_info *out)
{
    const struct hxfr_gpu_res *res = hxfr__res_find(gpu, id);
    if (res == NULL) {
        return -ENOENT;
    }
    hxfr__res_info(res, out);
    return 0;
}

const uint8_t *hxfr_gpu_backing_at(const struct hxfr_gpu_resource_info *info, uint64_t offset,
                                   uint64_t *len)
{
    if (info->pieces == NULL || offset >= info->backing_size) {
        *len = 0;
        return NULL;
    }
    uint32_t i = find_piece(info->pieces, info->n_pieces, offset);
    const struct hxfr_gpu_piece *p = &info->pieces[i];
    *len = p->len - (offset - p->offset);
    return p->host + (offset - p->offset);
}

int hxfr_gpu_resource_read(const struct hxfr_gpu *gpu, uint32_t id, const struct hxfr_gpu_rect *r,
                           uint8_t *dst, uint32_t dst_stride)
{
    const struct hxfr_gpu_res *res = hxfr__res_find(gpu, id);
    if (res == NULL) {
        return -ENOENT;
    }
    if (res->pieces == NULL) {
        return -ENODATA;
    }
    if (!hxfr__rect_inside(r, res->width, res->height) || dst_stride < (uint64_t)r->width * 4) {
        return -EINVAL;
    }
    /* backing_size >= size, so every row of the resource is there. Whole
     * rows into a buffer of the same stride: one run. */
    if (r->x == 0 && r->width == res->width && dst_stride == res->stride) {
        hxfr__res_gather(res, (uint64_t)r->y * res->stride, dst, (uint64_t)r->height * res->stride);
        return 0;
    }
    for (uint32_t h = 0; h < r->height; h++) {
        hxfr__res_gather(res, (uint64_t)(r->y + h) * res->stride + (uint64_t)r->x * 4,
                         dst + (uint64_t)h * dst_stride, (uint64_t)r->width * 4);
    }
    return 0;
}

/* Backing pieces point into guest RAM: a reader on another thread keeps
 * that mapping with a hold (mem.c retires a held table instead of
 * unmapping it). */
uint64_t hxfr_gpu_mem_hold(struct hxfr_gpu *gpu)
{
    return hxfr__mem_hold(gpu->mem);
}

int hxfr_gpu_mem_release(struct hxfr_gpu *gpu, uint64_t hold)
{
    return hxfr__mem_release(gpu->mem, hold);
}
