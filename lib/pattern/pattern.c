/* The deterministic desktop-like test screen.
 *
 * Every scanline is first drawn as 8-bit palette indices (painter's order:
 * desktop, windows back to front, top panel, mouse pointer) into a small
 * buffer on the stack, then mapped to the destination format through
 * per-format lookup tables. That keeps rendering integer-only and cheap
 * (a few table lookups per pixel), makes every format show the same
 * picture, and lets the YUV formats be produced directly: Y from a table,
 * chroma as the rounded mean of the four palette U/V values of each 2x2
 * block, which matches what libyuv's ARGBToI420 gives for the RGB
 * rendering to within a level or two of rounding.
 *
 * The picture is a function of (variant, width, height, index) only: no
 * global state, no allocation, so it is safe to call from any thread.
 */
#include "pattern.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <hxfr/proto.h>

/* Palette slots. The first block holds the user-interface colours; the
 * ramp (RAMP_LEN smooth, cyclic colours) paints the video-like region. */
enum {
    C_DESKTOP,
    C_PANEL,
    C_PANEL_TEXT,
    C_BORDER,
    C_TITLE_DOC,
    C_TITLE_TERM,
    C_TITLE_VIDEO,
    C_TITLE_TEXT_LIGHT,
    C_TITLE_TEXT_DARK,
    C_BTN_CLOSE,
    C_BTN_MIN,
    C_BTN_MAX,
    C_DOC_BG,
    C_DOC_TEXT,
    C_TERM_BG,
    C_TERM_TEXT,
    C_TERM_PROMPT,
    C_VIDEO_BG,
    C_BALL,
    C_CURSOR_FILL,
    C_CURSOR_EDGE,
    C_FIXED_COUNT,
    C_RAMP = 64,
    RAMP_LEN = 128,
};

static const uint8_t fixed_rgb[C_FIXED_COUNT][3] = {
    [C_DESKTOP] = {58, 110, 165},       [C_PANEL] = {32, 32, 36},
    [C_PANEL_TEXT] = {225, 225, 225},   [C_BORDER] = {45, 45, 48},
    [C_TITLE_DOC] = {40, 120, 220},     [C_TITLE_TERM] = {190, 190, 190},
    [C_TITLE_VIDEO] = {170, 50, 60},    [C_TITLE_TEXT_LIGHT] = {255, 255, 255},
    [C_TITLE_TEXT_DARK] = {30, 30, 30}, [C_BTN_CLOSE] = {230, 70, 60},
    [C_BTN_MIN] = {240, 190, 50},       [C_BTN_MAX] = {80, 190, 80},
    [C_DOC_BG] = {250, 250, 248},       [C_DOC_TEXT] = {35, 35, 40},
    [C_TERM_BG] = {22, 26, 30},         [C_TERM_TEXT] = {170, 225, 170},
    [C_TERM_PROMPT] = {235, 200, 120},  [C_VIDEO_BG] = {0, 0, 0},
    [C_BALL] = {245, 205, 45},          [C_CURSOR_FILL] = {255, 255, 255},
    [C_CURSOR_EDGE] = {0, 0, 0},
};

/* Text metrics in pixels: glyphs are GLYPH_W x GLYPH_H bit masks placed on
 * a CHAR_W grid. Fixed pixel sizes, like real desktop text. */
#define GLYPH_W     5
#define GLYPH_H     9
#define CHAR_W      7
#define DOC_LINE_H  16
#define TERM_LINE_H 14
#define TEXT_MARGIN 8

#define CURSOR_W 12
#define CURSOR_H 19
/* The mouse pointer: 'X' edge, 'o' fill, ' ' transparent. */
static const char cursor_shape[CURSOR_H][CURSOR_W + 1] = {
    "X           ", "XX          ", "XoX         ", "XooX        ", "XoooX       ",
    "XooooX      ", "XoooooX     ", "XooooooX    ", "XoooooooX   ", "XooooooooX  ",
    "XoooooooooX ", "XooooooXXXXX", "XoooXooX    ", "XooX XooX   ", "XoX  XooX   ",
    "XX    XooX  ", "X     XooX  ", "       XooX ", "       XXX  ",
};

/* The caret blinks with this half-period, in frames. */
#define CARET_HALF_PERIOD 30
/* The panel clock advances once per this many frames. */
#define CLOCK_PERIOD 60
/* Neighbourhood radius a probed pixel must share its colour with, so that
 * probe points survive lossy coding at their edges. */
