/* hxfr-view input events, held state, QMP command text and the agent
 * API's actions (see input.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "input.h"
#include "json.h"

static const char *const qmp_buttons[HXFR_VIEW_BTN_COUNT] = {
    "left",     "middle",     "right",      "side",        "extra",
    "wheel-up", "wheel-down", "wheel-left", "wheel-right",
};

/* ---- Held state ------------------------------------------------------- */

static bool key_held(const struct hxfr_view_held *h, int key)
{
    return (h->keys[key / 8] >> (key % 8)) & 1u;
}

bool hxfr__view_held_apply(struct hxfr_view_held *h, const struct hxfr_view_event *ev)
{
    switch (ev->type) {
    case HXFR_VIEW_EV_KEY: {
        if (ev->key < 0 || (unsigned)ev->key >= hxfr__view_key_count()) {
            return false;
        }
        bool was = key_held(h, ev->key);
        uint8_t bit = (uint8_t)(1u << (ev->key % 8));
        if (ev->down) {
            h->keys[ev->key / 8] |= bit;
            return true;
        }
        h->keys[ev->key / 8] &= (uint8_t)~bit;
        return was;
    }
    case HXFR_VIEW_EV_BUTTON: {
        if (ev->button >= HXFR_VIEW_BTN_COUNT) {
            return false;
        }
        uint16_t bit = (uint16_t)(1u << ev->button);
        bool was = (h->buttons & bit) != 0;
        if (ev->down) {
            h->buttons |= bit;
            return true;
        }
        h->buttons &= (uint16_t)~bit;
        return was;
    }
    case HXFR_VIEW_EV_MOVE:
        return true;
    }
    return false;
}

unsigned hxfr__view_held_release(struct hxfr_view_held *h, struct hxfr_view_event *out,
                                 unsigned max)
{
    unsigned n = 0;
    for (unsigned k = 0; k < hxfr__view_key_count() && n < max; k++) {
        if (key_held(h, (int)k)) {
            out[n++] = (struct hxfr_view_event){.type = HXFR_VIEW_EV_KEY, .key = (int16_t)k};
        }
    }
    for (unsigned b = 0; b < HXFR_VIEW_BTN_COUNT && n < max; b++) {
        if (h->buttons & (1u << b)) {
            out[n++] = (struct hxfr_view_event){.type = HXFR_VIEW_EV_BUTTON, .button = (uint8_t)b};
        }
    }
    memset(h, 0, sizeof(*h));
    return n;
}

bool hxfr__view_held_empty(const struct hxfr_view_held *h)
{
    static const struct hxfr_view_held none;
    return memcmp(h, &none, sizeof(none)) == 0;
}

void hxfr__view_held_merge(struct hxfr_view_held *dst, const struct hxfr_view_held *src)
{
    for (size_t i = 0; i < sizeof(dst->keys); i++) {
        dst->keys[i] |= src->keys[i];
    }
    dst->buttons |= src->buttons;
}

/* ---- QMP command text --------------------------------------------------- */

struct out {
    char *p;
    size_t cap;
    size_t len;
    bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->full) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    o->len += (size_t)n;
}

static unsigned scale(uint16_t v, uint32_t size)
{
    uint64_t a = (uint64_t)v * HXFR_VIEW_ABS_MAX / size;
    return a > HXFR_VIEW_ABS_MAX ? HXFR_VIEW_ABS_MAX : (unsigned)a;
}

