/* --source y4m:FILE and raw:FILE: frames read from a file into the frame
 * buffer or slot. A YUV4MPEG2 file says its size and rate in its header
 * (4:2:0 only, sent as I420); a raw file is packed frames of --format at
 * --size, one after the other. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "send.h"

struct file_source {
    struct send_source base;
    FILE *file;
    bool y4m;
};

/* Reads one line (up to cap-1 bytes, without the newline) from f. */
static int read_line(FILE *f, char *buf, size_t cap)
{
    size_t n = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF && ch != '\n') {
        if (n + 1 >= cap) {
            return -E2BIG;
        }
        buf[n++] = (char)ch;
    }
    buf[n] = '\0';
    if (ch == EOF) {
        return n == 0 ? -ENODATA : -EINVAL;
    }
    return 0;
}

/* Parses a YUV4MPEG2 stream header: size, frame rate, 4:2:0 only. */
static int y4m_header(FILE *f, const char *path, struct send_args *a)
{
    char line[1024];
    int r = read_line(f, line, sizeof(line));
    if (r < 0 || strncmp(line, "YUV4MPEG2", 9) != 0) {
        fprintf(stderr, "hxfr-send: %s: not a YUV4MPEG2 file\n", path);
        return -EINVAL;
    }
    unsigned long w = 0, h = 0, fn = 0, fd = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line + 9, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        switch (tok[0]) {
        case 'W':
            w = strtoul(tok + 1, NULL, 10);
            break;
        case 'H':
            h = strtoul(tok + 1, NULL, 10);
            break;
        case 'F':
            if (sscanf(tok + 1, "%lu:%lu", &fn, &fd) != 2) {
                fn = fd = 0;
            }
            break;
        case 'C':
            /* 8-bit 4:2:0 only; the chroma siting variants share the
             * layout, 10-bit ("420p10") and the others do not. */
            if (strcmp(tok + 1, "420") != 0 && strcmp(tok + 1, "420jpeg") != 0 &&
                strcmp(tok + 1, "420paldv") != 0 && strcmp(tok + 1, "420mpeg2") != 0) {
                fprintf(stderr,
                        "hxfr-send: %s: colour space %s is not supported "
                        "(4:2:0 only)\n",
                        path, tok + 1);
                return -EINVAL;
            }
            break;
        case 'I':
            if (tok[1] != 'p' && tok[1] != '?') {
                fprintf(stderr, "hxfr-send: %s: interlaced video is not supported\n", path);
                return -EINVAL;
            }
            break;
        default:
            break;
        }
    }
    if (w == 0 || h == 0 || w > HXFR_MAX_DIM_HARD || h > HXFR_MAX_DIM_HARD || (w & 1) || (h & 1)) {
        fprintf(stderr, "hxfr-send: %s: bad frame size %lux%lu (need even, 1..%u)\n", path, w, h,
                HXFR_MAX_DIM_HARD);
        return -EINVAL;
    }
    if (a->have_size && (a->width != w || a->height != h)) {
        fprintf(stderr, "hxfr-send: %s is %lux%lu but --size says %ux%u\n", path, w, h, a->width,
                a->height);
        return -EINVAL;
    }
    a->width = (uint32_t)w;
    a->height = (uint32_t)h;
    a->format = HXFR_FORMAT_I420;
    if (!a->have_fps && fn > 0 && fd > 0) {
        a->fps = (double)fn / (double)fd;
    }
    return 0;
}

static struct send_source *file_open(const struct send_source_ops *ops, const char *path,
                                     struct send_args *a)
{
    struct file_source *fs = calloc(1, sizeof(*fs));
    if (!fs) {
        fprintf(stderr, "hxfr-send: out of memory\n");
        return NULL;
    }
    fs->base.ops = ops;
    fs->y4m = ops == &send_y4m_source;
    fs->file = fopen(path, "rb");
    if (!fs->file) {
        int err = errno;
        fprintf(stderr, "hxfr-send: %s: %s\n", path, strerror(err));
        free(fs);
        errno = err;
        return NULL;
    }
    if (fs->y4m && y4m_header(fs->file, path, a) < 0) {
        fclose(fs->file);
        free(fs);
        errno = EINVAL;
        return NULL;
    }
    return &fs->base;
}

static struct send_source *y4m_open(const char *arg, struct send_args *a)
{
    return file_open(&send_y4m_source, arg, a);
}

static struct send_source *raw_open(const char *arg, struct send_args *a)
{
    return file_open(&send_raw_source, arg, a);
}

/* A y4m frame is "FRAME" (parameters ignored) and the pixels; a raw file
 * may end only between frames. */
static int file_read(struct send_source *src, const struct hxfr_geometry *g, uint8_t *buf,
                     uint64_t index)
{
    struct file_source *fs = (struct file_source *)src;
    if (fs->y4m) {
        char line[256];
        int r = read_line(fs->file, line, sizeof(line));
        if (r == -ENODATA) {
            return 0;
        }
        if (r < 0 || strncmp(line, "FRAME", 5) != 0) {
            fprintf(stderr, "hxfr-send: y4m: bad frame header at frame %" PRIu64 "\n", index);
            return -EINVAL;
        }
    }
    size_t n = fread(buf, 1, g->size, fs->file);
    if (n == 0 && feof(fs->file) && !fs->y4m) {
        return 0;
    }
    if (n != g->size) {
        fprintf(stderr,
                "hxfr-send: source ends inside frame %" PRIu64 " (%zu of %" PRIu64 " bytes)\n",
                index, n, g->size);
        return -EINVAL;
    }
    return 1;
}

static void file_close(struct send_source *src)
{
    struct file_source *fs = (struct file_source *)src;
    fclose(fs->file);
    free(fs);
}

/* The two kinds share read and close (file_read knows a y4m file); they
 * differ in name and open. */
#define FILE_SOURCE(kind, form_)                                                                   \
    {                                                                                              \
        .version = SEND_SOURCE_OPS_VERSION, .name = #kind, .form = form_, .needs_arg = true,       \
        .open = kind##_open, .read = file_read, .close = file_close,                               \
    }

const struct send_source_ops send_y4m_source = FILE_SOURCE(y4m, "y4m:FILE");
const struct send_source_ops send_raw_source = FILE_SOURCE(raw, "raw:FILE");