#define PROBE_MARGIN 4

enum win_kind { WIN_DOC, WIN_TERM, WIN_VIDEO, WIN_COUNT };

struct rect {
    int32_t x0, y0, x1, y1; /* half-open; may be empty (x1 <= x0) */
};

struct window {
    struct rect outer, title, client;
    struct rect title_text, buttons;
    uint8_t title_color, title_text_color;
    uint32_t seed;
    int32_t button_size, button_gap;
};

struct layout {
    int32_t w, h;
    enum hxfr_pattern_variant variant;
    uint64_t index;
    int32_t border, title_h;
    struct rect panel;
    struct window win[WIN_COUNT]; /* back to front */
    struct rect cursor_range;     /* where the pointer's top-left may be */
    struct rect cursor_extent;    /* every pixel the pointer may cover */
    int32_t cursor_x, cursor_y;
    uint32_t term_scroll; /* terminal scroll offset in pixels */
    uint32_t video_t;     /* video animation time */
    int32_t caret_line;
    bool caret_on;
    uint32_t clock;
};

/* A small integer mixer (good avalanche, no tables): the source of every
 * "random" text decision, so the picture is deterministic. */
static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static uint32_t mix3(uint32_t a, uint32_t b, uint32_t c)
{
    return mix(a ^ mix(b ^ mix(c)));
}

static bool rect_has(const struct rect *r, int32_t x, int32_t y)
{
    return x >= r->x0 && x < r->x1 && y >= r->y0 && y < r->y1;
}

static bool rect_has_row(const struct rect *r, int32_t y)
{
    return y >= r->y0 && y < r->y1 && r->x1 > r->x0;
}

static struct rect rect_permille(int32_t w, int32_t h, int32_t x0, int32_t y0, int32_t x1,
                                 int32_t y1)
{
    return (struct rect){w * x0 / 1000, h * y0 / 1000, w * x1 / 1000, h * y1 / 1000};
}

/* Fills row[x0, x1) clipped to [0, w). */
static void fill(uint8_t *row, int32_t w, int32_t x0, int32_t x1, uint8_t c)
{
    if (x0 < 0) {
        x0 = 0;
    }
    if (x1 > w) {
        x1 = w;
    }
    if (x1 > x0) {
        memset(row + x0, c, (size_t)(x1 - x0));
    }
}

/* A triangle wave over [0, n]: position of something bouncing at speed 1. */
static int32_t bounce(uint64_t t, int32_t n)
{
    if (n <= 0) {
        return 0;
    }
    uint64_t p = t % (uint64_t)(2 * n);
    return p <= (uint64_t)n ? (int32_t)p : (int32_t)(2 * (uint64_t)n - p);
}

static uint32_t glyph_mask(uint32_t glyph, int32_t glyph_row)
{
    if (glyph == 0 || glyph_row < 0 || glyph_row >= GLYPH_H) {
        return 0;
    }
    uint32_t m = mix(glyph * 16u + (uint32_t)glyph_row) & 0x1fu;
    /* Keep a vertical stem in most glyphs so rows read as letters rather
     * than noise. */
    return glyph_row == 0 || glyph_row == GLYPH_H - 1 ? (m & 0x0au) : (m | (glyph & 1u));
}

/* Length in characters of text line `line` of a text block. */
static int32_t line_length(uint32_t seed, uint32_t line, int32_t max_chars)
{
    uint32_t h = mix3(seed, line, 0x5a5a5a5au);
    if (h % 7u == 0 || max_chars <= 0) {
        return 0;
    }
    int32_t len = 4 + (int32_t)(h >> 8) % 90;
    return len < max_chars ? len : max_chars;
}

/* Draws scanline glyph_row of a text line: characters on a CHAR_W grid
 * from x0, clipped to [clip0, clip1). */
static void text_row(uint8_t *row, int32_t clip0, int32_t clip1, int32_t x0, uint32_t seed,
                     uint32_t line, int32_t nchars, int32_t glyph_row, uint8_t fg)
{
    if (glyph_row < 0 || glyph_row >= GLYPH_H) {
        return;
    }
    for (int32_t c = 0; c < nchars; c++) {
        int32_t cx = x0 + c * CHAR_W;
        if (cx >= clip1) {
            break;
        }
        if (cx + GLYPH_W <= clip0) {
            continue;
        }
        uint32_t h = mix3(seed, line, (uint32_t)c);
        uint32_t glyph = h % 6u == 0 ? 0 : 1 + (h >> 8) % 62u;
        uint32_t m = glyph_mask(glyph, glyph_row);
        for (int32_t b = 0; m != 0 && b < GLYPH_W; b++, m >>= 1) {
            int32_t px = cx + b;
            if ((m & 1u) && px >= clip0 && px < clip1) {
                row[px] = fg;
            }
        }
    }
}

