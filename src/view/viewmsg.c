/* hxfr-view message formats and the per-browser queue (see viewmsg.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hxfr-config.h>
#include <hxfr/proto.h>

#include "keymap.h"
#include "viewmsg.h"

/* ---- Frame header ---------------------------------------------------- */

void hxfr__view_frame_header_encode(uint8_t out[HXFR_VIEW_FRAME_HEADER_SIZE],
                                    const struct hxfr_view_frame_header *h)
{
    hxfr_put_u32(out, HXFR_VIEW_MAGIC);
    out[4] = HXFR_VIEW_VERSION;
    out[5] = h->type;
    hxfr_put_u16(out + 6, h->flags);
    hxfr_put_u32(out + 8, h->seq);
    hxfr_put_u16(out + 12, h->scanout_id);
    hxfr_put_u16(out + 14, HXFR_VIEW_FRAME_HEADER_SIZE);
    hxfr_put_u64(out + 16, (uint64_t)h->pts);
    hxfr_put_u64(out + 24, (uint64_t)h->recv_us);
    hxfr_put_u64(out + 32, (uint64_t)h->capture_us);
    hxfr_put_u64(out + 40, (uint64_t)h->encoded_us);
}

int hxfr__view_frame_header_decode(const uint8_t *msg, size_t len, struct hxfr_view_frame_header *h)
{
    if (len < HXFR_VIEW_BASE_HEADER_SIZE || hxfr_get_u32(msg) != HXFR_VIEW_MAGIC) {
        return -EBADMSG;
    }
    if (msg[4] != HXFR_VIEW_VERSION) {
        return -EPROTONOSUPPORT;
    }
    h->version = msg[4];
    h->type = msg[5];
    h->flags = hxfr_get_u16(msg + 6);
    h->seq = hxfr_get_u32(msg + 8);
    h->scanout_id = hxfr_get_u16(msg + 12);
    h->header_size = hxfr_get_u16(msg + 14);
    h->pts = (int64_t)hxfr_get_u64(msg + 16);
    h->recv_us = (int64_t)hxfr_get_u64(msg + 24);
    h->capture_us = 0;
    h->encoded_us = 0;
    if (h->header_size < HXFR_VIEW_BASE_HEADER_SIZE || h->header_size > len) {
        return -EBADMSG;
    }
    if (h->header_size >= HXFR_VIEW_FRAME_HEADER_SIZE) {
        h->capture_us = (int64_t)hxfr_get_u64(msg + 32);
        h->encoded_us = (int64_t)hxfr_get_u64(msg + 40);
    }
    return h->header_size;
}

/* ---- JSON text messages ---------------------------------------------- */

size_t hxfr__view_json_escape(char *out, size_t cap, const char *in, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        char esc[7];
        size_t n;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            /* Control characters and every non-ASCII byte become \u00XX:
             * the text may come from a hostile upstream and need not be
             * valid UTF-8, while a JSON text must be. */
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            n = 6;
        } else {
            esc[0] = (char)c;
            n = 1;
        }
        if (o + n >= cap) {
            break;
        }
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o] = '\0';
    return o;
}

/* snprintf's result as this file's convention: the length or -ENOSPC. */
static int fmt_result(int n, size_t cap)
{
    if (n < 0 || (size_t)n >= cap) {
        return -ENOSPC;
    }
    return n;
}

int hxfr__view_hello_format(char *out, size_t cap, const struct hxfr_view_hello *h)
{
    char vm[80];
    hxfr__view_json_escape(vm, sizeof(vm), h->vm, strlen(h->vm));
    int n = snprintf(out, cap,
                     "{\"type\":\"hello\",\"version\":%u,\"vm\":\"%s\",\"scanout\":%u,"
                     "\"input\":%s,\"server\":\"hxfr-view %s\",\"time_us\":%" PRId64 "}",
                     HXFR_VIEW_VERSION, vm, (unsigned)h->scanout, h->input ? "true" : "false",
                     HXFR_VERSION, h->time_us);
    return fmt_result(n, cap);
}

int hxfr__view_status_format(char *out, size_t cap, uint16_t scanout_id, const char *state,
                             const char *message, uint32_t retry_ms)
{
    char st[32];
    char msg[HXFR_VIEW_TEXT_MAX / 2];
    hxfr__view_json_escape(st, sizeof(st), state, strlen(state));
    hxfr__view_json_escape(msg, sizeof(msg), message ? message : "", message ? strlen(message) : 0);
    int n = snprintf(out, cap,
                     "{\"type\":\"status\",\"scanout\":%u,\"state\":\"%s\","
                     "\"message\":\"%s\",\"retry_ms\":%" PRIu32 "}",
                     (unsigned)scanout_id, st, msg, retry_ms);
    return fmt_result(n, cap);
}