int hxfr__view_qmp_command(char *buf, size_t cap, const struct hxfr_view_event *ev, unsigned n,
                           uint32_t width, uint32_t height, uint64_t id)
{
    struct out o = {.p = buf, .cap = cap};
    if (n == 0 || cap == 0) {
        return -EINVAL;
    }
    put(&o, "{\"execute\":\"input-send-event\",\"arguments\":{\"events\":[");
    for (unsigned i = 0; i < n; i++) {
        const char *sep = i ? "," : "";
        switch (ev[i].type) {
        case HXFR_VIEW_EV_KEY: {
            const char *q = hxfr__view_key_qcode(ev[i].key);
            if (!q) {
                return -EINVAL;
            }
            put(&o,
                "%s{\"type\":\"key\",\"data\":{\"down\":%s,\"key\":{\"type\":\"qcode\","
                "\"data\":\"%s\"}}}",
                sep, ev[i].down ? "true" : "false", q);
            break;
        }
        case HXFR_VIEW_EV_BUTTON:
            if (ev[i].button >= HXFR_VIEW_BTN_COUNT) {
                return -EINVAL;
            }
            put(&o, "%s{\"type\":\"btn\",\"data\":{\"down\":%s,\"button\":\"%s\"}}", sep,
                ev[i].down ? "true" : "false", qmp_buttons[ev[i].button]);
            break;
        case HXFR_VIEW_EV_MOVE:
            if (width == 0 || height == 0) {
                return -EINVAL;
            }
            put(&o,
                "%s{\"type\":\"abs\",\"data\":{\"axis\":\"x\",\"value\":%u}},"
                "{\"type\":\"abs\",\"data\":{\"axis\":\"y\",\"value\":%u}}",
                sep, scale(ev[i].x, width), scale(ev[i].y, height));
            break;
        default:
            return -EINVAL;
        }
    }
    put(&o, "]},\"id\":%" PRIu64 "}\n", id);
    return o.full ? -ENOSPC : (int)o.len;
}

/* ---- Agent API actions ---------------------------------------------------- */

#define API_TOKENS_MAX 4096u

struct actions {
    const struct hxfr_json *j;
    uint32_t width, height;
    struct hxfr_view_pointer *ptr;
    struct hxfr_view_event *out;
    unsigned max;
    unsigned n;
    char *err;
    size_t err_cap;
    bool overflow;
};

