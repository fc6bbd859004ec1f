/* hxfr-view: the keys a page or an agent can press. One table maps each key
 * between the browser's KeyboardEvent.code ("KeyA", "ShiftLeft"), QEMU's
 * QKeyCode as QMP input-send-event names it ("a", "shift") and the Linux
 * evdev code the guest then reads (KEY_A = 30), plus names for the agent
 * API ("ctrl", "Enter", "PageUp", "a"). Pure tables, no I/O. Internal to
 * hxfr-view.
 */
#ifndef HXFR_VIEW_KEYMAP_H
#define HXFR_VIEW_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys are small indexes into the table, 0..hxfr__view_key_count()-1. */
#define HXFR_VIEW_KEYS_MAX 192u /* an upper bound of the count, for bitmaps */

unsigned hxfr__view_key_count(void);

/* The key whose KeyboardEvent.code is the len bytes at code (exact,
 * case-sensitive, as browsers send it), or -1. */
int hxfr__view_key_by_code(const char *code, size_t len);

/* The key an agent names (case-insensitive): a KeyboardEvent.code
 * ("KeyA", "ArrowUp"), a QKeyCode ("a", "pgup", "ret"), or a common name
 * ("ctrl", "control", "shift", "alt", "super", "meta", "win", "cmd",
 * "enter", "return", "esc", "escape", "space", "tab", "backspace",
 * "delete", "del", "insert", "home", "end", "pageup", "pagedown", "up",
 * "down", "left", "right", "f1".."f24", "printscreen", "menu", and single
 * characters as on a US keyboard without shift: "a", "1", "-", "/"). The
 * left-hand key where there are two. Returns the key or -1. */
int hxfr__view_key_by_name(const char *name, size_t len);

/* The QKeyCode name of key (static string), or NULL. */
const char *hxfr__view_key_qcode(int key);
/* The KeyboardEvent.code of key, or NULL. */
const char *hxfr__view_key_code(int key);
/* The Linux input event code (linux/input-event-codes.h) a guest reads for
 * key through virtio-input or a USB keyboard, or -1. */
int hxfr__view_key_evdev(int key);

/* The key that types the ASCII character ch on a US layout and whether
 * shift must be held (e.g. 'A' -> KeyA with shift, '\n' -> Enter). Returns
 * the key or -1 for characters it cannot type (control characters other
 * than \n and \t, and anything outside ASCII). */
int hxfr__view_key_for_char(uint32_t ch, bool *shift);

#endif