static void layout_window(struct layout *l, enum win_kind k, struct rect outer)
{
    static const uint8_t title_color[WIN_COUNT] = {C_TITLE_DOC, C_TITLE_TERM, C_TITLE_VIDEO};
    static const uint8_t text_color[WIN_COUNT] = {C_TITLE_TEXT_LIGHT, C_TITLE_TEXT_DARK,
                                                  C_TITLE_TEXT_LIGHT};
    struct window *win = &l->win[k];
    int32_t b = l->border;
    win->outer = outer;
    win->title = (struct rect){outer.x0 + b, outer.y0 + b, outer.x1 - b, outer.y0 + b + l->title_h};
    win->client = (struct rect){outer.x0 + b, win->title.y1, outer.x1 - b, outer.y1 - b};
    win->title_color = title_color[k];
    win->title_text_color = text_color[k];
    win->seed = 0x1000u + (uint32_t)k;

    /* Title text: up to a third of the bar, starting half a bar in. */
    int32_t tw = win->title.x1 - win->title.x0;
    int32_t nchars = 6 + (int32_t)(mix(win->seed) % 14u);
    if (nchars * CHAR_W > tw / 3) {
        nchars = tw / 3 / CHAR_W;
    }
    int32_t tx = win->title.x0 + l->title_h / 2;
    win->title_text = (struct rect){tx, win->title.y0, tx + nchars * CHAR_W, win->title.y1};

    /* Three square buttons at the right end of the bar. */
    win->button_size = l->title_h * 6 / 10;
    win->button_gap = l->title_h / 4 + 1;
    int32_t bx1 = win->title.x1 - win->button_gap;
    int32_t bx0 = bx1 - 3 * (win->button_size + win->button_gap);
    if (bx0 < win->title_text.x1) {
        bx0 = bx1; /* no room: no buttons */
    }
    win->buttons = (struct rect){bx0, win->title.y0, bx1, win->title.y1};
}

static void layout_compute(struct layout *l, enum hxfr_pattern_variant v, int32_t w, int32_t h,
                           uint64_t index)
{
    memset(l, 0, sizeof(*l));
    l->w = w;
    l->h = h;
    l->variant = v;
    l->index = index;
    l->border = 1 + w / 1920;
    l->title_h = h * 25 / 1000 > 1 ? h * 25 / 1000 : 1;
    l->panel = (struct rect){0, 0, w, h * 28 / 1000};

    if (v == HXFR_PATTERN_BUSY) {
        layout_window(l, WIN_DOC, rect_permille(w, h, 30, 70, 400, 900));
        layout_window(l, WIN_TERM, rect_permille(w, h, 420, 60, 970, 380));
        layout_window(l, WIN_VIDEO, rect_permille(w, h, 230, 400, 960, 965));
    } else {
        layout_window(l, WIN_DOC, rect_permille(w, h, 30, 70, 560, 900));
        layout_window(l, WIN_TERM, rect_permille(w, h, 500, 110, 950, 540));
        layout_window(l, WIN_VIDEO, rect_permille(w, h, 590, 600, 930, 940));
    }

    /* The pointer wanders over the middle of the document window. */
    const struct rect *dc = &l->win[WIN_DOC].client;
    int32_t cw = dc->x1 - dc->x0, ch = dc->y1 - dc->y0;
    l->cursor_range =
        (struct rect){dc->x0 + cw / 6, dc->y0 + ch / 6, dc->x1 - cw / 3, dc->y1 - ch / 3};
    if (l->cursor_range.x1 < l->cursor_range.x0) {
        l->cursor_range.x1 = l->cursor_range.x0;
    }
    if (l->cursor_range.y1 < l->cursor_range.y0) {
        l->cursor_range.y1 = l->cursor_range.y0;
    }
    l->cursor_extent =
        (struct rect){l->cursor_range.x0, l->cursor_range.y0, l->cursor_range.x1 + CURSOR_W + 1,
                      l->cursor_range.y1 + CURSOR_H + 1};
    int32_t rw = l->cursor_range.x1 - l->cursor_range.x0;
    int32_t rh = l->cursor_range.y1 - l->cursor_range.y0;

    /* STATIC freezes everything but the caret; the others animate. */
    uint64_t t = v == HXFR_PATTERN_STATIC ? 0 : index;
    l->cursor_x = l->cursor_range.x0 + (v == HXFR_PATTERN_STATIC ? rw / 2 : bounce(t * 7, rw));
    l->cursor_y = l->cursor_range.y0 + (v == HXFR_PATTERN_STATIC ? rh / 2 : bounce(t * 5, rh));
    uint32_t speed = v == HXFR_PATTERN_BUSY ? 6u : 2u;
    l->term_scroll = (uint32_t)((t * speed) % (TERM_LINE_H * 100000u));
    l->video_t = (uint32_t)(t % (RAMP_LEN * 64u * 1024u));
    l->caret_line = 3;
    l->caret_on = (index / CARET_HALF_PERIOD) % 2 == 0;
    l->clock = (uint32_t)((t / CLOCK_PERIOD) % 100000u);
}

