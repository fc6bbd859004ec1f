/* --source pattern[:desktop|static|busy]: the built-in test screen
 * (lib/pattern), rendered straight into the frame buffer or slot. */
#include <errno.h>
#include <stdlib.h>

#include "pattern.h"
#include "send.h"

struct pattern_source {
    struct send_source base;
    enum hxfr_pattern_variant variant;
};

static struct send_source *pattern_open(const char *arg, struct send_args *a)
{
    (void)a;
    enum hxfr_pattern_variant variant = HXFR_PATTERN_DESKTOP;
    if (arg) {
        int v = hxfr_pattern_variant_from_name(arg);
        if (v < 0) {
            fprintf(stderr, "hxfr-send: unknown pattern '%s' (desktop, static, busy)\n", arg);
            errno = EINVAL;
            return NULL;
        }
        variant = (enum hxfr_pattern_variant)v;
    }
    struct pattern_source *p = calloc(1, sizeof(*p));
    if (!p) {
        fprintf(stderr, "hxfr-send: out of memory\n");
        return NULL;
    }
    p->base.ops = &send_pattern_source;
    p->variant = variant;
    return &p->base;
}

static int pattern_read(struct send_source *src, const struct hxfr_geometry *g, uint8_t *buf,
                        uint64_t index)
{
    struct pattern_source *p = (struct pattern_source *)src;
    uint8_t *planes[3] = {NULL, NULL, NULL};
    for (uint32_t i = 0; i < g->num_planes; i++) {
        planes[i] = buf + g->offset[i];
    }
    int r =
        hxfr_pattern_render(p->variant, g->format, g->width, g->height, index, planes, g->stride);
    return r < 0 ? -EINVAL : 1;
}

static void pattern_close(struct send_source *src)
{
    free(src);
}

const struct send_source_ops send_pattern_source = {
    .version = SEND_SOURCE_OPS_VERSION,
    .name = "pattern",
    .form = "pattern",
    .open = pattern_open,
    .read = pattern_read,
    .close = pattern_close,
};
