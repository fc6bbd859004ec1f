/* The control socket (see control.h). Output per connection is buffered
 * and written as the peer reads it; a peer that sends a line longer than
 * the input buffer, or lets its output grow past the cap, is cut. */
#include "control.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CONNS 8
#define LINE_MAX_ 512
#define OUT_MAX   (512u << 20)

struct conn {
    struct hxfr_control *ctl;
    int fd;
    struct hxfr_loop_source *src;
    char in[LINE_MAX_];
    size_t in_len;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    uint32_t events;
};

struct hxfr_control {
    struct hxfr_loop *loop;
    struct hxfr_device *dev;
    int listener; /* on dev's gpu, -1 without a device */
    /* freeze: every flush is held (the guest waits) until thaw; holds of
     * token are outstanding. */
    bool frozen;
    uint32_t holds;
    uint64_t token;
    int fd;
    struct hxfr_loop_source *src;
    char *path;
    struct conn *conns[MAX_CONNS];
};

static void conn_close(struct conn *c)
{
    struct hxfr_control *ctl = c->ctl;
    for (int i = 0; i < MAX_CONNS; i++) {
        if (ctl->conns[i] == c) {
            ctl->conns[i] = NULL;
        }
    }
    hxfr__loop_remove(ctl->loop, c->src);
    close(c->fd);
    free(c->out);
    free(c);
}

static int out_reserve(struct conn *c, size_t n)
{
    if (c->out_off > 0 && c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    if (c->out_len + n > OUT_MAX) {
        return -ENOBUFS;
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n) {
            cap *= 2;
        }
        uint8_t *b = realloc(c->out, cap);
        if (b == NULL) {
            return -ENOMEM;
        }
        c->out = b;
        c->out_cap = cap;
    }
    return 0;
}

static void say(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct conn *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
    }
    if (out_reserve(c, (size_t)n + 1) == 0) {
        memcpy(c->out + c->out_len, line, (size_t)n);
        c->out[c->out_len + n] = '\n';
        c->out_len += (size_t)n + 1;
    }
}

static void cmd_info(struct conn *c, struct hxfr_gpu *gpu)
{
    for (uint32_t i = 0; i < hxfr_gpu_scanout_count(gpu); i++) {
        struct hxfr_gpu_scanout_info s;
        hxfr_gpu_scanout_get(gpu, i, &s);
        say(c, "scanout %u %s %ux%u resource %u rect %u,%u,%ux%u", i,
            s.connected ? "connected" : "disconnected", s.width, s.height, s.resource_id, s.rect.x,
            s.rect.y, s.rect.width, s.rect.height);
    }
    struct hxfr_device_stats st;
    hxfr__device_stats(c->ctl->dev, &st);
    const struct hxfr_gpu_stats *g = &gpu->stats;
    say(c,
        "device resources %u memory %llu commands %llu errors %llu cursor %llu transfers %llu "
        "flushes %llu resets %llu malformed %llu",
        gpu->n_resources, (unsigned long long)gpu->memory, (unsigned long long)g->commands,
        (unsigned long long)g->errors, (unsigned long long)g->cursor_commands,
        (unsigned long long)g->transfers, (unsigned long long)g->flushes,
        (unsigned long long)g->resets, (unsigned long long)st.malformed_chains);
    say(c, "hold %s holds %u held %llu", c->ctl->frozen ? "frozen" : "off", c->ctl->holds,
        (unsigned long long)st.held_flushes);
    say(c, "display %s messages %llu updates %llu bytes %llu coalesced %llu",
        st.display_connected ? "connected" : "none", (unsigned long long)st.display_messages,
        (unsigned long long)st.display_updates, (unsigned long long)st.display_bytes,
        (unsigned long long)st.display_coalesced);
}

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static void cmd_read(struct conn *c, struct hxfr_gpu *gpu, uint32_t id, bool inplace)
{
    struct hxfr_gpu_resource_info r;
    if (hxfr_gpu_resource_get(gpu, id, &r) < 0) {
        say(c, "error no resource %u", id);
        return;
    }
    if (inplace && r.pieces == NULL) {
        say(c, "error resource %u has no backing", id);
        return;
    }
    if (out_reserve(c, 64 + r.size) < 0) {
        say(c, "error resource too large for this connection");
        return;
    }
    say(c, "data %llu", (unsigned long long)r.size);
    uint8_t *dst = c->out + c->out_len;
    if (inplace) {
        struct hxfr_gpu_rect all = {0, 0, r.width, r.height};
        hxfr_gpu_resource_read(gpu, id, &all, dst, r.stride);
    } else {
        memcpy(dst, r.host_copy, r.size);
    }
    c->out_len += r.size;
}

