/* hxfr-bench: the measuring half of the benchmark (bench/run.py drives it
 * and runs the other contenders). Every mode reads the same frames: a raw
 * file of packed BGRA frames (DRM ARGB8888) that `prepare` writes once and
 * the others map, so the contenders encode byte-identical input and the
 * in-process ones read it from memory (the pages are faulted in before the
 * clock starts).
 *
 *   hxfr-bench prepare --variant V --size WxH --frames N --out FILE
 *   hxfr-bench floor   --raw FILE --size WxH --frames N [--threads T] [--out H264]
 *   hxfr-bench client  --connect URI --raw FILE --size WxH --frames N
 *                      [--window W] [--shm] [--fps F] [--out H264]
 *   hxfr-bench quality --raw FILE --size WxH --frames N --h264 FILE [--fps F]
 *
 * floor: libyuv conversion + libx264 through hxfr__encoder_* (the code the
 * daemon's workers run), frames already in memory, no IPC. client:
 * libhxfr-client to a running hxfrd, inline pixels or (--shm) a memfd ring;
 * latency is the library's submit -> response time per frame. quality:
 * decodes an Annex B file and compares each picture with the raw frame it
 * came from (PSNR over Y, U and V).
 *
 * Each mode prints one JSON object on stdout; errors go to stderr with exit
 * status 1 (2 for usage errors). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

#include <hxfr/client.h>
#include <hxfr/proto.h>

#include "avcheck.h"
#include "encoder.h"
#include "pattern.h"

struct options {
    const char *mode;
    const char *raw;
    const char *out;
    const char *h264;
    const char *connect;
    int variant;
    uint32_t width, height;
    uint32_t frames;
    int threads;
    uint32_t window;
    bool shm;
    double fps;
};

/* What a timed run collected. */
struct run {
    const struct options *o;
    double *lat_ms;  /* per frame, indexed by frame number */
    double *done_ms; /* when frame i's result was there, from t0 */
    double t0_ms;    /* the clock's start: first encode or submit */
    uint32_t done;   /* results received */
    uint32_t errors;
    uint32_t keyframes;
    uint8_t *stream; /* every access unit, in order */
    size_t stream_len, stream_cap;
    double t_last_ms;   /* when the last result arrived */
    const uint8_t *raw; /* the mapped raw file, raw_len bytes */
    size_t raw_len;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Peak resident set. The mapped frames count in it (file pages are
 * resident once touched); callers subtract them to get the encoder's own
 * memory. */
static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static size_t frame_bytes(const struct options *o)
{
    return (size_t)o->width * o->height * 4u;
}

static int append(struct run *r, const uint8_t *data, size_t size)
{
    if (r->stream_len + size > r->stream_cap) {
        size_t cap = r->stream_cap ? r->stream_cap : 1u << 20;
        while (cap < r->stream_len + size) {
            cap *= 2;
        }
        uint8_t *p = realloc(r->stream, cap);
        if (!p) {
            return -ENOMEM;
        }
        r->stream = p;
        r->stream_cap = cap;
    }
    memcpy(r->stream + r->stream_len, data, size);
    r->stream_len += size;
    return 0;
}

/* Maps the raw file read-only and touches every page, so that page faults
 * are not charged to whichever contender reads a frame first. */
static const uint8_t *map_raw(const struct options *o, size_t *len)
{
    const uint8_t *p = MAP_FAILED;
    int fd = open(o->raw, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "hxfr-bench: %s: %s\n", o->raw, strerror(errno));
        return NULL;
    }
    struct stat st;
    size_t need = frame_bytes(o) * o->frames;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < need) {
        fprintf(stderr, "hxfr-bench: %s holds fewer than %u frames of %ux%u\n", o->raw, o->frames,
                o->width, o->height);
        goto out;
    }
    p = mmap(NULL, need, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "hxfr-bench: mmap %s: %s\n", o->raw, strerror(errno));
        goto out;
    }
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < need; i += 4096) {
        sink ^= p[i];
    }
    (void)sink;
    *len = need;
out:
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "hxfr-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = len ? fwrite(data, 1, len, f) : 0;
    int r = fclose(f);
    if (n != len || r != 0) {
        fprintf(stderr, "hxfr-bench: writing %s failed\n", path);
        return -1;
    }
    return 0;
}

/* Maps the raw frames and allocates the per-frame arrays of a timed run.
 * On failure the run still goes to run_finish(). */
