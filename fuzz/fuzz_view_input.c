/* libFuzzer target for what hxfr-view takes from browsers: WebSocket
 * message payloads (hxfr__view_input_parse), request paths (routes) and Host/Origin
 * headers, plus the text escaping that may quote them back and the
 * FRAME_RESPONSE unit-list rewrite (data from the host side).
 *
 * Input layout: byte 0 selects flags; the rest is split at the first two
 * NUL bytes into up to three strings (message / host / origin). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "viewmsg.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint8_t sel = data[0];
    data++;
    size--;

    struct hxfr_view_input in;
    int r = hxfr__view_input_parse(data, size, (sel & 1) != 0, &in);
    if (r == 0 && in.type == HXFR_VIEW_INPUT_PING && in.token > HXFR_VIEW_TOKEN_MAX) {
        abort();
    }
    if (r == 0 && (size > HXFR_VIEW_INPUT_MAX || (sel & 1))) {
        abort();
    }

    uint16_t id = 0;
    if (hxfr__view_path_scanout((const char *)data, size, "/ws/", &id) == 0 && size > 9) {
        abort();
    }
    struct hxfr_view_route rt;
    if (hxfr__view_route_parse((const char *)data, size, &rt) == 0) {
        if (rt.kind == HXFR_VIEW_ROUTE_NONE || strlen(rt.vm) > HXFR_VIEW_NAME_MAX ||
            (rt.vm[0] && !hxfr__view_name_valid(rt.vm, strlen(rt.vm)))) {
            abort();
        }
    } else if (rt.kind != HXFR_VIEW_ROUTE_NONE || rt.vm[0]) {
        abort();
    }
    char name[HXFR_VIEW_NAME_MAX + 1];
    uint16_t ref;
    if (hxfr__view_parse_scanout_ref((const char *)data, size, name, sizeof(name), &ref) == 0 &&
        strlen(name) > HXFR_VIEW_NAME_MAX) {
        abort();
    }

    /* Three NUL-terminated strings from the input. */
    char *copy = malloc(size + 3);
    if (!copy) {
        return 0;
    }
    memcpy(copy, data, size);
    copy[size] = copy[size + 1] = copy[size + 2] = '\0';
    const char *a = copy;
    const char *b = a + strlen(a) + 1;
    /* copy[size..size+2] are NUL, so b and c stay inside the buffer. */
    const char *c = b + strlen(b) + 1;
    hxfr__view_check_request((sel & 2) ? b : NULL, (sel & 4) ? c : NULL, (sel & 8) != 0,
                             (unsigned)((sel >> 4) * 1000));

    char text[HXFR_VIEW_TEXT_MAX];
    int n = hxfr__view_status_format(text, sizeof(text), id, "disconnected", a, 0);
    if (n >= (int)sizeof(text)) {
        abort();
    }
    char esc[64];
    size_t e = hxfr__view_json_escape(esc, sizeof(esc), (const char *)data, size);
    if (e >= sizeof(esc) || esc[e] != '\0') {
        abort();
    }
    for (size_t i = 0; i < e; i++) {
        if ((unsigned char)esc[i] < 0x20 || (unsigned char)esc[i] >= 0x7f) {
            abort();
        }
    }
    free(copy);

    /* The unit-list rewrite, in place on a private copy. */
    uint8_t *units = malloc(size ? size : 1);
    if (units) {
        memcpy(units, data, size);
        long len = hxfr__view_units_to_annexb(units, size, sel);
        if (len > (long)size) {
            abort();
        }
        free(units);
    }
    return 0;
}
