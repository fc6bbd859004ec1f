/* The frame sources (send.h): --source NAME[:ARG] picks one from this
 * list. A new kind of source is one more file with its ops and one more
 * line here. */
#include <errno.h>
#include <string.h>

#include "send.h"

static const struct send_source_ops *const sources[] = {
    &send_pattern_source,
    &send_y4m_source,
    &send_raw_source,
#if HXFR_SEND_HAVE_DRM
    &send_drm_source,
#endif
};
#define NSOURCES (sizeof(sources) / sizeof(sources[0]))

/* The ops whose name spec starts with, and where its ARG starts (NULL
 * without one). */
static const struct send_source_ops *lookup(const char *spec, const char **arg)
{
    for (size_t i = 0; i < NSOURCES; i++) {
        const struct send_source_ops *ops = sources[i];
        size_t n = strlen(ops->name);
        if (ops->version != SEND_SOURCE_OPS_VERSION || strncmp(spec, ops->name, n) != 0) {
            continue;
        }
        if (spec[n] == ':') {
            *arg = spec + n + 1;
            return ops;
        }
        if (spec[n] == '\0' && !ops->needs_arg) {
            *arg = NULL;
            return ops;
        }
    }
    return NULL;
}

struct send_source *send_source_open(struct send_args *a)
{
    const char *arg;
    const struct send_source_ops *ops = lookup(a->source, &arg);
    if (!ops) {
        fprintf(stderr, "hxfr-send: unknown source '%s' (", a->source);
        for (size_t i = 0; i < NSOURCES; i++) {
            fprintf(stderr, "%s%s", i ? ", " : "", sources[i]->form);
        }
        fprintf(stderr, ")\n");
        errno = EINVAL;
        return NULL;
    }
    return ops->open(arg, a);
}

int send_source_read(struct send_source *src, const struct hxfr_geometry *g, uint8_t *buf,
                     uint64_t index)
{
    return src->ops->read(src, g, buf, index);
}

void send_source_close(struct send_source *src)
{
    if (src) {
        src->ops->close(src);
    }
}