static int run_init(struct run *r, const struct options *o)
{
    *r = (struct run){.o = o};
    r->raw = map_raw(o, &r->raw_len);
    r->lat_ms = calloc(o->frames, sizeof(double));
    r->done_ms = calloc(o->frames, sizeof(double));
    return r->raw && r->lat_ms && r->done_ms ? 0 : -1;
}

static void run_finish(struct run *r)
{
    if (r->raw) {
        munmap((void *)r->raw, r->raw_len);
    }
    free(r->lat_ms);
    free(r->done_ms);
    free(r->stream);
}

/* Ends a run's JSON line with the per-frame arrays, so run.py can pool
 * rounds and leave out warm-up. */
static void print_latencies(const struct run *r)
{
    printf("\"latency_ms\": [");
    for (uint32_t i = 0; i < r->o->frames; i++) {
        printf("%s%.3f", i ? "," : "", r->lat_ms[i]);
    }
    printf("], \"done_ms\": [");
    for (uint32_t i = 0; i < r->o->frames; i++) {
        printf("%s%.3f", i ? "," : "", r->done_ms[i]);
    }
    printf("]}\n");
}

static int cmd_prepare(const struct options *o)
{
    int ret = 1;
    size_t fb = frame_bytes(o);
    uint8_t *buf = malloc(fb);
    FILE *f = fopen(o->out, "wb");
    if (!buf || !f) {
        fprintf(stderr, "hxfr-bench: %s: %s\n", o->out, strerror(errno));
        goto out;
    }
    uint32_t strides[3] = {o->width * 4u, 0, 0};
    uint8_t *planes[3] = {buf, NULL, NULL};
    for (uint32_t i = 0; i < o->frames; i++) {
        if (hxfr_pattern_render(o->variant, HXFR_FORMAT_ARGB8888, o->width, o->height, i, planes,
                                strides) < 0 ||
            fwrite(buf, 1, fb, f) != fb) {
            fprintf(stderr, "hxfr-bench: cannot write frame %u to %s\n", i, o->out);
            goto out;
        }
    }
    printf("{\"frames\": %u, \"bytes\": %zu}\n", o->frames, fb * o->frames);
    ret = 0;
out:
    if (f && fclose(f) != 0) {
        ret = 1;
    }
    free(buf);
    return ret;
}

static int cmd_floor(const struct options *o)
{
    int ret = 1;
    struct run r;
    struct hxfr_encoder *enc = NULL;
    if (run_init(&r, o) < 0) {
        goto out;
    }
    const uint8_t *raw = r.raw;
    /* The settings a hxfrd session gets (session.c): defaults for codec,
     * bitrate, frame rate, GOP and preset, realtime on; the thread count
     * is the one hxfrd is started with (--threads). */
    struct hxfr_encoder_config cfg = {
        .width = o->width,
        .height = o->height,
        .threads = o->threads,
        .realtime = true,
    };
    /* The CPU figure includes opening the encoder, as the daemon's does
     * (its sessions open theirs on the first frame). */
    double cpu0 = cpu_ms();
    enc = hxfr__encoder_create(&cfg);
    if (!enc) {
        fprintf(stderr, "hxfr-bench: cannot open the encoder: %s\n", strerror(errno));
        goto out;
    }
    double t0 = now_ms();
    r.t0_ms = t0;
    for (uint32_t i = 0; i < o->frames; i++) {
        struct hxfr_image img = {.format = HXFR_FORMAT_ARGB8888,
                                 .width = o->width,
                                 .height = o->height,
                                 .planes = {raw + frame_bytes(o) * i, NULL, NULL},
                                 .strides = {o->width * 4u, 0, 0}};
        struct hxfr_packet pkt;
        double t = now_ms();
        int e = hxfr__encoder_encode(enc, &img, (int64_t)i, false, &pkt);
        double t1 = now_ms();
        r.lat_ms[i] = t1 - t;
        r.done_ms[i] = t1 - t0;
        if (e < 0) {
            fprintf(stderr, "hxfr-bench: encode failed at frame %u: %d\n", i, e);
            goto out;
        }
        r.keyframes += pkt.keyframe;
        if (append(&r, pkt.data, pkt.size) < 0) {
            goto out;
        }
    }
    double secs = (now_ms() - t0) / 1e3, cpu = cpu_ms() - cpu0;
    if (o->out && write_file(o->out, r.stream, r.stream_len) < 0) {
        goto out;
    }
    printf("{\"mode\": \"floor\", \"frames\": %u, \"seconds\": %.4f, \"fps\": %.2f, "
           "\"cpu_ms_per_frame\": %.3f, \"peak_rss_kb\": %ld, \"bytes\": %zu, "
           "\"keyframes\": %u, \"threads\": %d, \"encoder\": \"%s\", ",
           o->frames, secs, o->frames / secs, cpu / o->frames,
           peak_rss_kb() - (long)(r.raw_len / 1024), r.stream_len, r.keyframes, o->threads,
           enc->codec_name);
    print_latencies(&r);
    ret = 0;
out:
    hxfr__encoder_destroy(enc);
    run_finish(&r);
    return ret;
}

