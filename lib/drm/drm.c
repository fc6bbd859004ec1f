/* Guest-side DRM helpers (see hxfr-drm.h). The connector and resource
 * ioctls come in two passes: the first asks for the counts, the second
 * fills arrays of that size (retried if the counts grew meanwhile, as a
 * hot-plug can make them). */
#include "hxfr-drm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm.h>
#include <virtgpu_drm.h>

#define CONNECTOR_VIRTUAL 15 /* DRM_MODE_CONNECTOR_VIRTUAL */
#define FOURCC_XRGB8888   0x34325258u

static int xioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do {
        r = ioctl(fd, req, arg);
    } while (r < 0 && (errno == EINTR || errno == EAGAIN));
    return r < 0 ? -errno : 0;
}

int hxfr_drm_open(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static uint64_t ptr(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

/* The connector ids of the card (malloc'd; *n of them). */
static int connectors(int fd, uint32_t **ids, uint32_t *n)
{
    for (int tries = 0; tries < 5; tries++) {
        struct drm_mode_card_res res = {0};
        int err = xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res);
        if (err < 0) {
            return err;
        }
        uint32_t count = res.count_connectors;
        uint32_t *c = calloc(count ? count : 1, sizeof(*c));
        if (c == NULL) {
            return -ENOMEM;
        }
        struct drm_mode_card_res res2 = {.connector_id_ptr = ptr(c), .count_connectors = count};
        err = xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res2);
        if (err < 0 || res2.count_connectors > count) {
            free(c);
            if (err < 0) {
                return err;
            }
            continue;
        }
        *ids = c;
        *n = res2.count_connectors;
        return 0;
    }
    return -EAGAIN;
}

/* One connector with its modes (malloc'd into *modes). */
static int connector(int fd, uint32_t id, struct drm_mode_get_connector *out,
                     struct drm_mode_modeinfo **modes)
{
    for (int tries = 0; tries < 5; tries++) {
        struct drm_mode_get_connector c = {.connector_id = id};
        int err = xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c);
        if (err < 0) {
            return err;
        }
        uint32_t nmodes = c.count_modes;
        struct drm_mode_modeinfo *m = calloc(nmodes ? nmodes : 1, sizeof(*m));
        if (m == NULL) {
            return -ENOMEM;
        }
        struct drm_mode_get_connector c2 = {
            .connector_id = id, .modes_ptr = ptr(m), .count_modes = nmodes};
        err = xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c2);
        if (err < 0 || c2.count_modes > nmodes) {
            free(m);
            if (err < 0) {
                return err;
            }
            continue;
        }
        *out = c2;
        *modes = m;
        return 0;
    }
    return -EAGAIN;
}

/* The CRTC the connector's encoder drives, or the first it can drive. */
static int crtc_of(int fd, const struct drm_mode_get_connector *c, uint32_t *crtc)
{
    struct drm_mode_get_encoder e = {.encoder_id = c->encoder_id};
    if (c->encoder_id == 0) {
        /* The kernel fills the array only when it is large enough for
         * all of them; it says how many there are either way. */
        uint32_t enc[8] = {0};
        struct drm_mode_get_connector c2 = {
            .connector_id = c->connector_id, .encoders_ptr = ptr(enc), .count_encoders = 8};
        int err = xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c2);
        if (err < 0) {
            return err;
        }
        if (c2.count_encoders == 0 || c2.count_encoders > 8) {
            return -ENODEV;
        }
        e.encoder_id = enc[0];
    }
    int err = xioctl(fd, DRM_IOCTL_MODE_GETENCODER, &e);
    if (err < 0) {
        return err;
    }
    if (e.crtc_id != 0) {
        *crtc = e.crtc_id;
        return 0;
    }
    /* Not driving one yet: the first CRTC it may use. */
    uint32_t crtcs[32] = {0};
    struct drm_mode_card_res res = {.crtc_id_ptr = ptr(crtcs), .count_crtcs = 32};
    err = xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res);
    if (err < 0) {
        return err;
    }
    if (res.count_crtcs > 32) {
        return -ENODEV; /* not filled in; virtio-gpu has at most 16 */
    }
    for (uint32_t i = 0; i < res.count_crtcs; i++) {
        if (e.possible_crtcs & (1u << i)) {
            *crtc = crtcs[i];
            return 0;
        }
    }
    return -ENODEV;
}