int hxfr__view_pong_format(char *out, size_t cap, uint64_t token, int64_t time_us)
{
    int n = snprintf(out, cap, "{\"type\":\"pong\",\"token\":%" PRIu64 ",\"time_us\":%" PRId64 "}",
                     token, time_us);
    return fmt_result(n, cap);
}

/* ---- Browser input --------------------------------------------------- */

/* Parses a decimal token: 1..16 digits, no leading zero except "0" itself,
 * at most HXFR_VIEW_TOKEN_MAX. */
static int parse_token(const uint8_t *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 16 || (len > 1 && s[0] == '0')) {
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -EINVAL;
        }
        /* 16 digits stay below 2^64, so this cannot overflow. */
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > HXFR_VIEW_TOKEN_MAX) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* Splits the len bytes at s into at most max space-separated words (one
 * space each, none leading or trailing). Returns the count or -1. */
static int split_words(const uint8_t *s, size_t len, const uint8_t **w, size_t *wl, int max)
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && s[i] != ' ') {
            i++;
        }
        if (i == start || n == max) {
            return -1;
        }
        w[n] = s + start;
        wl[n] = i - start;
        n++;
        if (i < len) {
            i++; /* the one space */
            if (i == len) {
                return -1;
            }
        }
    }
    return n;
}