static void draw_title_row(const struct layout *l, const struct window *win, int32_t y,
                           uint8_t *row)
{
    const struct rect *t = &win->title;
    fill(row, l->w, t->x0, t->x1, win->title_color);
    int32_t text_y0 = t->y0 + (l->title_h - GLYPH_H) / 2;
    int32_t nchars = (win->title_text.x1 - win->title_text.x0) / CHAR_W;
    text_row(row, win->title_text.x0 > t->x0 ? win->title_text.x0 : t->x0,
             win->title_text.x1 < t->x1 ? win->title_text.x1 : t->x1, win->title_text.x0, win->seed,
             0, nchars, y - text_y0, win->title_text_color);

    if (win->buttons.x1 > win->buttons.x0) {
        static const uint8_t colors[3] = {C_BTN_MIN, C_BTN_MAX, C_BTN_CLOSE};
        int32_t by0 = t->y0 + (l->title_h - win->button_size) / 2;
        if (y >= by0 && y < by0 + win->button_size) {
            for (int i = 0; i < 3; i++) {
                int32_t bx =
                    win->buttons.x0 + win->button_gap + i * (win->button_size + win->button_gap);
                int32_t x0 = bx, x1 = bx + win->button_size;
                fill(row, l->w, x0 > t->x0 ? x0 : t->x0, x1 < t->x1 ? x1 : t->x1, colors[i]);
            }
        }
    }
}

static void draw_doc_row(const struct layout *l, const struct window *win, int32_t y, uint8_t *row)
{
    const struct rect *c = &win->client;
    fill(row, l->w, c->x0, c->x1, C_DOC_BG);
    int32_t rel = y - c->y0 - TEXT_MARGIN;
    if (rel < 0) {
        return;
    }
    uint32_t line = (uint32_t)(rel / DOC_LINE_H);
    int32_t grow = rel % DOC_LINE_H - 4;
    int32_t max_chars = (c->x1 - c->x0 - 2 * TEXT_MARGIN) / CHAR_W;
    int32_t len = line_length(win->seed, line, max_chars);
    int32_t x0 = c->x0 + TEXT_MARGIN;
    int32_t clip1 = c->x1 - TEXT_MARGIN;
    text_row(row, x0, clip1, x0, win->seed, line, len, grow, C_DOC_TEXT);

    /* The blinking caret sits after the text of one line. */
    if (l->caret_on && (int32_t)line == l->caret_line && rel % DOC_LINE_H >= 2 &&
        rel % DOC_LINE_H < DOC_LINE_H - 1) {
        int32_t cx = x0 + len * CHAR_W + 1;
        fill(row, l->w, cx > c->x0 ? cx : c->x0, cx + 2 < clip1 ? cx + 2 : clip1, C_DOC_TEXT);
    }
}

