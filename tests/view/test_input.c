/* Unit tests for hxfr-view's keys and input events: the key table, held
 * state, the QMP command text and the agent API's actions. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "input.h"
#include "keymap.h"

#include "harness.h"

static int key(const char *name)
{
    return hxfr__view_key_by_name(name, strlen(name));
}

TEST(key_table)
{
    unsigned n = hxfr__view_key_count();
    CHECK(n > 140 && n <= HXFR_VIEW_KEYS_MAX);
    for (unsigned i = 0; i < n; i++) {
        const char *code = hxfr__view_key_code((int)i);
        const char *q = hxfr__view_key_qcode((int)i);
        CHECK(code && q);
        /* Codes, QKeyCodes and evdev codes are unique. */
        CHECK_EQ(hxfr__view_key_by_code(code, strlen(code)), (int)i);
        for (unsigned k = i + 1; k < n; k++) {
            if (strcmp(q, hxfr__view_key_qcode((int)k)) == 0 ||
                hxfr__view_key_evdev((int)i) == hxfr__view_key_evdev((int)k)) {
                FAIL("keys %u and %u share %s", i, k, q);
            }
        }
        CHECK(hxfr__view_key_evdev((int)i) > 0 && hxfr__view_key_evdev((int)i) < 0x300);
    }
    CHECK_EQ(hxfr__view_key_by_code("keya", 4), -1); /* codes are exact */
    CHECK_EQ(hxfr__view_key_by_code("KeyA", 3), -1);
    CHECK_EQ(hxfr__view_key_qcode(-1), NULL);
    CHECK_EQ(hxfr__view_key_qcode((int)n), NULL);
    CHECK_EQ(hxfr__view_key_evdev((int)n), -1);
    /* A few that the VM test reads back as evdev codes. */
    CHECK_EQ(hxfr__view_key_evdev(hxfr__view_key_by_code("KeyA", 4)), 30);
    CHECK_EQ(hxfr__view_key_evdev(hxfr__view_key_by_code("ShiftLeft", 9)), 42);
    CHECK_EQ(hxfr__view_key_evdev(hxfr__view_key_by_code("Enter", 5)), 28);
    CHECK_EQ(hxfr__view_key_evdev(hxfr__view_key_by_code("ArrowUp", 7)), 103);
    CHECK_EQ(hxfr__view_key_evdev(hxfr__view_key_by_code("MetaLeft", 8)), 125);
    CHECK_EQ(hxfr__view_key_evdev(hxfr__view_key_by_code("F12", 3)), 88);
    CHECK(strcmp(hxfr__view_key_qcode(hxfr__view_key_by_code("Space", 5)), "spc") == 0);
}