static void on_frame(void *user_data, const struct hxfr_client_result *res)
{
    struct run *r = user_data;
    r->t_last_ms = now_ms();
    if (res->seq >= r->o->frames) {
        return;
    }
    if (res->status != 0) {
        r->errors++;
        fprintf(stderr, "hxfr-bench: frame %llu failed: %d %s\n", (unsigned long long)res->seq,
                res->status, res->remote_message);
        return;
    }
    r->done++;
    r->keyframes += res->keyframe;
    r->lat_ms[res->seq] = (double)res->latency_ns / 1e6;
    r->done_ms[res->seq] = r->t_last_ms - r->t0_ms;
    if (append(r, res->data, res->size) < 0) {
        r->errors++;
    }
}

static void sleep_until_ms(double t)
{
    double d = t - now_ms();
    if (d > 0) {
        struct timespec ts = {.tv_sec = (time_t)(d / 1e3),
                              .tv_nsec = (long)((d - (double)(time_t)(d / 1e3) * 1e3) * 1e6)};
        nanosleep(&ts, NULL);
    }
}

static int cmd_client(const struct options *o)
{
    int ret = 1;
    struct run r;
    struct hxfr_client *c = NULL;
    double copy_ms = 0;
    if (run_init(&r, o) < 0) {
        goto out;
    }
    const uint8_t *raw = r.raw;
    struct hxfr_client_options opt;
    hxfr_client_options_init(&opt);
    opt.window = o->window;
    opt.on_frame = on_frame;
    opt.user_data = &r;
    opt.max_body = 64u << 20;
    c = hxfr_client_new(&opt);
    if (!c) {
        fprintf(stderr, "hxfr-bench: client: %s\n", strerror(errno));
        goto out;
    }
    int e = hxfr_client_connect(c, o->connect);
    struct hxfr_client_config cfg = {.width = o->width, .height = o->height, .realtime = true};
    e = e < 0 ? e : hxfr_client_configure(c, &cfg, NULL);
    if (e < 0) {
        fprintf(stderr, "hxfr-bench: cannot connect/configure %s: %d\n", o->connect, e);
        goto out;
    }
    if (o->shm) {
        e = hxfr_client_shm_create(c, o->window, frame_bytes(o));
        if (e < 0) {
            fprintf(stderr, "hxfr-bench: shared-memory ring refused: %d\n", e);
            goto out;
        }
    }
    double cpu0 = cpu_ms(), t0 = now_ms();
    r.t0_ms = t0;
    for (uint32_t i = 0; i < o->frames; i++) {
        if (o->fps > 0) {
            /* Absolute schedule: one late frame does not delay the rest.
             * Results are read while waiting (not after a sleep), so a
             * frame's latency is not stretched to the next frame's time. */
            double due = t0 + i * 1e3 / o->fps;
            for (double left = due - now_ms(); left > 0; left = due - now_ms()) {
                if (hxfr_client_in_flight(c) == 0) {
                    sleep_until_ms(due);
                    break;
                }
                if (hxfr_client_dispatch(c, (int)left + 1) < 0) {
                    break;
                }
            }
        }
        const uint8_t *pix = raw + frame_bytes(o) * i;
        struct hxfr_client_frame f = {.format = HXFR_FORMAT_ARGB8888,
                                      .width = o->width,
                                      .height = o->height,
                                      .strides = {o->width * 4u, 0, 0},
                                      .pts = (int64_t)i * 16666667,
                                      .duration = 16666667};
        if (o->shm) {
            /* A guest renders into the slot; here the frame is already
             * rendered, so it is copied in (timed separately: a client
             * cost, not a host one). */
            struct hxfr_client_slot slot;
            e = hxfr_client_shm_acquire(c, -1, &slot);
            if (e >= 0) {
                double t = now_ms();
                memcpy(slot.data, pix, frame_bytes(o));
                copy_ms += now_ms() - t;
                e = hxfr_client_shm_submit(c, slot.index, &f, -1);
            }
        } else {
            f.planes[0] = pix;
            e = hxfr_client_submit(c, &f, -1);
        }
        if (e < 0) {
            fprintf(stderr, "hxfr-bench: submit of frame %u failed: %d\n", i, e);
            goto out;
        }
        hxfr_client_dispatch(c, 0);
    }
    e = hxfr_client_flush(c, 30000);
    double secs = (r.t_last_ms - t0) / 1e3, cpu = cpu_ms() - cpu0;
    if (e < 0 || r.done != o->frames || r.errors) {
        fprintf(stderr, "hxfr-bench: %u of %u frames came back (%u errors, flush %d)\n", r.done,
                o->frames, r.errors, e);
        goto out;
    }
    if (o->out && write_file(o->out, r.stream, r.stream_len) < 0) {
        goto out;
    }
    printf("{\"mode\": \"client\", \"frames\": %u, \"seconds\": %.4f, \"fps\": %.2f, "
           "\"client_cpu_ms_per_frame\": %.3f, \"client_copy_ms_per_frame\": %.3f, "
           "\"bytes\": %zu, \"keyframes\": %u, \"window\": %u, \"shm\": %s, ",
           o->frames, secs, o->frames / secs, cpu / o->frames, copy_ms / o->frames, r.stream_len,
           r.keyframes, o->window, o->shm ? "true" : "false");
    print_latencies(&r);
    ret = 0;
out:
    hxfr_client_destroy(c);
    run_finish(&r);
    return ret;
}