static void draw_term_row(const struct layout *l, const struct window *win, int32_t y, uint8_t *row)
{
    const struct rect *c = &win->client;
    fill(row, l->w, c->x0, c->x1, C_TERM_BG);
    int32_t rel = y - c->y0 - 4;
    if (rel < 0 || y >= c->y1 - 4) {
        return;
    }
    uint32_t pos = l->term_scroll + (uint32_t)rel;
    uint32_t line = pos / TERM_LINE_H;
    int32_t grow = (int32_t)(pos % TERM_LINE_H) - 2;
    int32_t max_chars = (c->x1 - c->x0 - 12) / CHAR_W;
    int32_t len = line_length(win->seed, line, max_chars);
    uint8_t fg = mix(line) % 5u == 0 ? C_TERM_PROMPT : C_TERM_TEXT;
    text_row(row, c->x0 + 6, c->x1 - 6, c->x0 + 6, win->seed, line, len, grow, fg);
}

static void draw_video_row(const struct layout *l, const struct window *win, int32_t y,
                           uint8_t *row)
{
    const struct rect *c = &win->client;
    int32_t x0 = c->x0 > 0 ? c->x0 : 0;
    int32_t x1 = c->x1 < l->w ? c->x1 : l->w;
    if (x1 <= x0) {
        return;
    }
    /* Two gradients drifting at different speeds give smooth moving
     * diagonal colour bands, like camera video rather than text. */
    uint32_t t = l->video_t;
    uint32_t ry = (uint32_t)(y - c->y0);
    uint32_t base = ry * 3u / 4u + t * 3u;
    for (int32_t x = x0; x < x1; x++) {
        uint32_t rx = (uint32_t)(x - c->x0);
        uint32_t v = ((rx + t * 5u) >> 2) + (base >> 2);
        row[x] = (uint8_t)(C_RAMP + v % RAMP_LEN);
    }
    /* A bouncing square. */
    int32_t cw = c->x1 - c->x0, ch = c->y1 - c->y0;
    int32_t s = (cw < ch ? cw : ch) / 5;
    if (s > 0) {
        int32_t bx = c->x0 + bounce((uint64_t)t * 4, cw - s);
        int32_t by = c->y0 + bounce((uint64_t)t * 3, ch - s);
        if (y >= by && y < by + s) {
            fill(row, l->w, bx > x0 ? bx : x0, bx + s < x1 ? bx + s : x1, C_BALL);
        }
    }
}

static void draw_panel_row(const struct layout *l, int32_t y, uint8_t *row)
{
    fill(row, l->w, 0, l->w, C_PANEL);
    int32_t ph = l->panel.y1 - l->panel.y0;
    int32_t grow = y - l->panel.y0 - (ph - GLYPH_H) / 2;
    /* Menu labels at the left, a clock at the right. */
    text_row(row, 0, l->w / 2, 10, 0x2000u, 0,
             (l->w / 2 - 10) / CHAR_W < 40 ? (l->w / 2 - 10) / CHAR_W : 40, grow, C_PANEL_TEXT);
    int32_t cx = l->w - 10 - 5 * CHAR_W;
    uint32_t clock = l->clock;
    for (int i = 4; i >= 0; i--) {
        uint32_t m = glyph_mask(1 + clock % 10u, grow);
        clock /= 10u;
        for (int32_t b = 0; m != 0 && b < GLYPH_W; b++, m >>= 1) {
            int32_t px = cx + i * CHAR_W + b;
            if ((m & 1u) && px >= 0 && px < l->w) {
                row[px] = C_PANEL_TEXT;
            }
        }
    }
}

static void draw_cursor_row(const struct layout *l, int32_t y, uint8_t *row)
{
    int32_t r = y - l->cursor_y;
    if (r < 0 || r >= CURSOR_H) {
        return;
    }
    for (int32_t i = 0; i < CURSOR_W; i++) {
        int32_t px = l->cursor_x + i;
        char ch = cursor_shape[r][i];
        if (ch != ' ' && px >= 0 && px < l->w) {
            row[px] = ch == 'X' ? C_CURSOR_EDGE : C_CURSOR_FILL;
        }
    }
}

/* Draws scanline y as palette indices into row[0, w). */
static void render_row(const struct layout *l, int32_t y, uint8_t *row)
{
    memset(row, C_DESKTOP, (size_t)l->w);
    for (int k = 0; k < WIN_COUNT; k++) {
        const struct window *win = &l->win[k];
        if (!rect_has_row(&win->outer, y)) {
            continue;
        }
        fill(row, l->w, win->outer.x0, win->outer.x1, C_BORDER);
        if (rect_has_row(&win->title, y)) {
            draw_title_row(l, win, y, row);
        } else if (rect_has_row(&win->client, y)) {
            switch ((enum win_kind)k) {
            case WIN_DOC:
                draw_doc_row(l, win, y, row);
                break;
            case WIN_TERM:
                draw_term_row(l, win, y, row);
                break;
            case WIN_VIDEO:
            case WIN_COUNT:
                draw_video_row(l, win, y, row);
                break;
            }
        }
    }
    if (rect_has_row(&l->panel, y)) {
        draw_panel_row(l, y, row);
    }
    draw_cursor_row(l, y, row);
}