/* A decimal number min..max: no leading zeros, '-' only when min < 0. */
static int parse_int(const uint8_t *s, size_t len, long min, long max, long *out)
{
    bool neg = len > 0 && s[0] == '-';
    size_t i = neg ? 1 : 0;
    long v = 0;
    if (len == i || len - i > 5 || (neg && min >= 0) || (len - i > 1 && s[i] == '0') ||
        (neg && len - i == 1 && s[i] == '0')) {
        return -EINVAL;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (s[i] - '0');
    }
    v = neg ? -v : v;
    if (v < min || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static bool word(const uint8_t *w, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(w, lit, len) == 0;
}

static int parse_xy(const uint8_t *const *w, const size_t *wl, struct hxfr_view_input *out)
{
    long x, y;
    if (parse_int(w[0], wl[0], 0, 65535, &x) < 0 || parse_int(w[1], wl[1], 0, 65535, &y) < 0) {
        return -EINVAL;
    }
    out->x = (uint16_t)x;
    out->y = (uint16_t)y;
    return 0;
}

bool hxfr__view_input_is_input(enum hxfr_view_input_type type)
{
    return type >= HXFR_VIEW_INPUT_KEY;
}

int hxfr__view_input_parse(const uint8_t *data, size_t len, bool binary,
                           struct hxfr_view_input *out)
{
    const uint8_t *w[5];
    size_t wl[5];
    long v;
    if (len > HXFR_VIEW_INPUT_MAX) {
        return -EMSGSIZE;
    }
    if (binary) {
        return -EPROTO;
    }
    memset(out, 0, sizeof(*out));
    int n = split_words(data, len, w, wl, 5);
    if (n < 1) {
        return -EINVAL;
    }
    if (n == 1 && word(w[0], wl[0], "keyframe")) {
        out->type = HXFR_VIEW_INPUT_KEYFRAME;
        return 0;
    }
    if (n == 1 && word(w[0], wl[0], "release")) {
        out->type = HXFR_VIEW_INPUT_RELEASE;
        return 0;
    }
    if (n == 2 && word(w[0], wl[0], "ping")) {
        if (parse_token(w[1], wl[1], &out->token) < 0) {
            return -EINVAL;
        }
        out->type = HXFR_VIEW_INPUT_PING;
        return 0;
    }
    if (n == 2 && (word(w[0], wl[0], "kd") || word(w[0], wl[0], "ku"))) {
        if (wl[1] > HXFR_VIEW_CODE_MAX) {
            return -EINVAL;
        }
        for (size_t i = 0; i < wl[1]; i++) {
            uint8_t c = w[1][i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
                return -EINVAL;
            }
        }
        out->type = HXFR_VIEW_INPUT_KEY;
        out->down = w[0][1] == 'd';
        out->key = hxfr__view_key_by_code((const char *)w[1], wl[1]);
        return 0;
    }
    if (n == 3 && word(w[0], wl[0], "mm")) {
        out->type = HXFR_VIEW_INPUT_MOVE;
        return parse_xy(w + 1, wl + 1, out);
    }
    if (n == 4 && (word(w[0], wl[0], "bd") || word(w[0], wl[0], "bu"))) {
        if (parse_int(w[1], wl[1], 0, 4, &v) < 0) {
            return -EINVAL;
        }
        out->type = HXFR_VIEW_INPUT_BUTTON;
        out->down = w[0][1] == 'd';
        out->button = (unsigned)v;
        return parse_xy(w + 2, wl + 2, out);
    }
    if (n == 5 && word(w[0], wl[0], "wh")) {
        long dx, dy;
        if (parse_int(w[1], wl[1], -HXFR_VIEW_WHEEL_MAX, HXFR_VIEW_WHEEL_MAX, &dx) < 0 ||
            parse_int(w[2], wl[2], -HXFR_VIEW_WHEEL_MAX, HXFR_VIEW_WHEEL_MAX, &dy) < 0) {
            return -EINVAL;
        }
        out->type = HXFR_VIEW_INPUT_WHEEL;
        out->dx = (int)dx;
        out->dy = (int)dy;
        return parse_xy(w + 3, wl + 3, out);
    }
    return -EINVAL;
}

/* ---- Units -> Annex B ------------------------------------------------- */

static bool has_start_code(const uint8_t *u, uint32_t size)
{
    return (size >= 3 && u[0] == 0 && u[1] == 0 && u[2] == 1) ||
           (size >= 4 && u[0] == 0 && u[1] == 0 && u[2] == 0 && u[3] == 1);
}

long hxfr__view_units_to_annexb(uint8_t *buf, size_t len, uint32_t nal_count)
{
    if (hxfr_units_validate(buf, len, nal_count) < 0) {
        return -EBADMSG;
    }
    /* Writing never overtakes reading: before unit i the reader has
     * skipped 4 * (i + 1) size bytes and the writer has added at most
     * 4 * i start-code bytes, so the write position stays at least 4 bytes
     * behind the unit being read, and memmove handles the overlap. */
    size_t rd = 0;
    size_t wr = 0;
    for (uint32_t i = 0; i < nal_count; i++) {
        uint32_t size = hxfr_get_u32(buf + rd);
        rd += 4;
        if (!has_start_code(buf + rd, size)) {
            static const uint8_t sc[4] = {0, 0, 0, 1};
            memcpy(buf + wr, sc, sizeof(sc));
            wr += sizeof(sc);
        }
        memmove(buf + wr, buf + rd, size);
        wr += size;
        rd += size;
    }
    return (long)wr;
}

/* ---- Shared AUs -------------------------------------------------------- */

struct hxfr_view_au *hxfr__view_au_new(size_t pre, size_t size)
{
    if (pre > SIZE_MAX / 2 || size > SIZE_MAX / 2 - pre - sizeof(struct hxfr_view_au)) {
        errno = EOVERFLOW;
        return NULL;
    }
    struct hxfr_view_au *au = malloc(sizeof(*au) + pre + size);
    if (!au) {
        return NULL;
    }
    au->refs = 1;
    au->keyframe = false;
    au->seq = 0;
    au->size = size;
    au->msg = au->storage + pre;
    return au;
}

struct hxfr_view_au *hxfr__view_au_ref(struct hxfr_view_au *au)
{
    au->refs++;
    return au;
}

void hxfr__view_au_unref(struct hxfr_view_au *au)
{
    if (au && --au->refs == 0) {
        free(au);
    }
}

/* ---- Queue ------------------------------------------------------------ */

void hxfr__view_queue_init(struct hxfr_view_queue *q, unsigned max_frames, size_t max_bytes)
{
    memset(q, 0, sizeof(*q));
    if (max_frames < 1) {
        max_frames = 1;
    }
    if (max_frames > HXFR_VIEW_QUEUE_CAP) {
        max_frames = HXFR_VIEW_QUEUE_CAP;
    }
    q->max_frames = max_frames;
    q->max_bytes = max_bytes ? max_bytes : 1;
    q->want_key = true;
}

static void queue_clear(struct hxfr_view_queue *q)
{
    while (q->count > 0) {
        hxfr__view_queue_pop(q);
    }
}

void hxfr__view_queue_finish(struct hxfr_view_queue *q)
{
    queue_clear(q);
}

static void queue_push(struct hxfr_view_queue *q, struct hxfr_view_au *au)
{
    q->items[(q->head + q->count) % HXFR_VIEW_QUEUE_CAP] = hxfr__view_au_ref(au);
    q->count++;
    q->bytes += au->size;
}

enum hxfr_view_offer hxfr__view_queue_offer(struct hxfr_view_queue *q, struct hxfr_view_au *au)
{
    if (q->want_key && !au->keyframe) {
        q->skipped++;
        return HXFR_VIEW_OFFER_SKIPPED;
    }
    bool fits =
        q->count < q->max_frames && q->bytes <= q->max_bytes && au->size <= q->max_bytes - q->bytes;
    if (fits || q->count == 0) {
        q->want_key = false;
        queue_push(q, au);
        return HXFR_VIEW_OFFER_QUEUED;
    }
    /* The browser is behind: throw away what it has not been sent yet,
     * which is only safe up to a keyframe. */
    q->dropped += q->count;
    queue_clear(q);
    if (au->keyframe) {
        q->want_key = false;
        queue_push(q, au);
        return HXFR_VIEW_OFFER_QUEUED;
    }
    q->dropped++;
    q->want_key = true;
    return HXFR_VIEW_OFFER_OVERFLOW;
}

struct hxfr_view_au *hxfr__view_queue_peek(const struct hxfr_view_queue *q)
{
    return q->count ? q->items[q->head] : NULL;
}

void hxfr__view_queue_pop(struct hxfr_view_queue *q)
{
    if (q->count == 0) {
        return;
    }
    struct hxfr_view_au *au = q->items[q->head];
    q->items[q->head] = NULL;
    q->head = (q->head + 1) % HXFR_VIEW_QUEUE_CAP;
    q->count--;
    q->bytes -= au->size;
    hxfr__view_au_unref(au);
}

void hxfr__view_queue_resync(struct hxfr_view_queue *q)
{
    queue_clear(q);
    q->want_key = true;
}

/* ---- Headers --------------------------------------------------- */

/* Parses a decimal port of 1..5 digits (no leading zeros). */
static int parse_port(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* True if the n bytes at h are a dotted-quad 127.x.y.z address. */
static bool is_ipv4_loopback(const char *h, size_t n)
{
    unsigned parts = 0;
    size_t i = 0;
    if (n < 9 || memcmp(h, "127.", 4) != 0) {
        return false;
    }
    while (i < n) {
        size_t start = i;
        unsigned v = 0;
        while (i < n && h[i] >= '0' && h[i] <= '9' && i - start < 3) {
            v = v * 10 + (unsigned)(h[i] - '0');
            i++;
        }
        if (i == start || v > 255) {
            return false;
        }
        parts++;
        if (i < n) {
            if (h[i] != '.' || parts == 4) {
                return false;
            }
            i++;
            if (i == n) {
                return false;
            }
        }
    }
    return parts == 4;
}

static bool host_is_local(const char *host, unsigned port)
{
    size_t len = strlen(host);
    size_t name_len = len;
    unsigned p = 80;
    /* The port follows the last ':' unless that ':' is inside [...]. */
    const char *colon = strrchr(host, ':');
    const char *bracket = strrchr(host, ']');
    if (colon && (!bracket || colon > bracket)) {
        name_len = (size_t)(colon - host);
        if (parse_port(colon + 1, len - name_len - 1, &p) < 0) {
            return false;
        }
    }
    if (p != port) {
        return false;
    }
    if (name_len == 9 && strncasecmp(host, "localhost", 9) == 0) {
        return true;
    }
    if (name_len == 5 && memcmp(host, "[::1]", 5) == 0) {
        return true;
    }
    return is_ipv4_loopback(host, name_len);
}

int hxfr__view_check_request(const char *host, const char *origin, bool loopback, unsigned port)
{
    if (host && loopback && !host_is_local(host, port)) {
        return -EPERM;
    }
    if (origin) {
        size_t skip;
        if (!host) {
            return -EPERM;
        }
        if (strncmp(origin, "http://", 7) == 0) {
            skip = 7;
        } else if (strncmp(origin, "https://", 8) == 0) {
            skip = 8;
        } else {
            return -EPERM;
        }
        if (strcasecmp(origin + skip, host) != 0) {
            return -EPERM;
        }
    }
    return 0;
}