TEST(key_names)
{
    static const struct {
        const char *name;
        const char *qcode;
    } names[] = {
        {"ctrl", "ctrl"},
        {"Control", "ctrl"},
        {"CTRL", "ctrl"},
        {"shift", "shift"},
        {"alt", "alt"},
        {"super", "meta_l"},
        {"win", "meta_l"},
        {"meta", "meta_l"},
        {"enter", "ret"},
        {"Return", "ret"},
        {"ret", "ret"},
        {"esc", "esc"},
        {"Escape", "esc"},
        {"space", "spc"},
        {"tab", "tab"},
        {"del", "delete"},
        {"Delete", "delete"},
        {"pageup", "pgup"},
        {"PageDown", "pgdn"},
        {"up", "up"},
        {"ArrowLeft", "left"},
        {"f1", "f1"},
        {"F24", "f24"},
        {"a", "a"},
        {"A", "a"},
        {"KeyZ", "z"},
        {"1", "1"},
        {"-", "minus"},
        {"/", "slash"},
        {"menu", "compose"},
        {"printscreen", "print"},
        {"ShiftRight", "shift_r"},
        {"backspace", "backspace"},
        {"home", "home"},
        {"capslock", "caps_lock"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int k = key(names[i].name);
        if (k < 0 || strcmp(hxfr__view_key_qcode(k), names[i].qcode) != 0) {
            FAIL("name %s", names[i].name);
        }
    }
    CHECK_EQ(key(""), -1);
    CHECK_EQ(key("nosuchkey"), -1);
    CHECK_EQ(key("!"), -1); /* that is shift+1 */
}

TEST(chars)
{
    bool shift;
    CHECK_EQ(hxfr__view_key_for_char('a', &shift), key("a"));
    CHECK(!shift);
    CHECK_EQ(hxfr__view_key_for_char('A', &shift), key("a"));
    CHECK(shift);
    CHECK_EQ(hxfr__view_key_for_char('!', &shift), key("1"));
    CHECK(shift);
    CHECK_EQ(hxfr__view_key_for_char('\n', &shift), key("enter"));
    CHECK_EQ(hxfr__view_key_for_char('\t', &shift), key("tab"));
    CHECK_EQ(hxfr__view_key_for_char(' ', &shift), key("space"));
    CHECK_EQ(hxfr__view_key_for_char('~', &shift), key("`"));
    CHECK(shift);
    CHECK_EQ(hxfr__view_key_for_char('\r', &shift), -1);
    CHECK_EQ(hxfr__view_key_for_char(0, &shift), -1);
    CHECK_EQ(hxfr__view_key_for_char(0xe9, &shift), -1);
    /* Every printable ASCII character can be typed. */
    for (uint32_t c = 0x20; c < 0x7f; c++) {
        if (hxfr__view_key_for_char(c, &shift) < 0) {
            FAIL("cannot type 0x%02x", c);
        }
    }
}

TEST(held_state)
{
    struct hxfr_view_held h;
    memset(&h, 0, sizeof(h));
    struct hxfr_view_event a_down = {
        .type = HXFR_VIEW_EV_KEY, .key = (int16_t)key("a"), .down = true};
    struct hxfr_view_event a_up = {.type = HXFR_VIEW_EV_KEY, .key = (int16_t)key("a")};
    struct hxfr_view_event l_down = {
        .type = HXFR_VIEW_EV_BUTTON, .button = HXFR_VIEW_BTN_LEFT, .down = true};
    CHECK(hxfr__view_held_empty(&h));
    CHECK(!hxfr__view_held_apply(&h, &a_up)); /* nothing to release */
    CHECK(hxfr__view_held_apply(&h, &a_down));
    CHECK(hxfr__view_held_apply(&h, &a_down)); /* key repeat goes out */
    CHECK(hxfr__view_held_apply(&h, &l_down));
    CHECK(!hxfr__view_held_empty(&h));
    struct hxfr_view_held copy = h, merged;
    memset(&merged, 0, sizeof(merged));
    hxfr__view_held_merge(&merged, &h);
    CHECK(memcmp(&merged, &h, sizeof(h)) == 0);
    struct hxfr_view_event out[8];
    CHECK_EQ(hxfr__view_held_release(&h, out, 8), 2);
    CHECK(hxfr__view_held_empty(&h));
    CHECK(out[0].type == HXFR_VIEW_EV_KEY && out[0].key == key("a") && !out[0].down);
    CHECK(out[1].type == HXFR_VIEW_EV_BUTTON && out[1].button == HXFR_VIEW_BTN_LEFT &&
          !out[1].down);
    CHECK(hxfr__view_held_apply(&copy, &a_up));
    CHECK(!hxfr__view_held_apply(&copy, &a_up));
    struct hxfr_view_event bad = {.type = HXFR_VIEW_EV_KEY, .key = -1, .down = true};
    CHECK(!hxfr__view_held_apply(&copy, &bad));
    bad.key = 999;
    CHECK(!hxfr__view_held_apply(&copy, &bad));
}

TEST(qmp_command_text)
{
    char out[HXFR_VIEW_QMP_CMD_MAX];
    struct hxfr_view_event ev[] = {
        {.type = HXFR_VIEW_EV_MOVE, .x = 160, .y = 239},
        {.type = HXFR_VIEW_EV_BUTTON, .button = HXFR_VIEW_BTN_RIGHT, .down = true},
        {.type = HXFR_VIEW_EV_KEY, .key = (int16_t)key("a")},
    };
    int n = hxfr__view_qmp_command(out, sizeof(out), ev, 3, 320, 240, 7);
    CHECK(n > 0 && out[n - 1] == '\n' && (size_t)n == strlen(out));
    const char *want =
        "{\"execute\":\"input-send-event\",\"arguments\":{\"events\":["
        "{\"type\":\"abs\",\"data\":{\"axis\":\"x\",\"value\":16383}},"
        "{\"type\":\"abs\",\"data\":{\"axis\":\"y\",\"value\":32630}},"
        "{\"type\":\"btn\",\"data\":{\"down\":true,\"button\":\"right\"}},"
        "{\"type\":\"key\",\"data\":{\"down\":false,\"key\":{\"type\":\"qcode\",\"data\":\"a\"}}}"
        "]},\"id\":7}\n";
    if (strcmp(out, want) != 0) {
        FAIL("got %s", out);
    }
    /* The worst case fits the documented size. */
    struct hxfr_view_event many[HXFR_VIEW_QMP_EVENTS_MAX];
    for (unsigned i = 0; i < HXFR_VIEW_QMP_EVENTS_MAX; i++) {
        many[i] = (struct hxfr_view_event){.type = HXFR_VIEW_EV_MOVE, .x = 65535, .y = 65535};
    }
    CHECK(hxfr__view_qmp_command(out, sizeof(out), many, HXFR_VIEW_QMP_EVENTS_MAX, 1, 1,
                                 UINT64_MAX) > 0);
    for (unsigned i = 0; i < HXFR_VIEW_QMP_EVENTS_MAX; i++) {
        many[i] = (struct hxfr_view_event){
            .type = HXFR_VIEW_EV_KEY, .key = (int16_t)key("AudioVolumeDown"), .down = false};
    }
    CHECK(hxfr__view_qmp_command(out, sizeof(out), many, HXFR_VIEW_QMP_EVENTS_MAX, 1, 1,
                                 UINT64_MAX) > 0);
    CHECK_EQ(hxfr__view_qmp_command(out, 40, ev, 3, 320, 240, 7), -ENOSPC);
    CHECK_EQ(hxfr__view_qmp_command(out, sizeof(out), ev, 0, 320, 240, 7), -EINVAL);
    CHECK_EQ(hxfr__view_qmp_command(out, sizeof(out), ev, 1, 0, 240, 7), -EINVAL);
    struct hxfr_view_event bad = {.type = HXFR_VIEW_EV_BUTTON, .button = HXFR_VIEW_BTN_COUNT};
    CHECK_EQ(hxfr__view_qmp_command(out, sizeof(out), &bad, 1, 320, 240, 7), -EINVAL);
}

static struct hxfr_view_event evs[HXFR_VIEW_API_EVENTS_MAX];

static int actions(const char *json, struct hxfr_view_pointer *ptr, char *err)
{
    return hxfr__view_actions_parse(json, strlen(json), 640, 360, ptr, evs,
                                    HXFR_VIEW_API_EVENTS_MAX, err, 160);
}

/* The events as text, e.g. "m10,20 b0+ b0- k30+ k30-" (keys as evdev). */
static void describe(int n, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n && o < cap; i++) {
        const struct hxfr_view_event *e = &evs[i];
        if (e->type == HXFR_VIEW_EV_MOVE) {
            o += (size_t)snprintf(out + o, cap - o, "%sm%u,%u", i ? " " : "", e->x, e->y);
        } else if (e->type == HXFR_VIEW_EV_BUTTON) {
            o += (size_t)snprintf(out + o, cap - o, "%sb%u%c", i ? " " : "", e->button,
                                  e->down ? '+' : '-');
        } else {
            o += (size_t)snprintf(out + o, cap - o, "%sk%d%c", i ? " " : "",
                                  hxfr__view_key_evdev(e->key), e->down ? '+' : '-');
        }
    }
}