/* The palette slot every frame has at (x, y), or -1 if it may change or is
 * fine detail. Mirrors render_row's painter's order from the top. */
static int classify(const struct layout *l, int32_t x, int32_t y)
{
    if (rect_has(&l->panel, x, y) || rect_has(&l->cursor_extent, x, y)) {
        return -1;
    }
    for (int k = WIN_COUNT - 1; k >= 0; k--) {
        const struct window *win = &l->win[k];
        if (!rect_has(&win->outer, x, y)) {
            continue;
        }
        if (rect_has(&win->title, x, y) && !rect_has(&win->title_text, x, y) &&
            !rect_has(&win->buttons, x, y)) {
            return win->title_color;
        }
        return -1;
    }
    return C_DESKTOP;
}

static void palette_rgb(unsigned i, uint8_t rgb[3])
{
    if (i < C_FIXED_COUNT) {
        memcpy(rgb, fixed_rgb[i], 3);
        return;
    }
    if (i >= C_RAMP && i < C_RAMP + RAMP_LEN) {
        /* Three phase-shifted triangle waves: a smooth cyclic hue ramp. */
        unsigned p = i - C_RAMP;
        for (int c = 0; c < 3; c++) {
            unsigned q = (p + (unsigned)c * RAMP_LEN / 3) % RAMP_LEN;
            unsigned tri = q < RAMP_LEN / 2 ? q : RAMP_LEN - q; /* 0..64 */
            rgb[c] = (uint8_t)(24 + tri * 3);
        }
        return;
    }
    rgb[0] = rgb[1] = rgb[2] = 0;
}

/* BT.601 limited range, the integer formulas libyuv's ARGBToI420 uses. */
static uint8_t rgb_to_y(const uint8_t p[3])
{
    return (uint8_t)((66 * p[0] + 129 * p[1] + 25 * p[2] + 0x1080) >> 8);
}

static uint8_t rgb_to_u(const uint8_t p[3])
{
    return (uint8_t)((112 * p[2] - 74 * p[1] - 38 * p[0] + 0x8080) >> 8);
}

static uint8_t rgb_to_v(const uint8_t p[3])
{
    return (uint8_t)((112 * p[0] - 94 * p[1] - 18 * p[2] + 0x8080) >> 8);
}

