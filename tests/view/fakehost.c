/* A test double of an hxfr host that serves one scanout in push mode: it
 * listens on a socket, answers SUBSCRIBE with SUBSCRIBE_RESP, streams
 * FRAME_RESPONSEs (session_id = the scanout) to every subscriber, starts each
 * new subscriber at an IDR, answers PING, and records every SUBSCRIBE and
 * KEYFRAME_REQ it receives in a log file (one line each) for the tests.
 *
 * Frames come from the pattern through the encoders module when this was
 * built with it (--pattern), or from an Annex B H.264 file (--h264, e.g.
 * made with the ffmpeg CLI), which is split into access units and looped; a
 * keyframe request then jumps to the file's next IDR.
 *
 * --mode makes it misbehave in one chosen way, for the gateway's hostile-
 * upstream tests. It is a test tool: simple poll() loop, bounded output per
 * client (a client that does not read is dropped).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hxfr-config.h>
#include <hxfr/proto.h>

#include "transport.h"

#if FAKEHOST_HAVE_ENCODER
#include "encoder.h"
#include "pattern.h"
#endif

#define MAX_CLIENTS   16
#define MAX_OUT_BYTES (64u * 1024u * 1024u)

enum mode {
    MODE_NORMAL = 0,
    MODE_REFUSE,    /* SUBSCRIBE_RESP with success = 0 */
    MODE_ERROR,     /* ERROR NO_SCANOUT instead of SUBSCRIBE_RESP */
    MODE_GARBAGE,   /* bytes with a bad magic after SUBSCRIBE_RESP */
    MODE_BAD_UNITS, /* FRAME_RESPONSEs whose unit list is malformed */
    MODE_HUGE,      /* a header announcing a 4 GiB payload */
    MODE_SILENT,    /* after SUBSCRIBE_RESP: nothing at all, PING unanswered */
    MODE_FOREIGN,   /* each frame also sent with another session_id, bogus */
    MODE_BARE_NALS, /* units without start codes */
};

struct client {
    int fd;
    struct hxfr_parser parser;
    uint8_t *out;
    size_t out_len;
    size_t out_off;
    bool subscribed;
    bool started; /* has been sent an IDR */
};

struct au {
    size_t off;
    size_t len;
    bool idr;
};

static struct {
    uint16_t scanout;
    double fps;
    enum mode mode;
    size_t pad;
    FILE *log;
    struct client clients[MAX_CLIENTS];
    /* file source */
    uint8_t *file;
    size_t file_len;
    struct au *aus;
    size_t n_aus;
    size_t next_au;
    /* common */
    uint64_t frame_index;
    bool force_idr;
#if FAKEHOST_HAVE_ENCODER
    struct hxfr_encoder *enc;
    enum hxfr_pattern_variant variant;
    uint32_t width, height;
    uint8_t *pixels;
#endif
} g;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void log_line(const char *what, unsigned v)
{
    if (g.log) {
        fprintf(g.log, "%s %u\n", what, v);
        fflush(g.log);
    }
}

/* ---- Access units from a file ------------------------------------------ */

struct split_state {
    bool have_slice;
    bool cur_idr;
    size_t cur_start;
    bool started;
    const uint8_t *base;
};

static int add_au(size_t start, size_t end, bool idr)
{
    struct au *n = realloc(g.aus, (g.n_aus + 1) * sizeof(*n));
    if (!n) {
        return -ENOMEM;
    }
    g.aus = n;
    g.aus[g.n_aus++] = (struct au){start, end - start, idr};
    return 0;
}

/* Groups NAL units into access units: a new AU starts at an access unit
 * delimiter, SPS, PPS or SEI that follows a slice, or at a slice with
 * first_mb_in_slice == 0 after a slice. */
static int split_cb(void *opaque, const uint8_t *nal, size_t size)
{
    struct split_state *s = opaque;
    size_t sc = nal[2] == 1 ? 3 : 4;
    if (size <= sc) {
        return 0;
    }
    unsigned type = nal[sc] & 0x1f;
    bool slice = type == 1 || type == 5;
    bool first_mb0 = slice && size > sc + 1 && (nal[sc + 1] & 0x80);
    bool starts = s->have_slice && ((type >= 6 && type <= 9) || first_mb0);
    size_t pos = (size_t)(nal - s->base);
    if (!s->started) {
        s->started = true;
        s->cur_start = pos;
    } else if (starts) {
        if (add_au(s->cur_start, pos, s->cur_idr) < 0) {
            return -ENOMEM;
        }
        s->cur_start = pos;
        s->have_slice = false;
        s->cur_idr = false;
    }
    if (slice) {
        s->have_slice = true;
    }
    if (type == 5) {
        s->cur_idr = true;
    }
    return 0;
}

