/* hxfr-view request paths and names (see route.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "route.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool word_is(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(s, word, len) == 0;
}

bool hxfr__view_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > HXFR_VIEW_NAME_MAX || s[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!name_char(s[i])) {
            return false;
        }
    }
    return !word_is(s, len, "scanout") && !word_is(s, len, "ws");
}

/* A scanout number: 1..5 digits, no leading zero, at most 65535. */
static int parse_id(const char *d, size_t n, uint16_t *id)
{
    uint32_t v = 0;
    if (n == 0 || n > 5 || (n > 1 && d[0] == '0')) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (d[i] < '0' || d[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (uint32_t)(d[i] - '0');
    }
    if (v > 0xFFFFu) {
        return -EINVAL;
    }
    *id = (uint16_t)v;
    return 0;
}

int hxfr__view_path_scanout(const char *path, size_t len, const char *prefix, uint16_t *id)
{
    size_t plen = strlen(prefix);
    if (len <= plen || memcmp(path, prefix, plen) != 0) {
        return -EINVAL;
    }
    return parse_id(path + plen, len - plen, id);
}

/* The part of a path after the VM prefix: scanout/N[/what] or ws/N. */
static int parse_scanout_route(const char *p, size_t len, struct hxfr_view_route *out)
{
    static const struct {
        const char *suffix;
        enum hxfr_view_route_kind kind;
    } subs[] = {
        {"", HXFR_VIEW_ROUTE_PAGE},
        {"/info", HXFR_VIEW_ROUTE_INFO},
        {"/screenshot.png", HXFR_VIEW_ROUTE_SCREENSHOT},
        {"/input", HXFR_VIEW_ROUTE_INPUT},
    };
    if (len > 3 && memcmp(p, "ws/", 3) == 0) {
        out->kind = HXFR_VIEW_ROUTE_WS;
        return parse_id(p + 3, len - 3, &out->scanout);
    }
    if (len <= 8 || memcmp(p, "scanout/", 8) != 0) {
        return -EINVAL;
    }
    p += 8;
    len -= 8;
    size_t n = 0;
    while (n < len && p[n] != '/') {
        n++;
    }
    if (parse_id(p, n, &out->scanout) < 0) {
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (word_is(p + n, len - n, subs[i].suffix)) {
            out->kind = subs[i].kind;
            return 0;
        }
    }
    return -EINVAL;
}

int hxfr__view_route_parse(const char *path, size_t len, struct hxfr_view_route *out)
{
    int r = -EINVAL;
    memset(out, 0, sizeof(*out));
    if (len == 0 || path[0] != '/') {
        goto out;
    }
    if (word_is(path, len, "/")) {
        out->kind = HXFR_VIEW_ROUTE_INDEX;
        r = 0;
    } else if (word_is(path, len, "/index.json")) {
        out->kind = HXFR_VIEW_ROUTE_INDEX_JSON;
        r = 0;
    } else if (word_is(path, len, "/viewer.js")) {
        out->kind = HXFR_VIEW_ROUTE_SCRIPT;
        r = 0;
    } else {
        const char *p = path + 1;
        size_t n = len - 1;
        size_t seg = 0;
        while (seg < n && p[seg] != '/') {
            seg++;
        }
        if (seg < n && hxfr__view_name_valid(p, seg)) {
            memcpy(out->vm, p, seg);
            out->vm[seg] = '\0';
            p += seg + 1;
            n -= seg + 1;
        }
        r = parse_scanout_route(p, n, out);
    }
out:
    if (r < 0) {
        memset(out, 0, sizeof(*out));
    }
    return r;
}

int hxfr__view_split_named(const char *arg, char *name, size_t cap, const char **uri)
{
    const char *eq = strchr(arg, '=');
    name[0] = '\0';
    *uri = arg;
    if (eq && hxfr__view_name_valid(arg, (size_t)(eq - arg)) && (size_t)(eq - arg) < cap) {
        memcpy(name, arg, (size_t)(eq - arg));
        name[eq - arg] = '\0';
        *uri = eq + 1;
    }
    return **uri ? 0 : -EINVAL;
}

int hxfr__view_parse_scanout_ref(const char *s, size_t len, char *name, size_t cap, uint16_t *id)
{
    const char *colon = memchr(s, ':', len);
    name[0] = '\0';
    if (colon) {
        size_t n = (size_t)(colon - s);
        if (!hxfr__view_name_valid(s, n) || n >= cap) {
            return -EINVAL;
        }
        memcpy(name, s, n);
        name[n] = '\0';
        len -= n + 1;
        s = colon + 1;
    }
    return parse_id(s, len, id);
}
