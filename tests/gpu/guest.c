/* hxfr-gpu-guest: the guest half of the GPU VM test (static, copied into
 * the test initramfs; lib/drm does the DRM work).
 *
 *   hxfr-gpu-guest fb-rgb                 /dev/fb0's visible picture as
 *                                         packed RGB rows on stdout (its
 *                                         size on stderr: "W H")
 *   hxfr-gpu-guest draw NAME SIZE FRAMES OUT [--hold] [--progress FILE]
 *       modesets connector NAME (Virtual-1, ...) at SIZE (WxH, or
 *       "preferred") on a dumb buffer and draws FRAMES frames of the
 *       desktop pattern, DIRTYFB after each; writes the last frame (rows of
 *       width * 4 bytes, XRGB8888) to OUT and one JSON line on stdout. With
 *       --hold it then waits for a line on stdin before it lets go of the
 *       mode (fbcon takes the screen back on exit); --progress rewrites
 *       FILE with the number of frames done after each one.
 *
 * Exit status 0 only if every step worked. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <hxfr/proto.h>

#include "hxfr-drm.h"
#include "pattern.h"

static int fb_rgb(void)
{
    int fd = open("/dev/fb0", O_RDONLY | O_CLOEXEC);
    struct fb_var_screeninfo v;
    struct fb_fix_screeninfo f;
    if (fd < 0 || ioctl(fd, FBIOGET_VSCREENINFO, &v) < 0 ||
        ioctl(fd, FBIOGET_FSCREENINFO, &f) < 0) {
        fprintf(stderr, "fb-rgb: /dev/fb0: %s\n", strerror(errno));
        return 1;
    }
    if (v.bits_per_pixel != 32) {
        fprintf(stderr, "fb-rgb: %u bits per pixel, only 32 handled\n", v.bits_per_pixel);
        return 1;
    }
    size_t len = (size_t)f.line_length * v.yres_virtual;
    uint8_t *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "fb-rgb: mmap: %s\n", strerror(errno));
        return 1;
    }
    uint8_t *row = malloc((size_t)v.xres * 3);
    const uint8_t *base = p + (size_t)v.yoffset * f.line_length;
    for (uint32_t y = 0; y < v.yres; y++) {
        const uint8_t *s = base + (size_t)y * f.line_length;
        for (uint32_t x = 0; x < v.xres; x++) {
            uint32_t px;
            memcpy(&px, s + 4 * x, 4);
            row[3 * x] = (uint8_t)(px >> v.red.offset);
            row[3 * x + 1] = (uint8_t)(px >> v.green.offset);
            row[3 * x + 2] = (uint8_t)(px >> v.blue.offset);
        }
        if (fwrite(row, 3, v.xres, stdout) != v.xres) {
            return 1;
        }
    }
    fprintf(stderr, "%u %u\n", v.xres, v.yres);
    free(row);
    munmap(p, len);
    close(fd);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int draw(int argc, char **argv)
{
    const char *name = argv[2], *size = argv[3], *out_path = argv[5];
    unsigned frames = (unsigned)strtoul(argv[4], NULL, 10);
    const char *progress = NULL;
    int hold = 0;
    for (int i = 6; i < argc; i++) {
        if (strcmp(argv[i], "--hold") == 0) {
            hold = 1;
        } else if (strcmp(argv[i], "--progress") == 0 && i + 1 < argc) {
            progress = argv[++i];
        }
    }
    uint32_t w = 0, h = 0;
    if (strcmp(size, "preferred") != 0 && sscanf(size, "%ux%u", &w, &h) != 2) {
        fprintf(stderr, "draw: size is WxH or preferred\n");
        return 2;
    }
    int fd = hxfr_drm_open("/dev/dri/card0");
    if (fd < 0) {
        fprintf(stderr, "draw: /dev/dri/card0: %s\n", strerror(-fd));
        return 1;
    }
    struct hxfr_drm_output o;
    int err = hxfr_drm_output_find(fd, name, w, h, &o);
    if (err < 0) {
        fprintf(stderr, "draw: %s %s: %s\n", name, size, strerror(-err));
        return 1;
    }
    w = o.mode.hdisplay;
    h = o.mode.vdisplay;
    struct hxfr_drm_dumb d;
    err = hxfr_drm_dumb_create(fd, w, h, &d);
    if (err == 0) {
        err = hxfr_drm_modeset(fd, &o, d.fb_id);
    }
    if (err < 0) {
        fprintf(stderr, "draw: dumb buffer / modeset %ux%u: %s\n", w, h, strerror(-err));
        return 1;
    }
    unsigned dirty_errors = 0;
    for (unsigned i = 0; i < frames; i++) {
        uint8_t *planes[3] = {d.map, NULL, NULL};
        uint32_t strides[3] = {d.pitch, 0, 0};
        hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_XRGB8888, w, h, i, planes, strides);
        if (hxfr_drm_dirty(fd, d.fb_id, 0, 0, w, h) < 0) {
            dirty_errors++;
        }
        if (progress != NULL) {
            FILE *p = fopen(progress, "w");
            if (p != NULL) {
                fprintf(p, "%u\n", i + 1);
                fclose(p);
            }
        }
    }
    FILE *f = fopen(out_path, "wb");
    for (uint32_t y = 0; f != NULL && y < h; y++) {
        fwrite(d.map + (size_t)y * d.pitch, 4, w, f);
    }
    if (f == NULL || fclose(f) != 0) {
        fprintf(stderr, "draw: cannot write %s\n", out_path);
        return 1;
    }
    printf("{\"connector\": \"%s\", \"resource_id\": %u, \"width\": %u, \"height\": %u, "
           "\"pitch\": %u, \"frames\": %u, \"dirty_errors\": %u}\n",
           o.name, d.resource_id, w, h, d.pitch, frames, dirty_errors);
    fflush(stdout);
    if (hold) {
        char line[64];
        if (fgets(line, sizeof(line), stdin) == NULL) {
            fprintf(stderr, "draw: stdin closed while holding\n");
        }
    }
    hxfr_drm_dumb_destroy(fd, &d);
    close(fd);
    return dirty_errors == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "fb-rgb") == 0) {
        return fb_rgb();
    }
    if (argc >= 6 && strcmp(argv[1], "draw") == 0) {
        return draw(argc, argv);
    }
    fprintf(stderr, "usage: hxfr-gpu-guest fb-rgb | draw NAME SIZE FRAMES OUT [--hold] "
                    "[--progress FILE]\n");
    return 2;
}
