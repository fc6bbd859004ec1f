/* hxfr-view input: what a page or an agent does to a VM, as a sequence of
 * events (key and button presses, absolute pointer positions, wheel
 * clicks), the bookkeeping of what each one holds down, and the QMP
 * `input-send-event` command text that carries events into QEMU. The agent
 * API's JSON actions (move, click, drag, scroll, key combos, text) become
 * events here too. Pure: no I/O; unit-tested and fuzzed. Internal to
 * hxfr-view.
 *
 * Coordinates are scanout pixels (0..width-1, 0..height-1). QEMU's
 * absolute axes run 0..0x7fff over the display; a pixel x maps to
 * x * 0x7fff / width, as QEMU's own user interfaces map them.
 */
#ifndef HXFR_VIEW_INPUT_H
#define HXFR_VIEW_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keymap.h"

#define HXFR_VIEW_ABS_MAX 0x7fff

enum hxfr_view_button {
    HXFR_VIEW_BTN_LEFT = 0,
    HXFR_VIEW_BTN_MIDDLE,
    HXFR_VIEW_BTN_RIGHT,
    HXFR_VIEW_BTN_BACK,    /* QMP "side" */
    HXFR_VIEW_BTN_FORWARD, /* QMP "extra" */
    HXFR_VIEW_BTN_WHEEL_UP,
    HXFR_VIEW_BTN_WHEEL_DOWN,
    HXFR_VIEW_BTN_WHEEL_LEFT,
    HXFR_VIEW_BTN_WHEEL_RIGHT,
    HXFR_VIEW_BTN_COUNT,
};

enum hxfr_view_event_type {
    HXFR_VIEW_EV_KEY = 1,
    HXFR_VIEW_EV_BUTTON,
    HXFR_VIEW_EV_MOVE,
};

struct hxfr_view_event {
    enum hxfr_view_event_type type;
    bool down;      /* KEY, BUTTON */
    int16_t key;    /* KEY: index into the key table */
    uint8_t button; /* BUTTON: enum hxfr_view_button */
    uint16_t x, y;  /* MOVE: scanout pixels */
};

/* What one page (or the gateway, for QMP reconnects) holds down. */
struct hxfr_view_held {
    uint8_t keys[(HXFR_VIEW_KEYS_MAX + 7) / 8];
    uint16_t buttons; /* bit per enum hxfr_view_button */
};

/* Records ev in *h. Returns true if ev should be sent: always for downs
 * (a repeated key down is key repeat) and moves, for ups only of what is
 * held (an up for something never pressed is dropped). */
bool hxfr__view_held_apply(struct hxfr_view_held *h, const struct hxfr_view_event *ev);

/* Writes an up event for everything held (keys first, then buttons) into
 * out (at most max) and clears *h. Returns the number written. */
unsigned hxfr__view_held_release(struct hxfr_view_held *h, struct hxfr_view_event *out,
                                 unsigned max);

/* True if nothing is held. */
bool hxfr__view_held_empty(const struct hxfr_view_held *h);

/* Adds every key and button of src to *dst. */
void hxfr__view_held_merge(struct hxfr_view_held *dst, const struct hxfr_view_held *src);

/* The QMP command that sends events into the guest, one line with its
 * newline: {"execute":"input-send-event","arguments":{"events":[...]},
 * "id":ID}\n. width and height are the scanout's size (for MOVE); a MOVE
 * becomes an x and a y "abs" event. Returns the length, or -ENOSPC (out
 * too small), -EINVAL (no events, an unknown key or button, a zero size
 * with a MOVE). A command of HXFR_VIEW_QMP_EVENTS_MAX events always fits
 * HXFR_VIEW_QMP_CMD_MAX bytes. */
#define HXFR_VIEW_QMP_EVENTS_MAX 64u
#define HXFR_VIEW_QMP_CMD_MAX    (160u + HXFR_VIEW_QMP_EVENTS_MAX * 2u * 72u)
int hxfr__view_qmp_command(char *out, size_t cap, const struct hxfr_view_event *ev, unsigned n,
                           uint32_t width, uint32_t height, uint64_t id);

/* ---- Agent API actions ------------------------------------------------ */

/* Limits of one POST /input request. */
#define HXFR_VIEW_API_BODY_MAX   65536u
#define HXFR_VIEW_API_EVENTS_MAX 8192u
#define HXFR_VIEW_API_TEXT_MAX   4096u /* bytes of one "type" action's text */

/* What the actions start from and end with: the pointer position. */
struct hxfr_view_pointer {
    uint16_t x, y;
    bool known;
};

/* Turns a POST /input body (len bytes of JSON) into events. The body is
 * one action object, an array of them, or {"actions":[...]}; each action
 * is {"action":A,...}:
 *   move    x, y
 *   click   [x, y], [button: left|middle|right|back|forward], [count: 1..3]
 *   down/up [x, y], [button]            (press or release one button)
 *   drag    from: [x, y], to: [x, y], [button], [steps: 1..100, default 10]
 *   scroll  [x, y], [dx], [dy]          (wheel clicks, -100..100; dy > 0
 *                                        scrolls down, dx > 0 right)
 *   key     keys: "ctrl+alt+t" or ["ctrl","alt","t"] (up to 8 keys, names
 *           as hxfr__view_key_by_name), [repeat: 1..100]: pressed in
 *           order, released in reverse
 *   type    text: ASCII (printable, \n, \t) typed on a US layout
 * Coordinates must lie inside width x height (the scanout's size; 0 means
 * unknown, then actions with coordinates are refused). *ptr is the
 * position before and is updated to the one after. Every event list is
 * balanced: what a request presses and does not release (a "down" without
 * its "up") is released at its end, and an "up" of something it did not
 * press is dropped. Uses static storage: one thread only.
 * Returns the number of events written to out (at most max), or -EINVAL
 * with a reason in err (NUL-terminated, cap err_cap) for anything invalid,
 * -E2BIG when the actions need more than max events. */
int hxfr__view_actions_parse(const char *body, size_t len, uint32_t width, uint32_t height,
                             struct hxfr_view_pointer *ptr, struct hxfr_view_event *out,
                             unsigned max, char *err, size_t err_cap);

#endif