static int load_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fakehost: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 20;
    g.file = malloc(cap);
    size_t n;
    while (g.file && (n = fread(g.file + g.file_len, 1, cap - g.file_len, f)) > 0) {
        g.file_len += n;
        if (g.file_len == cap) {
            cap *= 2;
            g.file = realloc(g.file, cap);
        }
    }
    fclose(f);
    if (!g.file) {
        return -1;
    }
    struct split_state s = {.base = g.file};
    if (hxfr_annexb_split(g.file, g.file_len, split_cb, &s) < 0 || !s.started) {
        fprintf(stderr, "fakehost: %s: no H.264 access units\n", path);
        return -1;
    }
    if (add_au(s.cur_start, g.file_len, s.cur_idr) < 0 || !g.aus[0].idr) {
        fprintf(stderr, "fakehost: %s must start with an IDR\n", path);
        return -1;
    }
    return 0;
}

/* ---- Output ------------------------------------------------------------- */

static void client_drop(struct client *c, const char *why)
{
    if (c->fd >= 0) {
        fprintf(stderr, "fakehost: dropping client: %s\n", why);
        close(c->fd);
    }
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static void client_queue(struct client *c, const void *data, size_t len)
{
    if (c->fd < 0) {
        return;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    if (c->out_len + len > MAX_OUT_BYTES) {
        client_drop(c, "not reading");
        return;
    }
    uint8_t *n = realloc(c->out, c->out_len + len);
    if (!n) {
        client_drop(c, "out of memory");
        return;
    }
    c->out = n;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void client_flush(struct client *c)
{
    while (c->fd >= 0 && c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                client_drop(c, "send failed");
            }
            return;
        }
        c->out_off += (size_t)n;
    }
}

static void send_msg(struct client *c, struct hxfr_msg *m)
{
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    int n = hxfr_msg_encode(m, 0, buf, sizeof(buf));
    if (n > 0) {
        client_queue(c, buf, (size_t)n);
    }
}

/* ---- Frames ----------------------------------------------------------------- */

/* A FRAME_RESPONSE under construction: header + fixed part + units. */
static uint8_t *resp;
static size_t resp_len;
static size_t resp_cap;

static int resp_append(const void *data, size_t len)
{
    if (resp_len + len > resp_cap) {
        size_t cap = resp_cap ? resp_cap : 65536;
        while (cap < resp_len + len) {
            cap *= 2;
        }
        uint8_t *n = realloc(resp, cap);
        if (!n) {
            return -ENOMEM;
        }
        resp = n;
        resp_cap = cap;
    }
    memcpy(resp + resp_len, data, len);
    resp_len += len;
    return 0;
}

static uint32_t unit_count;

static int unit_cb(void *opaque, const uint8_t *nal, size_t size)
{
    (void)opaque;
    if (g.mode == MODE_BARE_NALS && opaque) {
        size_t sc = nal[2] == 1 ? 3 : 4;
        nal += sc;
        size -= sc;
    }
    uint8_t sz[4];
    hxfr_put_u32(sz, (uint32_t)size);
    unit_count++;
    if (resp_append(sz, 4) < 0 || resp_append(nal, size) < 0) {
        return -ENOMEM;
    }
    return 0;
}

/* Produces the next access unit. Returns its bytes (borrowed) or NULL. */
static const uint8_t *next_au(bool force_idr, size_t *len, bool *idr)
{
#if FAKEHOST_HAVE_ENCODER
    if (g.enc) {
        uint8_t *planes[3] = {g.pixels, NULL, NULL};
        uint32_t strides[3] = {g.width * 4, 0, 0};
        if (hxfr_pattern_render(g.variant, HXFR_FORMAT_ARGB8888, g.width, g.height, g.frame_index,
                                planes, strides) < 0) {
            return NULL;
        }
        struct hxfr_image img = {
            .format = HXFR_FORMAT_ARGB8888,
            .width = g.width,
            .height = g.height,
            .planes = {g.pixels, NULL, NULL},
            .strides = {g.width * 4, 0, 0},
        };
        struct hxfr_packet pkt;
        if (hxfr__encoder_encode(g.enc, &img, (int64_t)g.frame_index, force_idr, &pkt) < 0) {
            return NULL;
        }
        *len = pkt.size;
        *idr = pkt.keyframe;
        return pkt.data;
    }
#endif
    size_t i = g.next_au;
    if (force_idr) {
        while (!g.aus[i].idr) {
            i = (i + 1) % g.n_aus;
        }
    }
    g.next_au = (i + 1) % g.n_aus;
    *len = g.aus[i].len;
    *idr = g.aus[i].idr;
    return g.file + g.aus[i].off;
}

static void stream_tick(void)
{
    bool any = false;
    bool need_idr = g.force_idr;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &g.clients[i];
        if (c->fd >= 0 && c->subscribed) {
            any = true;
            need_idr = need_idr || !c->started;
        }
    }
    if (!any) {
        return;
    }
    size_t len;
    bool idr;
    const uint8_t *au = next_au(need_idr, &len, &idr);
    if (!au) {
        fprintf(stderr, "fakehost: no access unit\n");
        stop = 1;
        return;
    }
    if (idr) {
        g.force_idr = false;
    }
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_RESPONSE;
    m.hdr.session_id = g.scanout;
    int64_t pts = (int64_t)((double)g.frame_index * 1e9 / g.fps);
    m.u.frame_response.pts = pts;
    m.u.frame_response.dts = pts;
    m.u.frame_response.is_keyframe = idr;
    g.frame_index++;

    resp_len = 0;
    unit_count = 0;
    uint8_t fixed[HXFR_HEADER_SIZE + HXFR_FRAME_RESPONSE_SIZE];
    /* A non-NULL opaque marks units that come from the encoder (bare-nals
     * mode strips their start codes). */
    if (resp_append(fixed, sizeof(fixed)) < 0 || hxfr_annexb_split(au, len, unit_cb, &g) < 0) {
        stop = 1;
        return;
    }
    if (g.pad > 0) {
        /* A filler-data NAL unit (type 12): decoders skip it, but it makes
         * access units as large as the test wants. */
        uint8_t *filler = malloc(g.pad);
        if (!filler) {
            stop = 1;
            return;
        }
        memset(filler, 0xFF, g.pad);
        memcpy(filler, "\x00\x00\x00\x01\x0C", 5);
        filler[g.pad - 1] = 0x80;
        unit_cb(NULL, filler, g.pad);
        free(filler);
    }
    m.u.frame_response.nal_count = unit_count;
    if (g.mode == MODE_BAD_UNITS) {
        m.u.frame_response.nal_count = unit_count + 5;
    }
    uint32_t body = (uint32_t)(resp_len - sizeof(fixed));
    hxfr_msg_encode(&m, body, resp, sizeof(fixed));
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &g.clients[i];
        if (c->fd >= 0 && c->subscribed && (c->started || idr)) {
            c->started = true;
            if (g.mode == MODE_FOREIGN) {
                /* First the same frame for another session, with a unit
                 * list that would corrupt the stream if it were used. */
                uint8_t bogus[HXFR_HEADER_SIZE + HXFR_FRAME_RESPONSE_SIZE + 8];
                struct hxfr_msg f = m;
                f.hdr.session_id = (uint16_t)(g.scanout + 1);
                f.u.frame_response.nal_count = 1;
                hxfr_msg_encode(&f, 8, bogus, sizeof(bogus));
                memcpy(bogus + sizeof(bogus) - 8, "\x04\x00\x00\x00\x00\x00\x01\x65", 8);
                client_queue(c, bogus, sizeof(bogus));
            }
            client_queue(c, resp, resp_len);
        }
    }
}