static void expect(const char *json, const char *want)
{
    struct hxfr_view_pointer ptr = {0};
    char err[160];
    char got[4096];
    int n = actions(json, &ptr, err);
    if (n < 0) {
        FAIL("%s: %s", json, err);
    }
    describe(n, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        FAIL("%s\n  got  %s\n  want %s", json, got, want);
    }
}

TEST(api_actions)
{
    expect("{\"action\":\"move\",\"x\":10,\"y\":20}", "m10,20");
    expect("{\"action\":\"click\",\"x\":1,\"y\":2}", "m1,2 b0+ b0-");
    expect("{\"action\":\"click\",\"button\":\"right\",\"count\":2}", "b2+ b2- b2+ b2-");
    expect("{\"action\":\"click\",\"button\":\"back\"}", "b3+ b3-");
    expect("{\"action\":\"drag\",\"from\":[0,0],\"to\":[30,60],\"steps\":3}",
           "m0,0 b0+ m10,20 m20,40 m30,60 b0-");
    expect("{\"action\":\"scroll\",\"x\":5,\"y\":6,\"dy\":2,\"dx\":-1}",
           "m5,6 b6+ b6- b6+ b6- b7+ b7-");
    expect("{\"action\":\"scroll\",\"dy\":-1}", "b5+ b5-");
    expect("{\"action\":\"key\",\"keys\":\"ctrl+alt+Delete\"}", "k29+ k56+ k111+ k111- k56- k29-");
    expect("{\"action\":\"key\",\"keys\":[\"shift\",\"+\"]}", "k42+ k78+ k78- k42-");
    expect("{\"action\":\"key\",\"keys\":\"ctrl++\"}", "k29+ k78+ k78- k29-");
    expect("{\"action\":\"key\",\"keys\":\"a\",\"repeat\":2}", "k30+ k30- k30+ k30-");
    expect("{\"action\":\"type\",\"text\":\"Hi!\\n\"}",
           "k42+ k35+ k35- k42- k23+ k23- k42+ k2+ k2- k42- k28+ k28-");
    expect("[{\"action\":\"move\",\"x\":1,\"y\":1},{\"action\":\"click\"}]", "m1,1 b0+ b0-");
    expect("{\"actions\":[{\"action\":\"down\",\"x\":3,\"y\":4},{\"action\":\"move\",\"x\":5,"
           "\"y\":6},{\"action\":\"up\"}]}",
           "m3,4 b0+ m5,6 b0-");
    /* A down without its up is released at the end; an up alone is dropped. */
    expect("{\"action\":\"down\",\"button\":\"middle\"}", "b1+ b1-");
    expect("[{\"action\":\"up\"},{\"action\":\"move\",\"x\":0,\"y\":0}]", "m0,0");
    expect("{\"action\":\"type\",\"text\":\"\"}", "");
}

