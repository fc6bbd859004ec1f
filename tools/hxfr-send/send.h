/* hxfr-send's parts, private to the program: the options (args.c), the
 * frame sources (source.c, and one file per kind: source-pattern.c,
 * source-file.c, source-drm.c), the statistics and reports (report.c) and the run
 * (main.c). Everything prints with the "hxfr-send: " prefix itself.
 */
#ifndef HXFR_SEND_H
#define HXFR_SEND_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <hxfr/client.h>

#define EXIT_FATAL       1
#define EXIT_USAGE       2
#define EXIT_INTERRUPTED 130
#define RECENT_LATENCIES 256u

/* The command line, after send_parse_args(). A source may still change
 * the frame size, format and rate when it opens (a y4m header). */
struct send_args {
    const char *connect;
    const char *source;
    const char *output;
    uint32_t width;
    uint32_t height;
    bool have_size;
    double fps;
    bool have_fps;
    uint64_t frames;
    bool have_frames;
    uint32_t window;
    bool json;
    uint32_t format;
    uint32_t bitrate;
    uint32_t gop;
    bool reconnect;
    double duration;
    uint16_t session;
    bool have_session;
    int32_t scanout; /* -1: not publishing into a scanout */
    unsigned connect_timeout;
    bool shm;               /* memfd ring over unix: */
    const char *shm_region; /* host-configured region name */
    const char *shm_path;   /* this side's view of it (NULL: find ivshmem) */
    uint64_t shm_offset;
};

/* Parses argv into *a (defaults first). --help prints and exits 0.
 * Returns 0 or -EINVAL after saying why on stderr. */
int send_parse_args(int argc, char **argv, struct send_args *a);

/* ---- Frame sources ------------------------------------------------------
 * --source NAME[:ARG] picks the source whose ops->name is NAME; each kind
 * lives in its own file and is listed in source.c. */

#define SEND_SOURCE_OPS_VERSION 1u

struct send_source {
    const struct send_source_ops *ops;
};

struct send_source_ops {
    uint32_t version; /* SEND_SOURCE_OPS_VERSION */
    const char *name; /* NAME in --source NAME[:ARG] */
    const char *form; /* how --help and errors show it: "y4m:FILE" */
    bool needs_arg;   /* NAME alone, without ":ARG", is not this source */
    /* Required. Opens the source for arg (the text after "NAME:", NULL
     * without one). Runs before the connection: it may set the size,
     * format and frame rate in *a that its frames impose (unless the user
     * gave them; then a mismatch is an error). Returns NULL after saying
     * why on stderr. */
    struct send_source *(*open)(const char *arg, struct send_args *a);
    /* Required for pixel sources (NULL for resource sources, below).
     * Writes frame index (0, 1, ... in order) into buf, laid out as g
     * (a->format at a->width x a->height, tightly packed). Returns 1 with a
     * frame, 0 when the source has ended, or -errno after saying why on
     * stderr. */
    int (*read)(struct send_source *src, const struct hxfr_geometry *g, uint8_t *buf,
                uint64_t index);
    /* Resource sources (--source drm) instead of read: their frames are
     * GPU resources that the host reads in place, sent as resource ids
     * without pixels. render draws frame index into a buffer of its own
     * that the host does not hold now and gives its virtio-gpu resource
     * id, its stride and a token; returns 1, 0 when the source has ended,
     * -EBUSY when the host holds every buffer (wait for a result, then
     * call again), or -errno after saying why on stderr. done(token) gives
     * the buffer back once its frame's result arrived (encoded or not). */
    int (*render)(struct send_source *src, uint64_t index, uint32_t *resource_id, uint32_t *stride,
                  void **token);
    void (*done)(struct send_source *src, void *token);
    /* Required. Frees the source. */
    void (*close)(struct send_source *src);
};

/* Opens the source a->source names. NULL after saying why on stderr. */
struct send_source *send_source_open(struct send_args *a);
int send_source_read(struct send_source *src, const struct hxfr_geometry *g, uint8_t *buf,
                     uint64_t index);
/* Accepts NULL. */
void send_source_close(struct send_source *src);

extern const struct send_source_ops send_pattern_source;
extern const struct send_source_ops send_y4m_source;
extern const struct send_source_ops send_raw_source;
#if HXFR_SEND_HAVE_DRM
extern const struct send_source_ops send_drm_source;
#endif

/* ---- Statistics and reports --------------------------------------------- */

struct send_stats {
    uint64_t submitted;
    uint64_t ok;
    uint64_t errors;
    uint64_t remote_errors;
    uint64_t keyframes;
    uint64_t bytes;
    uint64_t reconnects;
    uint64_t disconnects;
    bool first_after_reconnect_pending;
    uint32_t *lat_us; /* every latency, microseconds; grown geometrically */
    size_t lat_len;
    size_t lat_cap;
    uint32_t recent[RECENT_LATENCIES];
    size_t recent_len;
    size_t recent_pos;
};

/* One run: what the callbacks and reports share. */
struct send_app {
    struct send_args a;
    struct send_stats s;
    FILE *out; /* the Annex B output, once the host accepted the session */
    int out_error;
    bool tty;             /* stderr is a terminal: progress line, "\r\033[K" */
    uint64_t frame_bytes; /* pixel bytes per frame */
    uint32_t shm_slots;   /* ring slots (0 inline) */
    uint64_t shm_slot_bytes;
    /* A resource source: every result gives its buffer back (done). */
    struct send_source *resource_src;
};

/* "\r\033[K" on a terminal (clears the progress line), "" otherwise. */
const char *send_clear(const struct send_app *app);
uint64_t send_now_ns(void);

/* The client's callbacks; user_data is the struct send_app. on_frame
 * counts, records the latency and appends the access unit to app->out. */
void send_on_frame(void *data, const struct hxfr_client_result *res);
void send_on_event(void *data, const struct hxfr_client_event *ev);

/* The live line on a terminal. */
void send_progress(struct send_app *app, uint64_t start_ns);
/* The closing summary on stderr (and as JSON on stdout with --json). */
void send_summary(struct send_app *app, double secs, const struct hxfr_config_resp *cr,
                  const char *uri);
/* Frees what the statistics hold. */
void send_stats_finish(struct send_stats *s);

#endif