int hxfr_pattern_variant_from_name(const char *name)
{
    static const char *const names[] = {"desktop", "static", "busy"};
    for (int i = 0; name && i < 3; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static int check_args(enum hxfr_pattern_variant variant, uint32_t format, uint32_t width,
                      uint32_t height, uint8_t *const planes[3], const uint32_t strides[3])
{
    if ((unsigned)variant > HXFR_PATTERN_BUSY || width == 0 || height == 0 ||
        width > HXFR_MAX_DIM_HARD || height > HXFR_MAX_DIM_HARD || !planes || !strides ||
        !planes[0]) {
        return -EINVAL;
    }
    switch (format) {
    case HXFR_FORMAT_ARGB8888:
    case HXFR_FORMAT_XRGB8888:
    case HXFR_FORMAT_ABGR8888:
    case HXFR_FORMAT_XBGR8888:
        return strides[0] >= width * 4 ? 0 : -EINVAL;
    case HXFR_FORMAT_NV12:
        if ((width | height) & 1u || !planes[1] || strides[0] < width || strides[1] < width) {
            return -EINVAL;
        }
        return 0;
    case HXFR_FORMAT_I420:
        if ((width | height) & 1u || !planes[1] || !planes[2] || strides[0] < width ||
            strides[1] < width / 2 || strides[2] < width / 2) {
            return -EINVAL;
        }
        return 0;
    default:
        return -EINVAL;
    }
}

int hxfr_pattern_render(enum hxfr_pattern_variant variant, uint32_t format, uint32_t width,
                        uint32_t height, uint64_t index, uint8_t *const planes[3],
                        const uint32_t strides[3])
{
    int ret = check_args(variant, format, width, height, planes, strides);
    if (ret < 0) {
        return ret;
    }
    struct layout l;
    layout_compute(&l, variant, (int32_t)width, (int32_t)height, index);

    uint8_t rows[2][HXFR_MAX_DIM_HARD];
    bool rgb = format != HXFR_FORMAT_NV12 && format != HXFR_FORMAT_I420;
    if (rgb) {
        /* One 32-bit word per slot in the destination's byte order. */
        uint32_t pal[256];
        bool bgr_order = format == HXFR_FORMAT_ARGB8888 || format == HXFR_FORMAT_XRGB8888;
        for (unsigned i = 0; i < 256; i++) {
            uint8_t c[3], px[4];
            palette_rgb(i, c);
            px[0] = bgr_order ? c[2] : c[0];
            px[1] = c[1];
            px[2] = bgr_order ? c[0] : c[2];
            px[3] = 0xff;
            memcpy(&pal[i], px, 4);
        }
        for (uint32_t y = 0; y < height; y++) {
            render_row(&l, (int32_t)y, rows[0]);
            uint8_t *d = planes[0] + (size_t)y * strides[0];
            for (uint32_t x = 0; x < width; x++) {
                memcpy(d + 4 * (size_t)x, &pal[rows[0][x]], 4);
            }
        }
        return 0;
    }

    uint8_t pal_y[256], pal_u[256], pal_v[256];
    for (unsigned i = 0; i < 256; i++) {
        uint8_t c[3];
        palette_rgb(i, c);
        pal_y[i] = rgb_to_y(c);
        pal_u[i] = rgb_to_u(c);
        pal_v[i] = rgb_to_v(c);
    }
    for (uint32_t y = 0; y < height; y += 2) {
        render_row(&l, (int32_t)y, rows[0]);
        render_row(&l, (int32_t)y + 1, rows[1]);
        for (int r = 0; r < 2; r++) {
            uint8_t *d = planes[0] + (size_t)(y + (uint32_t)r) * strides[0];
            for (uint32_t x = 0; x < width; x++) {
                d[x] = pal_y[rows[r][x]];
            }
        }
        uint8_t *du, *dv;
        size_t step;
        if (format == HXFR_FORMAT_NV12) {
            du = planes[1] + (size_t)(y / 2) * strides[1];
            dv = du + 1;
            step = 2;
        } else {
            du = planes[1] + (size_t)(y / 2) * strides[1];
            dv = planes[2] + (size_t)(y / 2) * strides[2];
            step = 1;
        }
        for (uint32_t x = 0; x < width / 2; x++) {
            uint8_t a = rows[0][2 * x], b = rows[0][2 * x + 1];
            uint8_t c = rows[1][2 * x], d = rows[1][2 * x + 1];
            du[x * step] = (uint8_t)((pal_u[a] + pal_u[b] + pal_u[c] + pal_u[d] + 2) >> 2);
            dv[x * step] = (uint8_t)((pal_v[a] + pal_v[b] + pal_v[c] + pal_v[d] + 2) >> 2);
        }
    }
    return 0;
}

int hxfr_pattern_probe(enum hxfr_pattern_variant variant, uint32_t width, uint32_t height,
                       uint32_t x, uint32_t y, uint8_t rgb[3])
{
    if ((unsigned)variant > HXFR_PATTERN_BUSY || width == 0 || height == 0 ||
        width > HXFR_MAX_DIM_HARD || height > HXFR_MAX_DIM_HARD || x >= width || y >= height ||
        !rgb) {
        return 0;
    }
    if (x < PROBE_MARGIN || y < PROBE_MARGIN || x + PROBE_MARGIN >= width ||
        y + PROBE_MARGIN >= height) {
        return 0;
    }
    /* The solid regions are the same for every frame index. */
    struct layout l;
    layout_compute(&l, variant, (int32_t)width, (int32_t)height, 0);
    int c = classify(&l, (int32_t)x, (int32_t)y);
    if (c < 0) {
        return 0;
    }
    for (int32_t dy = -PROBE_MARGIN; dy <= PROBE_MARGIN; dy++) {
        for (int32_t dx = -PROBE_MARGIN; dx <= PROBE_MARGIN; dx++) {
            if (classify(&l, (int32_t)x + dx, (int32_t)y + dy) != c) {
                return 0;
            }
        }
    }
    palette_rgb((unsigned)c, rgb);
    return 1;
}
