/* Guest-side DRM helpers for virtio-gpu (a static library, private to
 * hxfr): find an output by its connector name ("Virtual-1"), create a
 * dumb buffer with a framebuffer on it and learn its virtio-gpu resource
 * id, set a mode, report damage (DIRTYFB), and read which framebuffer a
 * CRTC shows now. Used by the VM tests' guest program and meant for
 * hxfr-send's DRM source (issue #13).
 *
 * Plain ioctls on the kernel's uapi (libdrm's headers only; nothing is
 * linked), so the users can be static binaries. No logging: every call
 * returns 0 or -errno. The caller owns the fd (hxfr_drm_open()) and closes
 * it; a DRM master is whoever opened the card first (fbcon is not).
 *
 * Facts that matter here: a GEM handle is not the resource id - only
 * DRM_IOCTL_VIRTGPU_RESOURCE_INFO maps one to the other; virtio-gpu dumb
 * buffers are XRGB8888 with pitch = width * 4; connector N of the device
 * is DRM connector "Virtual-<N+1>" (type DRM_MODE_CONNECTOR_VIRTUAL).
 */
#ifndef HXFR_DRM_H
#define HXFR_DRM_H

#include <stdbool.h>
#include <stdint.h>

#include <drm_mode.h>

struct hxfr_drm_output {
    char name[32]; /* "Virtual-1" */
    uint32_t connector_id;
    uint32_t crtc_id;
    bool connected;
    struct drm_mode_modeinfo mode; /* the mode chosen by hxfr_drm_output_find() */
};

struct hxfr_drm_dumb {
    uint32_t handle; /* GEM handle */
    uint32_t width, height, pitch;
    uint64_t size;
    uint8_t *map;         /* size bytes, mapped read-write */
    uint32_t fb_id;       /* an XRGB8888 framebuffer on it */
    uint32_t resource_id; /* the virtio-gpu resource behind it */
};

/* Opens a DRM device (O_RDWR | O_CLOEXEC). Returns the fd or -errno. */
int hxfr_drm_open(const char *path);

/* Looks up the connector called name and picks a mode: width x height, or
 * the preferred one when both are 0. Fills *out even when it fails with
 * -ENODEV (not connected) or -ERANGE (no such mode); -ENOENT: no such
 * connector. */
int hxfr_drm_output_find(int fd, const char *name, uint32_t width, uint32_t height,
                         struct hxfr_drm_output *out);

/* Creates a width x height dumb buffer, maps it, puts an XRGB8888
 * framebuffer on it and reads its resource id. On failure nothing is left
 * behind. */
int hxfr_drm_dumb_create(int fd, uint32_t width, uint32_t height, struct hxfr_drm_dumb *out);
/* Removes the framebuffer, unmaps and destroys the buffer. */
void hxfr_drm_dumb_destroy(int fd, struct hxfr_drm_dumb *d);

/* The virtio-gpu resource id of GEM handle (DRM_IOCTL_VIRTGPU_RESOURCE_INFO). */
int hxfr_drm_resource_id(int fd, uint32_t handle, uint32_t *resource_id);

/* Shows fb_id on the output's CRTC with its chosen mode (legacy SETCRTC). */
int hxfr_drm_modeset(int fd, const struct hxfr_drm_output *o, uint32_t fb_id);

/* Tells the driver that rectangle (x, y, w, h) of fb_id changed (DIRTYFB:
 * virtio-gpu transfers it and flushes the scanout). */
int hxfr_drm_dirty(int fd, uint32_t fb_id, uint32_t x, uint32_t y, uint32_t w, uint32_t h);

/* What CRTC crtc_id shows now: its framebuffer, that framebuffer's first
 * GEM handle (the caller closes it with DRM_IOCTL_GEM_CLOSE; 0 when the
 * caller may not see handles) and size. -ENOENT when it shows nothing. */
int hxfr_drm_crtc_fb(int fd, uint32_t crtc_id, uint32_t *fb_id, uint32_t *handle, uint32_t *width,
                     uint32_t *height);

#endif