static int cmd_quality(const struct options *o)
{
    int ret = 1;
    size_t len = 0;
    uint8_t *h264 = NULL;
    struct hxfr_avcheck *dec = NULL;
    const uint8_t *raw = map_raw(o, &len);
    FILE *f = fopen(o->h264, "rb");
    if (!raw || !f) {
        fprintf(stderr, "hxfr-bench: %s: %s\n", o->h264, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || st.st_size <= 0) {
        fprintf(stderr, "hxfr-bench: %s is empty\n", o->h264);
        goto out;
    }
    h264 = malloc((size_t)st.st_size);
    if (!h264 || fread(h264, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fprintf(stderr, "hxfr-bench: cannot read %s\n", o->h264);
        goto out;
    }
    dec = hxfr_avcheck_new(16);
    if (!dec) {
        fprintf(stderr, "hxfr-bench: no H.264 decoder: %s\n", strerror(errno));
        goto out;
    }
    /* Fed in 128-byte pieces (fewer than 16 pictures fit in one, even of a
     * still screen, so none is evicted unread); each decoded picture is compared with the raw
     * frame of the same number as soon as it comes out. */
    double sum = 0, min = 1e9, sum_y = 0;
    uint64_t compared = 0;
    size_t off = 0;
    bool fed_all = false;
    while (!fed_all || compared < hxfr_avcheck_frame_count(dec)) {
        if (compared < hxfr_avcheck_frame_count(dec)) {
            const struct hxfr_avcheck_frame *fr = hxfr_avcheck_frame(dec, compared);
            if (!fr || compared >= o->frames) {
                fprintf(stderr, "hxfr-bench: %s: more pictures than frames, or one lost\n",
                        o->h264);
                goto out;
            }
            const uint8_t *planes[3] = {raw + frame_bytes(o) * compared, NULL, NULL};
            const uint32_t strides[3] = {o->width * 4u, 0, 0};
            double y, all;
            if (hxfr_avcheck_psnr(fr, HXFR_FORMAT_ARGB8888, o->width, o->height, planes, strides,
                                  &y, &all) < 0) {
                fprintf(stderr, "hxfr-bench: picture %llu has the wrong size\n",
                        (unsigned long long)compared);
                goto out;
            }
            sum += all;
            sum_y += y;
            min = all < min ? all : min;
            compared++;
            continue;
        }
        if (off < (size_t)st.st_size) {
            size_t n = (size_t)st.st_size - off > 128 ? 128 : (size_t)st.st_size - off;
            if (hxfr_avcheck_feed(dec, h264 + off, n) < 0) {
                fprintf(stderr, "hxfr-bench: %s: the decoder rejected the stream\n", o->h264);
                goto out;
            }
            off += n;
        } else {
            hxfr_avcheck_finish(dec);
            fed_all = true;
        }
    }
    if (compared != o->frames) {
        fprintf(stderr, "hxfr-bench: %s: %llu pictures decoded, %u expected\n", o->h264,
                (unsigned long long)compared, o->frames);
        goto out;
    }
    double fps = o->fps > 0 ? o->fps : 60;
    printf("{\"mode\": \"quality\", \"frames\": %u, \"bytes\": %lld, \"kbps\": %.1f, "
           "\"psnr_avg\": %.2f, \"psnr_y_avg\": %.2f, \"psnr_min\": %.2f, "
           "\"idr\": %llu, \"idr_missing_params\": %llu}\n",
           o->frames, (long long)st.st_size, (double)st.st_size * 8 * fps / o->frames / 1e3,
           sum / compared, sum_y / compared, min, (unsigned long long)hxfr_avcheck_idr_count(dec),
           (unsigned long long)hxfr_avcheck_idr_missing_params(dec));
    ret = 0;
out:
    hxfr_avcheck_destroy(dec);
    free(h264);
    if (f) {
        fclose(f);
    }
    if (raw) {
        munmap((void *)raw, len);
    }
    return ret;
}

static int usage(void)
{
    fprintf(stderr, "usage: hxfr-bench prepare --variant V --size WxH --frames N --out FILE\n"
                    "       hxfr-bench floor --raw FILE --size WxH --frames N [--threads T] "
                    "[--out H264]\n"
                    "       hxfr-bench client --connect URI --raw FILE --size WxH --frames N\n"
                    "                         [--window W] [--shm] [--fps F] [--out H264]\n"
                    "       hxfr-bench quality --raw FILE --size WxH --frames N --h264 FILE "
                    "[--fps F]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct options o = {.window = 1, .variant = HXFR_PATTERN_DESKTOP};
    if (argc < 2) {
        return usage();
    }
    o.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--shm") == 0) {
            o.shm = true;
            continue;
        }
        if (i + 1 >= argc) {
            return usage();
        }
        const char *v = argv[++i];
        char *end = NULL;
        if (strcmp(a, "--raw") == 0) {
            o.raw = v;
        } else if (strcmp(a, "--out") == 0) {
            o.out = v;
        } else if (strcmp(a, "--h264") == 0) {
            o.h264 = v;
        } else if (strcmp(a, "--connect") == 0) {
            o.connect = v;
        } else if (strcmp(a, "--variant") == 0) {
            o.variant = hxfr_pattern_variant_from_name(v);
            if (o.variant < 0) {
                return usage();
            }
        } else if (strcmp(a, "--size") == 0) {
            unsigned long w = strtoul(v, &end, 10);
            unsigned long h = *end == 'x' ? strtoul(end + 1, &end, 10) : 0;
            if (*end || w < 16 || h < 16 || w > 8192 || h > 8192 || (w | h) & 1) {
                return usage();
            }
            o.width = (uint32_t)w;
            o.height = (uint32_t)h;
        } else if (strcmp(a, "--frames") == 0) {
            unsigned long n = strtoul(v, &end, 10);
            if (*end || n == 0 || n > 100000) {
                return usage();
            }
            o.frames = (uint32_t)n;
        } else if (strcmp(a, "--threads") == 0) {
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 64) {
                return usage();
            }
            o.threads = (int)n;
        } else if (strcmp(a, "--window") == 0) {
            unsigned long n = strtoul(v, &end, 10);
            if (*end || n < 1 || n > HXFR_CLIENT_MAX_WINDOW) {
                return usage();
            }
            o.window = (uint32_t)n;
        } else if (strcmp(a, "--fps") == 0) {
            o.fps = strtod(v, &end);
            if (*end || o.fps < 0 || o.fps > 1000) {
                return usage();
            }
        } else {
            return usage();
        }
    }
    if (!o.width || !o.frames) {
        return usage();
    }
    av_log_set_level(AV_LOG_ERROR);
    if (strcmp(o.mode, "prepare") == 0 && o.out) {
        return cmd_prepare(&o);
    }
    if (strcmp(o.mode, "floor") == 0 && o.raw) {
        return cmd_floor(&o);
    }
    if (strcmp(o.mode, "client") == 0 && o.raw && o.connect) {
        return cmd_client(&o);
    }
    if (strcmp(o.mode, "quality") == 0 && o.raw && o.h264) {
        return cmd_quality(&o);
    }
    return usage();
}