/* --- freeze / thaw: the device's flush holds ---------------------------- */

static int on_flush(void *data, uint32_t scanout, uint32_t resource, const struct hxfr_gpu_rect *r,
                    uint64_t token)
{
    struct hxfr_control *ctl = data;
    (void)scanout;
    (void)resource;
    (void)r;
    if (!ctl->frozen) {
        return HXFR_GPU_FLUSH_DONE;
    }
    if (token != ctl->token) {
        /* Holds of an earlier token were answered by a ring stop. */
        ctl->holds = 0;
        ctl->token = token;
    }
    ctl->holds++;
    return HXFR_GPU_FLUSH_HOLD;
}

static void on_reset(void *data)
{
    struct hxfr_control *ctl = data;
    ctl->holds = 0; /* answered by the reset */
}

static void thaw(struct hxfr_control *ctl)
{
    ctl->frozen = false;
    for (; ctl->holds > 0; ctl->holds--) {
        /* -ENOENT: a ring stop already answered it. */
        hxfr_gpu_flush_done(hxfr__device_gpu(ctl->dev), ctl->token);
    }
}

static void command(struct conn *c, char *line)
{
    char *argv[4];
    int argc = 0;
    for (char *tok = strtok(line, " \t"); tok != NULL && argc < 4; tok = strtok(NULL, " \t")) {
        argv[argc++] = tok;
    }
    if (argc == 0) {
        return;
    }
    struct hxfr_device *dev = c->ctl->dev;
    if (dev == NULL) {
        say(c, "error no device (QEMU has not connected)");
        return;
    }
    struct hxfr_gpu *gpu = hxfr__device_gpu(dev);
    uint32_t id = 0;
    if (argc >= 2 && !parse_u32(argv[1], &id) && strcmp(argv[0], "info") != 0) {
        say(c, "error bad id");
        return;
    }
    if (strcmp(argv[0], "info") == 0 && argc == 1) {
        cmd_info(c, gpu);
    } else if (strcmp(argv[0], "scanout") == 0 && argc == 3) {
        uint32_t w = 0, h = 0;
        char *x = strchr(argv[2], 'x');
        if (strcmp(argv[2], "off") != 0) {
            if (x == NULL) {
                say(c, "error size is WxH or off");
                return;
            }
            *x = '\0';
            if (!parse_u32(argv[2], &w) || !parse_u32(x + 1, &h) || w == 0 || h == 0) {
                say(c, "error size is WxH or off");
                return;
            }
        }
        int err = hxfr_gpu_scanout_configure(gpu, id, w, h);
        if (err < 0) {
            say(c, "error %s", err == -EINVAL ? "no such scanout" : "size out of range");
            return;
        }
    } else if (strcmp(argv[0], "resource") == 0 && argc == 2) {
        struct hxfr_gpu_resource_info r;
        if (hxfr_gpu_resource_get(gpu, id, &r) < 0) {
            say(c, "error no resource %u", id);
            return;
        }
        say(c,
            "resource %u %ux%u format %u drm 0x%08x stride %u size %llu pieces %u backing %llu "
            "scanouts 0x%x",
            r.id, r.width, r.height, r.virtio_format, r.drm_format, r.stride,
            (unsigned long long)r.size, r.n_pieces, (unsigned long long)r.backing_size, r.scanouts);
    } else if (strcmp(argv[0], "cursor") == 0 && argc == 2) {
        struct hxfr_gpu_cursor_info k;
        if (hxfr_gpu_cursor_get(gpu, id, &k) < 0) {
            say(c, "error no such scanout");
            return;
        }
        say(c, "cursor %u visible %d image %d x %u y %u hot %u,%u serial %llu", id, k.visible,
            k.has_image, k.x, k.y, k.hot_x, k.hot_y, (unsigned long long)k.image_serial);
    } else if (strcmp(argv[0], "freeze") == 0 && argc == 1) {
        c->ctl->frozen = true;
    } else if (strcmp(argv[0], "thaw") == 0 && argc == 1) {
        thaw(c->ctl);
    } else if (strcmp(argv[0], "read") == 0 && argc == 3 &&
               (strcmp(argv[2], "inplace") == 0 || strcmp(argv[2], "copy") == 0)) {
        cmd_read(c, gpu, id, strcmp(argv[2], "inplace") == 0);
        return; /* the data is the answer */
    } else {
        say(c, "error unknown command");
        return;
    }
    say(c, "ok");
}

