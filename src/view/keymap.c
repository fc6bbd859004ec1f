/* hxfr-view key table (see keymap.h). QKeyCode names are those of QEMU's
 * qapi/ui.json; evdev codes those of linux/input-event-codes.h, as QEMU's
 * keycodemapdb maps one to the other; KeyboardEvent.code values those of
 * the UI Events KeyboardEvent code specification. */
#include <string.h>
#include <strings.h>

#include "keymap.h"

struct key {
    const char *code;  /* KeyboardEvent.code */
    const char *qcode; /* QMP QKeyCode */
    short evdev;       /* Linux KEY_* */
    char plain;        /* US layout character without shift, 0 if none */
    char shifted;      /* with shift */
    const char *alias; /* an agent-friendly name, or NULL */
};

static const struct key keys[] = {
    {"Escape", "esc", 1, 0, 0, "escape"},
    {"Digit1", "1", 2, '1', '!', NULL},
    {"Digit2", "2", 3, '2', '@', NULL},
    {"Digit3", "3", 4, '3', '#', NULL},
    {"Digit4", "4", 5, '4', '$', NULL},
    {"Digit5", "5", 6, '5', '%', NULL},
    {"Digit6", "6", 7, '6', '^', NULL},
    {"Digit7", "7", 8, '7', '&', NULL},
    {"Digit8", "8", 9, '8', '*', NULL},
    {"Digit9", "9", 10, '9', '(', NULL},
    {"Digit0", "0", 11, '0', ')', NULL},
    {"Minus", "minus", 12, '-', '_', NULL},
    {"Equal", "equal", 13, '=', '+', NULL},
    {"Backspace", "backspace", 14, 0, 0, NULL},
    {"Tab", "tab", 15, '\t', 0, NULL},
    {"KeyQ", "q", 16, 'q', 'Q', NULL},
    {"KeyW", "w", 17, 'w', 'W', NULL},
    {"KeyE", "e", 18, 'e', 'E', NULL},
    {"KeyR", "r", 19, 'r', 'R', NULL},
    {"KeyT", "t", 20, 't', 'T', NULL},
    {"KeyY", "y", 21, 'y', 'Y', NULL},
    {"KeyU", "u", 22, 'u', 'U', NULL},
    {"KeyI", "i", 23, 'i', 'I', NULL},
    {"KeyO", "o", 24, 'o', 'O', NULL},
    {"KeyP", "p", 25, 'p', 'P', NULL},
    {"BracketLeft", "bracket_left", 26, '[', '{', NULL},
    {"BracketRight", "bracket_right", 27, ']', '}', NULL},
    {"Enter", "ret", 28, '\n', 0, "return"},
    {"ControlLeft", "ctrl", 29, 0, 0, "control"},
    {"KeyA", "a", 30, 'a', 'A', NULL},
    {"KeyS", "s", 31, 's', 'S', NULL},
    {"KeyD", "d", 32, 'd', 'D', NULL},
    {"KeyF", "f", 33, 'f', 'F', NULL},
    {"KeyG", "g", 34, 'g', 'G', NULL},
    {"KeyH", "h", 35, 'h', 'H', NULL},
    {"KeyJ", "j", 36, 'j', 'J', NULL},
    {"KeyK", "k", 37, 'k', 'K', NULL},
    {"KeyL", "l", 38, 'l', 'L', NULL},
    {"Semicolon", "semicolon", 39, ';', ':', NULL},
    {"Quote", "apostrophe", 40, '\'', '"', NULL},
    {"Backquote", "grave_accent", 41, '`', '~', NULL},
    {"ShiftLeft", "shift", 42, 0, 0, NULL},
    {"Backslash", "backslash", 43, '\\', '|', NULL},
    {"KeyZ", "z", 44, 'z', 'Z', NULL},
    {"KeyX", "x", 45, 'x', 'X', NULL},
    {"KeyC", "c", 46, 'c', 'C', NULL},
    {"KeyV", "v", 47, 'v', 'V', NULL},
    {"KeyB", "b", 48, 'b', 'B', NULL},
    {"KeyN", "n", 49, 'n', 'N', NULL},
    {"KeyM", "m", 50, 'm', 'M', NULL},
    {"Comma", "comma", 51, ',', '<', NULL},
    {"Period", "dot", 52, '.', '>', "period"},
    {"Slash", "slash", 53, '/', '?', NULL},
    {"ShiftRight", "shift_r", 54, 0, 0, NULL},
    {"NumpadMultiply", "kp_multiply", 55, 0, 0, "*"},
    {"AltLeft", "alt", 56, 0, 0, "option"},
    {"Space", "spc", 57, ' ', 0, "space"},
    {"CapsLock", "caps_lock", 58, 0, 0, "capslock"},
    {"F1", "f1", 59, 0, 0, NULL},
    {"F2", "f2", 60, 0, 0, NULL},
    {"F3", "f3", 61, 0, 0, NULL},
    {"F4", "f4", 62, 0, 0, NULL},
    {"F5", "f5", 63, 0, 0, NULL},
    {"F6", "f6", 64, 0, 0, NULL},
    {"F7", "f7", 65, 0, 0, NULL},
    {"F8", "f8", 66, 0, 0, NULL},
    {"F9", "f9", 67, 0, 0, NULL},
    {"F10", "f10", 68, 0, 0, NULL},
    {"NumLock", "num_lock", 69, 0, 0, "numlock"},
    {"ScrollLock", "scroll_lock", 70, 0, 0, "scrolllock"},
    {"Numpad7", "kp_7", 71, 0, 0, NULL},
    {"Numpad8", "kp_8", 72, 0, 0, NULL},
    {"Numpad9", "kp_9", 73, 0, 0, NULL},
    {"NumpadSubtract", "kp_subtract", 74, 0, 0, NULL},
    {"Numpad4", "kp_4", 75, 0, 0, NULL},
    {"Numpad5", "kp_5", 76, 0, 0, NULL},
    {"Numpad6", "kp_6", 77, 0, 0, NULL},
    {"NumpadAdd", "kp_add", 78, 0, 0, "+"},
    {"Numpad1", "kp_1", 79, 0, 0, NULL},
    {"Numpad2", "kp_2", 80, 0, 0, NULL},
    {"Numpad3", "kp_3", 81, 0, 0, NULL},
    {"Numpad0", "kp_0", 82, 0, 0, NULL},
    {"NumpadDecimal", "kp_decimal", 83, 0, 0, NULL},
    {"IntlBackslash", "less", 86, 0, 0, NULL},
    {"F11", "f11", 87, 0, 0, NULL},
    {"F12", "f12", 88, 0, 0, NULL},
    {"IntlRo", "ro", 89, 0, 0, NULL},
    {"Convert", "henkan", 92, 0, 0, NULL},
    {"KanaMode", "hiragana", 93, 0, 0, NULL},
    {"NonConvert", "muhenkan", 94, 0, 0, NULL},
    {"NumpadEnter", "kp_enter", 96, 0, 0, NULL},
    {"ControlRight", "ctrl_r", 97, 0, 0, NULL},
    {"NumpadDivide", "kp_divide", 98, 0, 0, NULL},
    {"PrintScreen", "print", 99, 0, 0, "sysrq"},
    {"AltRight", "alt_r", 100, 0, 0, "altgr"},
    {"Home", "home", 102, 0, 0, NULL},
    {"ArrowUp", "up", 103, 0, 0, NULL},
    {"PageUp", "pgup", 104, 0, 0, NULL},
    {"ArrowLeft", "left", 105, 0, 0, NULL},
    {"ArrowRight", "right", 106, 0, 0, NULL},
    {"End", "end", 107, 0, 0, NULL},
    {"ArrowDown", "down", 108, 0, 0, NULL},
    {"PageDown", "pgdn", 109, 0, 0, NULL},
    {"Insert", "insert", 110, 0, 0, "ins"},
    {"Delete", "delete", 111, 0, 0, "del"},
    {"AudioVolumeMute", "audiomute", 113, 0, 0, "mute"},
    {"AudioVolumeDown", "volumedown", 114, 0, 0, NULL},
    {"AudioVolumeUp", "volumeup", 115, 0, 0, NULL},
    {"Power", "power", 116, 0, 0, NULL},
    {"NumpadEqual", "kp_equals", 117, 0, 0, NULL},
    {"Pause", "pause", 119, 0, 0, "break"},
    {"NumpadComma", "kp_comma", 121, 0, 0, NULL},
    {"Lang1", "lang1", 122, 0, 0, NULL},
    {"Lang2", "lang2", 123, 0, 0, NULL},
    {"IntlYen", "yen", 124, 0, 0, NULL},
    {"MetaLeft", "meta_l", 125, 0, 0, "super"},
    {"MetaRight", "meta_r", 126, 0, 0, NULL},
    {"ContextMenu", "compose", 127, 0, 0, "menu"},
    {"BrowserStop", "stop", 128, 0, 0, NULL},
    {"Again", "again", 129, 0, 0, NULL},
    {"Props", "props", 130, 0, 0, NULL},
    {"Undo", "undo", 131, 0, 0, NULL},
    {"Select", "front", 132, 0, 0, NULL},
    {"Copy", "copy", 133, 0, 0, NULL},
    {"Open", "open", 134, 0, 0, NULL},
    {"Paste", "paste", 135, 0, 0, NULL},
    {"Find", "find", 136, 0, 0, NULL},
    {"Cut", "cut", 137, 0, 0, NULL},
    {"Help", "help", 138, 0, 0, NULL},
    {"LaunchApp2", "calculator", 140, 0, 0, NULL},
    {"Sleep", "sleep", 142, 0, 0, NULL},
    {"WakeUp", "wake", 143, 0, 0, NULL},
    {"LaunchMail", "mail", 155, 0, 0, NULL},
    {"BrowserFavorites", "ac_bookmarks", 156, 0, 0, NULL},
    {"LaunchApp1", "computer", 157, 0, 0, NULL},
    {"BrowserBack", "ac_back", 158, 0, 0, NULL},
    {"BrowserForward", "ac_forward", 159, 0, 0, NULL},
    {"MediaTrackNext", "audionext", 163, 0, 0, NULL},
    {"MediaPlayPause", "audioplay", 164, 0, 0, NULL},
    {"MediaTrackPrevious", "audioprev", 165, 0, 0, NULL},
    {"MediaStop", "audiostop", 166, 0, 0, NULL},
    {"BrowserHome", "ac_home", 172, 0, 0, NULL},
    {"BrowserRefresh", "ac_refresh", 173, 0, 0, NULL},
    {"F13", "f13", 183, 0, 0, NULL},
    {"F14", "f14", 184, 0, 0, NULL},
    {"F15", "f15", 185, 0, 0, NULL},
    {"F16", "f16", 186, 0, 0, NULL},
    {"F17", "f17", 187, 0, 0, NULL},
    {"F18", "f18", 188, 0, 0, NULL},
    {"F19", "f19", 189, 0, 0, NULL},
    {"F20", "f20", 190, 0, 0, NULL},
    {"F21", "f21", 191, 0, 0, NULL},
    {"F22", "f22", 192, 0, 0, NULL},
    {"F23", "f23", 193, 0, 0, NULL},
    {"F24", "f24", 194, 0, 0, NULL},
    {"MediaSelect", "mediaselect", 226, 0, 0, NULL},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(N_KEYS <= HXFR_VIEW_KEYS_MAX, "HXFR_VIEW_KEYS_MAX too small");

/* Agent names that are neither a code, a QKeyCode nor a row's alias. */
static const struct {
    const char *name;
    const char *code;
} names[] = {
    {"esc", "Escape"},        {"shift", "ShiftLeft"},   {"alt", "AltLeft"},
    {"ctrl", "ControlLeft"},  {"meta", "MetaLeft"},     {"win", "MetaLeft"},
    {"cmd", "MetaLeft"},      {"enter", "Enter"},       {"up", "ArrowUp"},
    {"down", "ArrowDown"},    {"left", "ArrowLeft"},    {"right", "ArrowRight"},
    {"pageup", "PageUp"},     {"pagedown", "PageDown"}, {"printscreen", "PrintScreen"},
    {"print", "PrintScreen"},
};

unsigned hxfr__view_key_count(void)
{
    return (unsigned)N_KEYS;
}

static bool is(const char *s, size_t len, const char *word, bool nocase)
{
    return word && strlen(word) == len &&
           (nocase ? strncasecmp(s, word, len) == 0 : memcmp(s, word, len) == 0);
}

int hxfr__view_key_by_code(const char *code, size_t len)
{
    for (unsigned i = 0; i < N_KEYS; i++) {
        if (is(code, len, keys[i].code, false)) {
            return (int)i;
        }
    }
    return -1;
}

int hxfr__view_key_by_name(const char *name, size_t len)
{
    if (len == 1) {
        bool shift;
        int k = hxfr__view_key_for_char((unsigned char)name[0], &shift);
        if (k >= 0 && !shift) {
            return k;
        }
        if (k >= 0 && name[0] >= 'A' && name[0] <= 'Z') {
            return k; /* "A" names the key, as "a" does */
        }
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (is(name, len, names[i].name, true)) {
            return hxfr__view_key_by_code(names[i].code, strlen(names[i].code));
        }
    }
    for (unsigned i = 0; i < N_KEYS; i++) {
        if (is(name, len, keys[i].code, true) || is(name, len, keys[i].qcode, true) ||
            is(name, len, keys[i].alias, true)) {
            return (int)i;
        }
    }
    return -1;
}

const char *hxfr__view_key_qcode(int key)
{
    return key >= 0 && (unsigned)key < N_KEYS ? keys[key].qcode : NULL;
}

const char *hxfr__view_key_code(int key)
{
    return key >= 0 && (unsigned)key < N_KEYS ? keys[key].code : NULL;
}

int hxfr__view_key_evdev(int key)
{
    return key >= 0 && (unsigned)key < N_KEYS ? keys[key].evdev : -1;
}

int hxfr__view_key_for_char(uint32_t ch, bool *shift)
{
    if (ch == 0 || ch >= 0x7f) {
        return -1;
    }
    for (unsigned i = 0; i < N_KEYS; i++) {
        if (keys[i].plain == (char)ch) {
            *shift = false;
            return (int)i;
        }
        if (keys[i].shifted == (char)ch) {
            *shift = true;
            return (int)i;
        }
    }
    return -1;
}
