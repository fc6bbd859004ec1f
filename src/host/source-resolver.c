/* Frame source: a resource the embedding VMM resolves to pixels
 * (struct hxfr_host_resolver in include/hxfr/host.h). The embedder's
 * acquire and release run on the loop thread; the worker reads the pixels
 * in between, without copying them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"

static int32_t resolver_acquire(struct hxfr__frame *f, const struct hxfr__source_args *a)
{
    const struct hxfr_host_resolver *rs = a->resolver;
    const struct hxfr_frame_request *req = a->req;

    memset(&f->ext, 0, sizeof(f->ext));
    int r = rs->acquire(rs->opaque, req->resource_id, req, &f->ext);
    if (r < 0) {
        snprintf(a->why, a->why_len, "resource %u: %s", req->resource_id, strerror(-r));
        return r == -ENOENT    ? HXFR_STATUS_RESOURCE_NOT_FOUND
               : r == -ENOTSUP ? HXFR_STATUS_NOT_GPU_TEXTURE
                               : HXFR_STATUS_INTERNAL;
    }
    /* From here on the resource is ours until release: the description is
     * the embedder's, checked like a client's. */
    const struct hxfr_host_pixels *px = &f->ext;
    struct hxfr_geometry g;
    r = hxfr__limits_check(a->limits, px->format, px->width, px->height, px->strides[0], &g);
    bool ok = r == 0;
    for (uint32_t i = 0; ok && i < g.num_planes; i++) {
        ok = px->planes[i] != NULL && px->strides[i] >= g.stride[i];
    }
    if (!ok) {
        snprintf(a->why, a->why_len, "resource %u: unusable pixels %ux%u format 0x%08x: %s",
                 req->resource_id, px->width, px->height, px->format,
                 r < 0 ? hxfr_strerror(r) : "missing plane or short stride");
        rs->release(rs->opaque, &f->ext);
        return r < 0 ? hxfr__limits_status(r) : HXFR_STATUS_BAD_GEOMETRY;
    }
    memset(&f->img, 0, sizeof(f->img));
    f->img.format = px->format;
    f->img.width = px->width;
    f->img.height = px->height;
    for (uint32_t i = 0; i < g.num_planes; i++) {
        f->img.planes[i] = px->planes[i];
        f->img.strides[i] = px->strides[i];
    }
    f->resolver = rs;
    return HXFR_STATUS_OK;
}

static void resolver_release(struct hxfr__frame *f)
{
    if (f->resolver) {
        f->resolver->release(f->resolver->opaque, &f->ext);
        f->resolver = NULL;
    }
}

const struct hxfr__source_ops hxfr__source_resolver = {
    .version = HXFR__SOURCE_OPS_VERSION,
    .name = "resolver",
    .pixels = HXFR__PIXELS_CPU,
    .acquire = resolver_acquire,
    .release = resolver_release,
};
