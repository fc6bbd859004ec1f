/* Frame source: pixels the embedding VMM lends for one of its scanouts
 * (include/hxfr/host.h "Scanouts the embedder publishes"): a published
 * frame, or the scanout's current picture for a keepalive or an IDR.
 * Usually scattered over guest RAM; the worker's converter reads them in
 * place. They go back to the embedder as soon as the converter is done
 * (consumed): that completes the guest's flush, so a guest is paced by
 * the encoder and never draws into a picture still being read. */
#include <string.h>

#include "frame.h"

static int32_t gpu_acquire(struct hxfr__frame *f, const struct hxfr__source_args *a)
{
    f->ext = *a->lent;
    int32_t st = hxfr__frame_lend(f, &f->ext, a->limits, a->why, a->why_len);
    if (st != HXFR_STATUS_OK) {
        /* Not taken: the caller still owns the pixels. */
        return st;
    }
    f->lender = a->scanout_ops;
    f->lender_id = a->scanout_id;
    f->lent = true;
    /* consumed() gives the pixels back before the encode proper. */
    f->early_release = true;
    return HXFR_STATUS_OK;
}

static void give_back(struct hxfr__frame *f)
{
    if (f->lent) {
        f->lent = false;
        f->lender->release(f->lender->opaque, f->lender_id, &f->ext);
    }
}

static bool gpu_consumed(struct hxfr__frame *f)
{
    give_back(f);
    return false; /* no SLOT_RELEASE: the peer is the VMM itself */
}

static void gpu_release(struct hxfr__frame *f)
{
    give_back(f);
}

const struct hxfr__source_ops hxfr__source_gpu = {
    .version = HXFR__SOURCE_OPS_VERSION,
    .name = "gpu",
    .pixels = HXFR__PIXELS_CPU,
    .acquire = gpu_acquire,
    .consumed = gpu_consumed,
    .release = gpu_release,
};
