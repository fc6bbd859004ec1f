/* hxfr-view: request paths and names. Which route a path names, which VM
 * (upstream) and scanout it is about, and what a VM name may look like.
 * Pure string handling, unit-tested and fuzzed. Internal to hxfr-view.
 *
 * Routes (NAME/ is absent for the unnamed upstream, whose URLs are those of
 * a gateway with a single --connect URI):
 *   /                          index of every VM and scanout (HTML)
 *   /index.json                the same as JSON
 *   /viewer.js                 the page's script
 *   [/NAME]/scanout/N          the viewer page
 *   [/NAME]/ws/N               the WebSocket stream
 *   [/NAME]/scanout/N/info     the scanout's state (JSON)
 *   [/NAME]/scanout/N/screenshot.png   the latest frame
 *   [/NAME]/scanout/N/input    POST: input actions (JSON)
 */
#ifndef HXFR_VIEW_ROUTE_H
#define HXFR_VIEW_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HXFR_VIEW_NAME_MAX 32u /* longest VM name, bytes */

enum hxfr_view_route_kind {
    HXFR_VIEW_ROUTE_NONE = 0,
    HXFR_VIEW_ROUTE_INDEX,
    HXFR_VIEW_ROUTE_INDEX_JSON,
    HXFR_VIEW_ROUTE_SCRIPT,
    HXFR_VIEW_ROUTE_PAGE,
    HXFR_VIEW_ROUTE_WS,
    HXFR_VIEW_ROUTE_INFO,
    HXFR_VIEW_ROUTE_SCREENSHOT,
    HXFR_VIEW_ROUTE_INPUT,
};

struct hxfr_view_route {
    enum hxfr_view_route_kind kind;
    char vm[HXFR_VIEW_NAME_MAX + 1]; /* "" for the unnamed upstream */
    uint16_t scanout;                /* PAGE, WS, INFO, SCREENSHOT, INPUT */
};

/* True if the len bytes at s are a valid VM name: 1..HXFR_VIEW_NAME_MAX of
 * [A-Za-z0-9_-], not starting with '-', and not one of the words the root
 * routes use ("scanout", "ws"). */
bool hxfr__view_name_valid(const char *s, size_t len);

/* Parses a request path (len bytes, without the query string). Returns 0
 * and fills *out, or -EINVAL for a path that names no route (*out is then
 * zeroed). Scanout numbers are decimal 0..65535 without sign or leading
 * zeros. Whether the VM and scanout exist is the caller's business. */
int hxfr__view_route_parse(const char *path, size_t len, struct hxfr_view_route *out);

/* If path (len bytes, no query string) is prefix followed by a scanout
 * number (decimal, 0..65535, no sign, no leading zeros, nothing after it),
 * stores the number and returns 0; otherwise -EINVAL. */
int hxfr__view_path_scanout(const char *path, size_t len, const char *prefix, uint16_t *id);

/* Splits a --connect argument: "NAME=URI" when the text before the first
 * '=' is a valid name, else the whole text is the URI and the name is
 * empty. name receives the name (NUL-terminated, cap >= HXFR_VIEW_NAME_MAX
 * + 1); *uri points into arg. Returns 0, or -EINVAL for an empty URI. */
int hxfr__view_split_named(const char *arg, char *name, size_t cap, const char **uri);

/* Parses a "[NAME:]N" scanout reference (--scanout, the key of --qmp):
 * name receives NAME or "" when absent. Returns 0 or -EINVAL. */
int hxfr__view_parse_scanout_ref(const char *s, size_t len, char *name, size_t cap, uint16_t *id);

#endif
