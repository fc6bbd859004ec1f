/* libFuzzer target for what hxfr-view reads from agents and QEMU: the JSON
 * reader, the agent API's actions (POST /input bodies) and the QMP
 * command text they become, plus the SPS size reader (host data).
 *
 * Byte 0 of the input selects the scanout size; the rest is the text. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "json.h"
#include "sps.h"

#include "fuzz.h"

static struct hxfr_json_tok toks[1024];
static struct hxfr_view_event ev[HXFR_VIEW_API_EVENTS_MAX];
static char cmd[HXFR_VIEW_QMP_CMD_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint32_t w = (data[0] & 0x0f) * 97u, h = (data[0] >> 4) * 61u;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    struct hxfr_json j;
    if (hxfr__json_parse(text, len, toks, 1024, &j) == 0) {
        REQUIRE(j.n >= 1 && toks[0].next == j.n);
        for (unsigned i = 0; i < j.n; i++) {
            REQUIRE(toks[i].start <= toks[i].end && toks[i].end <= len);
            REQUIRE(toks[i].next > i && toks[i].next <= j.n);
            char s[64];
            int r = hxfr__json_str(&j, (int)i, s, sizeof(s));
            REQUIRE(r < (int)sizeof(s));
            if (r >= 0) {
                REQUIRE(strlen(s) == (size_t)r);
            }
        }
    }

    struct hxfr_view_pointer ptr = {0};
    char err[160];
    int n = hxfr__view_actions_parse(text, len, w, h, &ptr, ev, HXFR_VIEW_API_EVENTS_MAX, err,
                                     sizeof(err));
    REQUIRE(n <= (int)HXFR_VIEW_API_EVENTS_MAX);
    if (n >= 0) {
        /* Balanced, inside the picture, and expressible as QMP commands. */
        struct hxfr_view_held held;
        memset(&held, 0, sizeof(held));
        for (int i = 0; i < n; i++) {
            REQUIRE(hxfr__view_held_apply(&held, &ev[i]));
            if (ev[i].type == HXFR_VIEW_EV_MOVE) {
                REQUIRE(ev[i].x < w && ev[i].y < h);
            }
        }
        REQUIRE(hxfr__view_held_empty(&held));
        for (int i = 0; i < n; i += HXFR_VIEW_QMP_EVENTS_MAX) {
            unsigned k = (unsigned)(n - i) < HXFR_VIEW_QMP_EVENTS_MAX ? (unsigned)(n - i)
                                                                      : HXFR_VIEW_QMP_EVENTS_MAX;
            int c = hxfr__view_qmp_command(cmd, sizeof(cmd), ev + i, k, w, h, (uint64_t)i);
            REQUIRE(c > 0 && (size_t)c < sizeof(cmd) && cmd[c - 1] == '\n');
            REQUIRE(hxfr__json_parse(cmd, (size_t)c - 1, toks, 1024, &j) == 0);
        }
    } else {
        REQUIRE(err[0] != '\0' && !ptr.known);
    }

    uint32_t sw, sh;
    if (hxfr__view_sps_size(data, size, &sw, &sh) == 0) {
        REQUIRE(sw > 0 && sh > 0 && sw <= 16384 && sh <= 16384);
    }
    return 0;
}