static int fail(struct actions *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct actions *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, a->err_cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static void emit(struct actions *a, struct hxfr_view_event ev)
{
    if (a->n == a->max) {
        a->overflow = true;
        return;
    }
    a->out[a->n++] = ev;
}

static void emit_move(struct actions *a, uint16_t x, uint16_t y)
{
    emit(a, (struct hxfr_view_event){.type = HXFR_VIEW_EV_MOVE, .x = x, .y = y});
    a->ptr->x = x;
    a->ptr->y = y;
    a->ptr->known = true;
}

static void emit_button(struct actions *a, unsigned b, bool down)
{
    emit(a,
         (struct hxfr_view_event){.type = HXFR_VIEW_EV_BUTTON, .button = (uint8_t)b, .down = down});
}

static void emit_key(struct actions *a, int key, bool down)
{
    emit(a, (struct hxfr_view_event){.type = HXFR_VIEW_EV_KEY, .key = (int16_t)key, .down = down});
}

/* Reads x and y from the pair at index i ([x, y]) or from the object's
 * "x"/"y" members (when i is the object and pair is false). */
static int read_point(struct actions *a, int i, bool pair, const char *what, uint16_t *x,
                      uint16_t *y)
{
    int64_t vx, vy;
    int ix = pair ? hxfr__json_at(a->j, i, 0) : hxfr__json_get(a->j, i, "x");
    int iy = pair ? hxfr__json_at(a->j, i, 1) : hxfr__json_get(a->j, i, "y");
    if (pair && (a->j->toks[i].type != HXFR_JSON_ARRAY || a->j->toks[i].count != 2)) {
        return fail(a, "%s must be [x, y]", what);
    }
    if (a->width == 0 || a->height == 0) {
        return fail(a, "the scanout's size is not known yet (no keyframe received)");
    }
    if (hxfr__json_int(a->j, ix, 0, (int64_t)a->width - 1, &vx) < 0 ||
        hxfr__json_int(a->j, iy, 0, (int64_t)a->height - 1, &vy) < 0) {
        return fail(a, "%s: x and y must be integers inside %ux%u", what, a->width, a->height);
    }
    *x = (uint16_t)vx;
    *y = (uint16_t)vy;
    return 0;
}

/* An optional position: moves there when the action has x and y. */
static int optional_move(struct actions *a, int act)
{
    bool hx = hxfr__json_get(a->j, act, "x") >= 0;
    bool hy = hxfr__json_get(a->j, act, "y") >= 0;
    uint16_t x, y;
    if (!hx && !hy) {
        return 0;
    }
    if (read_point(a, act, false, "position", &x, &y) < 0) {
        return -EINVAL;
    }
    emit_move(a, x, y);
    return 0;
}

static int read_button(struct actions *a, int act, unsigned *b)
{
    static const char *const names[] = {"left", "middle", "right", "back", "forward"};
    int i = hxfr__json_get(a->j, act, "button");
    if (i < 0) {
        *b = HXFR_VIEW_BTN_LEFT;
        return 0;
    }
    for (unsigned k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        if (hxfr__json_is(a->j, i, names[k])) {
            *b = k;
            return 0;
        }
    }
    return fail(a, "button must be left, middle, right, back or forward");
}

static int read_count(struct actions *a, int act, const char *name, int64_t min, int64_t max,
                      int64_t def, int64_t *out)
{
    int i = hxfr__json_get(a->j, act, name);
    if (i < 0) {
        *out = def;
        return 0;
    }
    if (hxfr__json_int(a->j, i, min, max, out) < 0) {
        return fail(a, "%s must be an integer %" PRId64 "..%" PRId64, name, min, max);
    }
    return 0;
}

static int act_click(struct actions *a, int act)
{
    unsigned b;
    int64_t count;
    if (optional_move(a, act) < 0 || read_button(a, act, &b) < 0 ||
        read_count(a, act, "count", 1, 3, 1, &count) < 0) {
        return -EINVAL;
    }
    for (int64_t c = 0; c < count; c++) {
        emit_button(a, b, true);
        emit_button(a, b, false);
    }
    return 0;
}

static int act_drag(struct actions *a, int act)
{
    uint16_t fx, fy, tx, ty;
    unsigned b;
    int64_t steps;
    int from = hxfr__json_get(a->j, act, "from");
    int to = hxfr__json_get(a->j, act, "to");
    if (from < 0 || to < 0) {
        return fail(a, "drag needs from and to");
    }
    if (read_point(a, from, true, "from", &fx, &fy) < 0 ||
        read_point(a, to, true, "to", &tx, &ty) < 0 || read_button(a, act, &b) < 0 ||
        read_count(a, act, "steps", 1, 100, 10, &steps) < 0) {
        return -EINVAL;
    }
    emit_move(a, fx, fy);
    emit_button(a, b, true);
    /* Intermediate positions, so that the guest sees a motion. */
    for (int64_t s = 1; s <= steps; s++) {
        int64_t x = fx + ((int64_t)tx - fx) * s / steps;
        int64_t y = fy + ((int64_t)ty - fy) * s / steps;
        emit_move(a, (uint16_t)x, (uint16_t)y);
    }
    emit_button(a, b, false);
    return 0;
}

static int act_scroll(struct actions *a, int act)
{
    int64_t dx, dy;
    if (optional_move(a, act) < 0 || read_count(a, act, "dx", -100, 100, 0, &dx) < 0 ||
        read_count(a, act, "dy", -100, 100, 0, &dy) < 0) {
        return -EINVAL;
    }
    unsigned by = dy > 0 ? HXFR_VIEW_BTN_WHEEL_DOWN : HXFR_VIEW_BTN_WHEEL_UP;
    unsigned bx = dx > 0 ? HXFR_VIEW_BTN_WHEEL_RIGHT : HXFR_VIEW_BTN_WHEEL_LEFT;
    for (int64_t k = 0; k < (dy < 0 ? -dy : dy); k++) {
        emit_button(a, by, true);
        emit_button(a, by, false);
    }
    for (int64_t k = 0; k < (dx < 0 ? -dx : dx); k++) {
        emit_button(a, bx, true);
        emit_button(a, bx, false);
    }
    return 0;
}

#define COMBO_MAX 8u

/* Reads "keys" as "a+b+c" or ["a","b","c"]. */
static int read_combo(struct actions *a, int act, int *keys, unsigned *n)
{
    char name[64];
    int i = hxfr__json_get(a->j, act, "keys");
    *n = 0;
    if (i < 0) {
        return fail(a, "key needs keys");
    }
    if (a->j->toks[i].type == HXFR_JSON_ARRAY) {
        if (a->j->toks[i].count == 0 || a->j->toks[i].count > COMBO_MAX) {
            return fail(a, "keys: 1 to %u keys", COMBO_MAX);
        }
        for (unsigned k = 0; k < a->j->toks[i].count; k++) {
            int e = hxfr__json_at(a->j, i, k);
            int len = hxfr__json_str(a->j, e, name, sizeof(name));
            int key = len > 0 ? hxfr__view_key_by_name(name, (size_t)len) : -1;
            if (key < 0) {
                return fail(a, "unknown key in keys");
            }
            keys[(*n)++] = key;
        }
        return 0;
    }
    char text[COMBO_MAX * 24];
    int len = hxfr__json_str(a->j, i, text, sizeof(text));
    if (len <= 0) {
        return fail(a, "keys must be a string like \"ctrl+c\" or a list of key names");
    }
    /* Split at '+'; a '+' right after a separator (or alone) is the key. */
    size_t start = 0;
    while (start < (size_t)len) {
        size_t end = start + 1;
        while (end < (size_t)len && text[end] != '+') {
            end++;
        }
        int key = hxfr__view_key_by_name(text + start, end - start);
        if (key < 0) {
            return fail(a, "unknown key '%.*s'", (int)(end - start), text + start);
        }
        if (*n == COMBO_MAX) {
            return fail(a, "keys: at most %u keys", COMBO_MAX);
        }
        keys[(*n)++] = key;
        start = end + 1;
        if (end + 1 == (size_t)len) {
            return fail(a, "keys must not end with '+'");
        }
    }
    return 0;
}

static int act_key(struct actions *a, int act)
{
    int keys[COMBO_MAX];
    unsigned n;
    int64_t repeat;
    if (read_combo(a, act, keys, &n) < 0 || read_count(a, act, "repeat", 1, 100, 1, &repeat) < 0) {
        return -EINVAL;
    }
    for (int64_t r = 0; r < repeat; r++) {
        for (unsigned k = 0; k < n; k++) {
            emit_key(a, keys[k], true);
        }
        for (unsigned k = n; k-- > 0;) {
            emit_key(a, keys[k], false);
        }
    }
    return 0;
}

static int act_type(struct actions *a, int act)
{
    static char text[HXFR_VIEW_API_TEXT_MAX + 1];
    int shift_key = hxfr__view_key_by_name("shift", 5);
    int len = hxfr__json_str(a->j, hxfr__json_get(a->j, act, "text"), text, sizeof(text));
    if (len == -ENOSPC) {
        return fail(a, "text: at most %u bytes", HXFR_VIEW_API_TEXT_MAX);
    }
    if (len < 0) {
        return fail(a, "type needs text (a string)");
    }
    for (int i = 0; i < len; i++) {
        bool shift;
        int key = hxfr__view_key_for_char((unsigned char)text[i], &shift);
        if (key < 0) {
            return fail(a, "text: character %d cannot be typed (ASCII, \\n and \\t only)", i);
        }
        if (shift) {
            emit_key(a, shift_key, true);
        }
        emit_key(a, key, true);
        emit_key(a, key, false);
        if (shift) {
            emit_key(a, shift_key, false);
        }
    }
    return 0;
}

static int one_action(struct actions *a, int act)
{
    uint16_t x, y;
    unsigned b;
    if (act < 0 || a->j->toks[act].type != HXFR_JSON_OBJECT) {
        return fail(a, "an action must be an object");
    }
    int kind = hxfr__json_get(a->j, act, "action");
    if (hxfr__json_is(a->j, kind, "move")) {
        if (read_point(a, act, false, "move", &x, &y) < 0) {
            return -EINVAL;
        }
        emit_move(a, x, y);
        return 0;
    }
    if (hxfr__json_is(a->j, kind, "click")) {
        return act_click(a, act);
    }
    if (hxfr__json_is(a->j, kind, "down") || hxfr__json_is(a->j, kind, "up")) {
        bool down = hxfr__json_is(a->j, kind, "down");
        if (optional_move(a, act) < 0 || read_button(a, act, &b) < 0) {
            return -EINVAL;
        }
        emit_button(a, b, down);
        return 0;
    }
    if (hxfr__json_is(a->j, kind, "drag")) {
        return act_drag(a, act);
    }
    if (hxfr__json_is(a->j, kind, "scroll")) {
        return act_scroll(a, act);
    }
    if (hxfr__json_is(a->j, kind, "key")) {
        return act_key(a, act);
    }
    if (hxfr__json_is(a->j, kind, "type")) {
        return act_type(a, act);
    }
    return fail(a, "action must be move, click, down, up, drag, scroll, key or type");
}

int hxfr__view_actions_parse(const char *body, size_t len, uint32_t width, uint32_t height,
                             struct hxfr_view_pointer *ptr, struct hxfr_view_event *out,
                             unsigned max, char *err, size_t err_cap)
{
    static struct hxfr_json_tok toks[API_TOKENS_MAX];
    struct hxfr_json j;
    struct hxfr_view_pointer start = *ptr;
    struct actions a = {.j = &j,
                        .width = width,
                        .height = height,
                        .ptr = ptr,
                        .out = out,
                        .max = max,
                        .err = err,
                        .err_cap = err_cap};
    int r;
    err[0] = '\0';
    if (len > HXFR_VIEW_API_BODY_MAX) {
        r = fail(&a, "request body above %u bytes", HXFR_VIEW_API_BODY_MAX);
        goto out;
    }
    r = hxfr__json_parse(body, len, toks, API_TOKENS_MAX, &j);
    if (r < 0) {
        r = fail(&a, r == -E2BIG ? "too many JSON values" : "the body is not valid JSON");
        goto out;
    }
    int list = 0;
    if (toks[0].type == HXFR_JSON_OBJECT && hxfr__json_get(&j, 0, "actions") >= 0) {
        list = hxfr__json_get(&j, 0, "actions");
        if (toks[list].type != HXFR_JSON_ARRAY) {
            r = fail(&a, "actions must be a list");
            goto out;
        }
    }
    if (toks[list].type == HXFR_JSON_ARRAY) {
        if (toks[list].count == 0) {
            r = fail(&a, "no actions");
            goto out;
        }
        for (unsigned k = 0; k < toks[list].count; k++) {
            r = one_action(&a, hxfr__json_at(&j, list, k));
            if (r < 0) {
                goto out;
            }
        }
    } else {
        r = one_action(&a, list);
        if (r < 0) {
            goto out;
        }
    }
    /* Whatever the request pressed and did not release is released at its
     * end (a "down" without its "up"), and an "up" of something it did not
     * press is dropped: no request leaves anything held. */
    struct hxfr_view_held held;
    memset(&held, 0, sizeof(held));
    unsigned kept = 0;
    for (unsigned k = 0; k < a.n; k++) {
        if (hxfr__view_held_apply(&held, &out[k])) {
            out[kept++] = out[k];
        }
    }
    a.n = kept;
    if (!hxfr__view_held_empty(&held)) {
        struct hxfr_view_event rel[HXFR_VIEW_KEYS_MAX + HXFR_VIEW_BTN_COUNT];
        unsigned nr = hxfr__view_held_release(&held, rel, sizeof(rel) / sizeof(rel[0]));
        for (unsigned k = 0; k < nr; k++) {
            emit(&a, rel[k]);
        }
    }
    if (a.overflow) {
        r = -E2BIG;
        fail(&a, "the actions make more than %u events", max);
        goto out;
    }
    r = (int)a.n;
out:
    if (r < 0) {
        *ptr = start;
    }
    return r;
}