static void conn_event(void *data, uint32_t events);

static void conn_update(struct conn *c)
{
    uint32_t ev = EPOLLIN | (c->out_off < c->out_len ? EPOLLOUT : 0);
    if (ev != c->events) {
        hxfr__loop_update(c->ctl->loop, c->src, ev);
        c->events = ev;
    }
}

static void conn_event(void *data, uint32_t events)
{
    struct conn *c = data;
    if (events & EPOLLIN) {
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n > 0) {
            c->in_len += (size_t)n;
            char *nl;
            while ((nl = memchr(c->in, '\n', c->in_len)) != NULL) {
                *nl = '\0';
                size_t used = (size_t)(nl - c->in) + 1;
                if (nl > c->in && nl[-1] == '\r') {
                    nl[-1] = '\0';
                }
                command(c, c->in);
                memmove(c->in, c->in + used, c->in_len - used);
                c->in_len -= used;
            }
            if (c->in_len == sizeof(c->in)) {
                conn_close(c); /* a line longer than any command */
                return;
            }
        }
    }
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                break;
            }
            conn_close(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    conn_update(c);
}

static void listen_event(void *data, uint32_t events)
{
    struct hxfr_control *ctl = data;
    (void)events;
    int fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        return;
    }
    int slot = -1;
    for (int i = 0; i < MAX_CONNS && slot < 0; i++) {
        if (ctl->conns[i] == NULL) {
            slot = i;
        }
    }
    struct conn *c = slot < 0 ? NULL : calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->ctl = ctl;
    c->fd = fd;
    c->events = EPOLLIN;
    c->src = hxfr__loop_add(ctl->loop, fd, EPOLLIN, conn_event, c);
    if (c->src == NULL) {
        close(fd);
        free(c);
        return;
    }
    ctl->conns[slot] = c;
}

struct hxfr_control *hxfr__control_new(struct hxfr_loop *loop, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    strcpy(sa.sun_path, path);
    struct hxfr_control *ctl = calloc(1, sizeof(*ctl));
    if (ctl == NULL) {
        return NULL;
    }
    ctl->loop = loop;
    ctl->listener = -1;
    ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ctl->path = strdup(path);
    if (ctl->fd < 0 || ctl->path == NULL) {
        goto fail;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path); /* a stale socket of an earlier run */
    }
    mode_t old = umask(077);
    int r = bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r < 0 || listen(ctl->fd, 4) < 0) {
        goto fail;
    }
    ctl->src = hxfr__loop_add(loop, ctl->fd, EPOLLIN, listen_event, ctl);
    if (ctl->src == NULL) {
        unlink(path);
        goto fail;
    }
    return ctl;
fail:;
    int err = errno;
    if (ctl->fd >= 0) {
        close(ctl->fd);
    }
    free(ctl->path);
    free(ctl);
    errno = err;
    return NULL;
}

void hxfr__control_set_device(struct hxfr_control *c, struct hxfr_device *dev)
{
    if (c == NULL) {
        return;
    }
    if (c->dev != NULL && c->listener >= 0) {
        thaw(c);
        hxfr_gpu_remove_listener(hxfr__device_gpu(c->dev), c->listener);
    }
    c->dev = dev;
    c->listener = -1;
    if (dev != NULL) {
        const struct hxfr_gpu_listener l = {.data = c, .flush = on_flush, .reset = on_reset};
        c->listener = hxfr_gpu_add_listener(hxfr__device_gpu(dev), &l);
    }
}

void hxfr__control_destroy(struct hxfr_control *c)
{
    if (c == NULL) {
        return;
    }
    hxfr__control_set_device(c, NULL);
    for (int i = 0; i < MAX_CONNS; i++) {
        if (c->conns[i] != NULL) {
            conn_close(c->conns[i]);
        }
    }
    hxfr__loop_remove(c->loop, c->src);
    close(c->fd);
    unlink(c->path);
    free(c->path);
    free(c);
}
