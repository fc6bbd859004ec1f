/* Frame source: a resource the embedding VMM resolves to pixels
 * (struct hxfr_host_resolver in include/hxfr/host.h), contiguous or
 * scattered over guest RAM (a virtio-gpu resource's backing). The
 * embedder's acquire and release run on the loop thread; the worker's
 * converter reads the pixels in between, in place. */
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
               : r == -ENODATA ? HXFR_STATUS_NO_SURFACE
                               : HXFR_STATUS_INTERNAL;
    }
    /* From here on the resource is ours until release: the description is
     * the embedder's, checked like a client's. */
    char why[120];
    int32_t st = hxfr__frame_lend(f, &f->ext, a->limits, why, sizeof(why));
    if (st != HXFR_STATUS_OK) {
        snprintf(a->why, a->why_len, "resource %u: %s", req->resource_id, why);
        rs->release(rs->opaque, &f->ext);
        return st;
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