TEST(api_pointer_carries_over)
{
    struct hxfr_view_pointer ptr = {0};
    char err[160];
    CHECK_EQ(actions("{\"action\":\"move\",\"x\":7,\"y\":8}", &ptr, err), 1);
    CHECK(ptr.known && ptr.x == 7 && ptr.y == 8);
    CHECK_EQ(actions("{\"action\":\"drag\",\"from\":[1,1],\"to\":[2,2],\"steps\":1}", &ptr, err),
             4);
    CHECK(ptr.x == 2 && ptr.y == 2);
    /* A failed request leaves the pointer where it was. */
    CHECK_EQ(actions("[{\"action\":\"move\",\"x\":9,\"y\":9},{\"action\":\"bogus\"}]", &ptr, err),
             -EINVAL);
    CHECK(ptr.x == 2 && ptr.y == 2);
}

TEST(api_refusals)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "nonsense",
        "{\"action\":\"move\"}",
        "{\"action\":\"move\",\"x\":640,\"y\":0}",
        "{\"action\":\"move\",\"x\":-1,\"y\":0}",
        "{\"action\":\"move\",\"x\":1.5,\"y\":0}",
        "{\"action\":\"move\",\"x\":\"1\",\"y\":0}",
        "{\"action\":\"click\",\"button\":\"thumb\"}",
        "{\"action\":\"click\",\"count\":4}",
        "{\"action\":\"drag\",\"from\":[0,0]}",
        "{\"action\":\"drag\",\"from\":[0],\"to\":[1,1]}",
        "{\"action\":\"drag\",\"from\":[0,0],"
        "\"to\":[1,1],\"steps\":0}",
        "{\"action\":\"scroll\",\"dy\":101}",
        "{\"action\":\"key\"}",
        "{\"action\":\"key\",\"keys\":\"\"}",
        "{\"action\":\"key\",\"keys\":\"ctrl+\"}",
        "{\"action\":\"key\",\"keys\":\"ctrl+nokey\"}",
        "{\"action\":\"key\",\"keys\":[]}",
        "{\"action\":\"key\",\"keys\":[\"a\",1]}",
        "{\"action\":\"key\",\"keys\":\"a+b+c+d+e+f+g+h+i\"}",
        "{\"action\":\"type\"}",
        "{\"action\":\"type\",\"text\":\"caf\\u00e9\"}",
        "{\"action\":\"type\",\"text\":\"a\\rb\"}",
        "{\"actions\":{}}",
        "{\"actions\":[]}",
        "[1]",
        "{\"action\":\"jump\"}",
        "{\"action\":\"move\",\"x\":1,\"y\":1",
        "{\"action\":\"key\",\"keys\":\"a\",\"repeat\":0}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hxfr_view_pointer ptr = {0};
        char err[160];
        if (actions(bad[i], &ptr, err) != -EINVAL || !err[0]) {
            FAIL("accepted %s", bad[i]);
        }
    }
    /* Unknown size: nothing with coordinates. */
    struct hxfr_view_pointer ptr = {0};
    char err[160];
    const char *mv = "{\"action\":\"move\",\"x\":1,\"y\":1}";
    CHECK_EQ(hxfr__view_actions_parse(mv, strlen(mv), 0, 0, &ptr, evs, 16, err, sizeof(err)),
             -EINVAL);
    CHECK(strstr(err, "size") != NULL);
    /* Too many events for the room given. */
    const char *ty = "{\"action\":\"type\",\"text\":\"aaaaaaaaaa\"}";
    CHECK_EQ(hxfr__view_actions_parse(ty, strlen(ty), 640, 360, &ptr, evs, 19, err, sizeof(err)),
             -E2BIG);
    CHECK_EQ(hxfr__view_actions_parse(ty, strlen(ty), 640, 360, &ptr, evs, 20, err, sizeof(err)),
             20);
    /* A body above the limit. */
    static char big[HXFR_VIEW_API_BODY_MAX + 2];
    memset(big, ' ', sizeof(big));
    memcpy(big, "[]", 2);
    CHECK_EQ(hxfr__view_actions_parse(big, sizeof(big), 640, 360, &ptr, evs, 16, err, sizeof(err)),
             -EINVAL);
    /* Text at the limit is fine, one byte more is not. */
    static char text[HXFR_VIEW_API_TEXT_MAX + 64];
    int n = snprintf(text, sizeof(text), "{\"action\":\"type\",\"text\":\"");
    memset(text + n, 'a', HXFR_VIEW_API_TEXT_MAX);
    strcpy(text + n + HXFR_VIEW_API_TEXT_MAX, "\"}");
    CHECK_EQ(hxfr__view_actions_parse(text, strlen(text), 640, 360, &ptr, evs,
                                      HXFR_VIEW_API_EVENTS_MAX, err, sizeof(err)),
             2 * HXFR_VIEW_API_TEXT_MAX);
    memset(text + n, 'a', HXFR_VIEW_API_TEXT_MAX + 1);
    strcpy(text + n + HXFR_VIEW_API_TEXT_MAX + 1, "\"}");
    CHECK_EQ(hxfr__view_actions_parse(text, strlen(text), 640, 360, &ptr, evs,
                                      HXFR_VIEW_API_EVENTS_MAX, err, sizeof(err)),
             -EINVAL);
}