/* ---- Input ---------------------------------------------------------------- */

static void on_message(struct client *c, const struct hxfr_msg *m)
{
    struct hxfr_msg r;
    memset(&r, 0, sizeof(r));
    switch (m->hdr.type) {
    case HXFR_MSG_SUBSCRIBE:
        log_line("SUBSCRIBE", m->u.subscribe.scanout_id);
        if (g.mode == MODE_ERROR) {
            hxfr_msg_error(&r, m->hdr.session_id, HXFR_STATUS_NO_SCANOUT, "no scanout %u \"here\"",
                           m->u.subscribe.scanout_id);
            send_msg(c, &r);
            return;
        }
        r.hdr.type = HXFR_MSG_SUBSCRIBE_RESP;
        r.hdr.session_id = m->hdr.session_id;
        r.u.subscribe_resp.scanout_id = m->u.subscribe.scanout_id;
        r.u.subscribe_resp.success =
            g.mode != MODE_REFUSE && m->u.subscribe.scanout_id == g.scanout;
        send_msg(c, &r);
        if (r.u.subscribe_resp.success) {
            c->subscribed = true;
            c->started = false;
            if (g.mode == MODE_GARBAGE) {
                client_queue(c, "GARBAGE!GARBAGE!", 16);
            } else if (g.mode == MODE_HUGE) {
                uint8_t h[HXFR_HEADER_SIZE];
                struct hxfr_header hd = {HXFR_MAGIC, HXFR_MSG_FRAME_RESPONSE, 0, g.scanout,
                                         0xFFFFFFF0u};
                hxfr_header_encode(h, &hd);
                client_queue(c, h, sizeof(h));
            }
        }
        break;
    case HXFR_MSG_KEYFRAME_REQ:
        log_line("KEYFRAME_REQ", m->hdr.session_id);
        g.force_idr = true;
        break;
    case HXFR_MSG_PING:
        log_line("PING", m->hdr.session_id);
        if (g.mode == MODE_SILENT) {
            break;
        }
        r.hdr.type = HXFR_MSG_PONG;
        r.hdr.session_id = m->hdr.session_id;
        send_msg(c, &r);
        break;
    default:
        break;
    }
}