int hxfr_drm_output_find(int fd, const char *name, uint32_t width, uint32_t height,
                         struct hxfr_drm_output *out)
{
    uint32_t *ids = NULL, n = 0;
    memset(out, 0, sizeof(*out));
    int err = connectors(fd, &ids, &n);
    if (err < 0) {
        return err;
    }
    err = -ENOENT;
    for (uint32_t i = 0; i < n && err == -ENOENT; i++) {
        struct drm_mode_get_connector c;
        struct drm_mode_modeinfo *modes = NULL;
        if (connector(fd, ids[i], &c, &modes) < 0) {
            continue;
        }
        char cname[32];
        snprintf(cname, sizeof(cname), "%s-%u",
                 c.connector_type == CONNECTOR_VIRTUAL ? "Virtual" : "Other", c.connector_type_id);
        if (strcmp(cname, name) == 0) {
            snprintf(out->name, sizeof(out->name), "%s", cname);
            out->connector_id = c.connector_id;
            out->connected = c.connection == 1; /* DRM_MODE_CONNECTED */
            err = -ERANGE;
            for (uint32_t m = 0; m < c.count_modes; m++) {
                bool want = (width == 0 && height == 0)
                                ? (modes[m].type & DRM_MODE_TYPE_PREFERRED) != 0
                                : modes[m].hdisplay == width && modes[m].vdisplay == height;
                if (want) {
                    out->mode = modes[m];
                    err = 0;
                    break;
                }
            }
            if (err == 0 && !out->connected) {
                err = -ENODEV;
            }
            if (err == 0) {
                err = crtc_of(fd, &c, &out->crtc_id);
            }
        }
        free(modes);
    }
    free(ids);
    return err;
}

int hxfr_drm_resource_id(int fd, uint32_t handle, uint32_t *resource_id)
{
    struct drm_virtgpu_resource_info info = {.bo_handle = handle};
    int err = xioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &info);
    if (err == 0) {
        *resource_id = info.res_handle;
    }
    return err;
}

int hxfr_drm_dumb_create(int fd, uint32_t width, uint32_t height, struct hxfr_drm_dumb *out)
{
    memset(out, 0, sizeof(*out));
    struct drm_mode_create_dumb c = {.width = width, .height = height, .bpp = 32};
    int err = xioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &c);
    if (err < 0) {
        return err;
    }
    out->handle = c.handle;
    out->width = width;
    out->height = height;
    out->pitch = c.pitch;
    out->size = c.size;
    struct drm_mode_map_dumb m = {.handle = c.handle};
    err = xioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &m);
    if (err == 0) {
        void *p =
            mmap(NULL, (size_t)c.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)m.offset);
        if (p == MAP_FAILED) {
            err = -errno;
        } else {
            out->map = p;
        }
    }
    if (err == 0) {
        struct drm_mode_fb_cmd2 fb = {
            .width = width, .height = height, .pixel_format = FOURCC_XRGB8888};
        fb.handles[0] = c.handle;
        fb.pitches[0] = c.pitch;
        err = xioctl(fd, DRM_IOCTL_MODE_ADDFB2, &fb);
        out->fb_id = fb.fb_id;
    }
    if (err == 0) {
        err = hxfr_drm_resource_id(fd, c.handle, &out->resource_id);
    }
    if (err < 0) {
        hxfr_drm_dumb_destroy(fd, out);
    }
    return err;
}

void hxfr_drm_dumb_destroy(int fd, struct hxfr_drm_dumb *d)
{
    if (d->fb_id != 0) {
        uint32_t id = d->fb_id;
        xioctl(fd, DRM_IOCTL_MODE_RMFB, &id);
    }
    if (d->map != NULL) {
        munmap(d->map, (size_t)d->size);
    }
    if (d->handle != 0) {
        struct drm_mode_destroy_dumb x = {.handle = d->handle};
        xioctl(fd, DRM_IOCTL_MODE_DESTROY_DUMB, &x);
    }
    memset(d, 0, sizeof(*d));
}

int hxfr_drm_modeset(int fd, const struct hxfr_drm_output *o, uint32_t fb_id)
{
    uint32_t conn = o->connector_id;
    struct drm_mode_crtc c = {
        .set_connectors_ptr = ptr(&conn),
        .count_connectors = 1,
        .crtc_id = o->crtc_id,
        .fb_id = fb_id,
        .mode_valid = 1,
        .mode = o->mode,
    };
    return xioctl(fd, DRM_IOCTL_MODE_SETCRTC, &c);
}

int hxfr_drm_dirty(int fd, uint32_t fb_id, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct drm_clip_rect clip = {(unsigned short)x, (unsigned short)y, (unsigned short)(x + w),
                                 (unsigned short)(y + h)};
    struct drm_mode_fb_dirty_cmd d = {.fb_id = fb_id, .num_clips = 1, .clips_ptr = ptr(&clip)};
    return xioctl(fd, DRM_IOCTL_MODE_DIRTYFB, &d);
}

int hxfr_drm_crtc_fb(int fd, uint32_t crtc_id, uint32_t *fb_id, uint32_t *handle, uint32_t *width,
                     uint32_t *height)
{
    struct drm_mode_crtc c = {.crtc_id = crtc_id};
    int err = xioctl(fd, DRM_IOCTL_MODE_GETCRTC, &c);
    if (err < 0) {
        return err;
    }
    if (c.fb_id == 0) {
        return -ENOENT;
    }
    struct drm_mode_fb_cmd2 fb = {.fb_id = c.fb_id};
    err = xioctl(fd, DRM_IOCTL_MODE_GETFB2, &fb);
    if (err < 0) {
        return err;
    }
    *fb_id = c.fb_id;
    *handle = fb.handles[0];
    *width = fb.width;
    *height = fb.height;
    return 0;
}