static void client_read(struct client *c)
{
    uint8_t buf[4096];
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        client_drop(c, n == 0 ? "closed" : "recv failed");
        return;
    }
    size_t off = 0;
    while (off < (size_t)n) {
        struct hxfr_parse_result res;
        int used = hxfr_parser_feed(&c->parser, buf + off, (size_t)n - off, &res);
        if (used < 0) {
            client_drop(c, "protocol error");
            return;
        }
        off += (size_t)used;
        if (res.event == HXFR_PARSE_MESSAGE) {
            on_message(c, &res.msg);
        }
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "Usage: fakehost --listen URI [--scanout N] [--fps F] [--log FILE]\n"
                    "                (--h264 FILE | --pattern NAME --size WxH) [--pad BYTES]\n"
                    "                [--mode normal|refuse|error|garbage|bad-units|huge|silent|\n"
                    "                        foreign|bare-nals]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'}, {"scanout", required_argument, NULL, 's'},
        {"fps", required_argument, NULL, 'f'},    {"log", required_argument, NULL, 'L'},
        {"h264", required_argument, NULL, 'i'},   {"pattern", required_argument, NULL, 'p'},
        {"size", required_argument, NULL, 'S'},   {"pad", required_argument, NULL, 'P'},
        {"mode", required_argument, NULL, 'm'},   {NULL, 0, NULL, 0},
    };
    const char *listen_uri = NULL, *h264 = NULL, *pattern = NULL, *size = "320x240";
    int c;
    g.fps = 30;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen_uri = optarg;
            break;
        case 's':
            g.scanout = (uint16_t)atoi(optarg);
            break;
        case 'f':
            g.fps = atof(optarg);
            break;
        case 'L':
            g.log = fopen(optarg, "a");
            break;
        case 'i':
            h264 = optarg;
            break;
        case 'p':
            pattern = optarg;
            break;
        case 'S':
            size = optarg;
            break;
        case 'P':
            g.pad = (size_t)atol(optarg);
            break;
        case 'm':
            g.mode = !strcmp(optarg, "refuse")      ? MODE_REFUSE
                     : !strcmp(optarg, "error")     ? MODE_ERROR
                     : !strcmp(optarg, "garbage")   ? MODE_GARBAGE
                     : !strcmp(optarg, "bad-units") ? MODE_BAD_UNITS
                     : !strcmp(optarg, "huge")      ? MODE_HUGE
                     : !strcmp(optarg, "silent")    ? MODE_SILENT
                     : !strcmp(optarg, "foreign")   ? MODE_FOREIGN
                     : !strcmp(optarg, "bare-nals") ? MODE_BARE_NALS
                                                    : MODE_NORMAL;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (!listen_uri || (!h264 && !pattern) || g.fps <= 0 || (g.pad > 0 && g.pad < 8)) {
        usage();
        return 2;
    }
    if (h264 && load_file(h264) < 0) {
        return 1;
    }
    if (pattern) {
#if FAKEHOST_HAVE_ENCODER
        unsigned w, h;
        int v = hxfr_pattern_variant_from_name(pattern);
        if (v < 0 || sscanf(size, "%ux%u", &w, &h) != 2 || w == 0 || h == 0) {
            usage();
            return 2;
        }
        g.variant = (enum hxfr_pattern_variant)v;
        g.width = w;
        g.height = h;
        g.pixels = malloc((size_t)w * h * 4);
        struct hxfr_encoder_config cfg = {
            .width = w,
            .height = h,
            .framerate_num = (uint32_t)g.fps,
            .framerate_den = 1,
            .realtime = true,
            .gop = 600,
            .threads = 1,
        };
        hxfr__encoder_config_defaults(&cfg);
        g.enc = hxfr__encoder_create(&cfg);
        if (!g.enc || !g.pixels) {
            fprintf(stderr, "fakehost: cannot open the encoder: %s\n", strerror(errno));
            return 1;
        }
#else
        (void)size;
        fprintf(stderr, "fakehost: built without the encoders module; use --h264\n");
        return 77;
#endif
    }

    struct hxfr_uri uri;
    if (hxfr__uri_parse(listen_uri, true, &uri) < 0) {
        fprintf(stderr, "fakehost: bad URI %s\n", listen_uri);
        return 2;
    }
    int lfd = hxfr__transport_listen(&uri);
    if (lfd < 0) {
        fprintf(stderr, "fakehost: listen %s: %s\n", listen_uri, hxfr_strerror(lfd));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        g.clients[i].fd = -1;
    }
    printf("fakehost: listening on %s\n", listen_uri);
    fflush(stdout);

    double period = 1.0 / g.fps;
    double next = now_s() + period;
    while (!stop) {
        struct pollfd pfd[MAX_CLIENTS + 1];
        int map[MAX_CLIENTS + 1];
        int n = 0;
        pfd[n] = (struct pollfd){lfd, POLLIN, 0};
        map[n++] = -1;
        for (int i = 0; i < MAX_CLIENTS; i++) {
            struct client *cl = &g.clients[i];
            if (cl->fd >= 0) {
                short ev = POLLIN;
                if (cl->out_off < cl->out_len) {
                    ev |= POLLOUT;
                }
                pfd[n] = (struct pollfd){cl->fd, ev, 0};
                map[n++] = i;
            }
        }
        double wait = next - now_s();
        int r = poll(pfd, (nfds_t)n, wait > 0 ? (int)(wait * 1000) + 1 : 0);
        if (r < 0 && errno != EINTR) {
            break;
        }
        for (int k = 0; r > 0 && k < n; k++) {
            if (!pfd[k].revents) {
                continue;
            }
            if (map[k] < 0) {
                int fd = hxfr__transport_accept(lfd);
                if (fd < 0) {
                    continue;
                }
                struct client *slot = NULL;
                for (int i = 0; i < MAX_CLIENTS && !slot; i++) {
                    if (g.clients[i].fd < 0) {
                        slot = &g.clients[i];
                    }
                }
                if (!slot) {
                    close(fd);
                    continue;
                }
                slot->fd = fd;
                hxfr_parser_init(&slot->parser, 1 << 20);
                continue;
            }
            struct client *cl = &g.clients[map[k]];
            if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                client_read(cl);
            }
        }
        if (now_s() >= next) {
            next += period;
            if (next < now_s()) {
                next = now_s() + period;
            }
            if (g.mode != MODE_GARBAGE && g.mode != MODE_HUGE && g.mode != MODE_SILENT) {
                stream_tick();
            }
        }
        for (int i = 0; i < MAX_CLIENTS; i++) {
            client_flush(&g.clients[i]);
        }
    }
    for (int i = 0; i < MAX_CLIENTS; i++) {
        client_drop(&g.clients[i], "exiting");
    }
    close(lfd);
    if (uri.kind == HXFR_TRANSPORT_UNIX) {
        unlink(uri.path);
    }
    free(g.file);
    free(g.aus);
    free(resp);
#if FAKEHOST_HAVE_ENCODER
    hxfr__encoder_destroy(g.enc);
    free(g.pixels);
#endif
    if (g.log) {
        fclose(g.log);
    }
    return 0;
}
