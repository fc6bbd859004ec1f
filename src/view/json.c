/* hxfr-view's bounded JSON reader (see json.h). A recursive-descent
 * tokenizer whose depth is capped, so a hostile text cannot exhaust the
 * stack; tokens are appended in document order. */
#include <errno.h>
#include <string.h>

#include "json.h"

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    struct hxfr_json_tok *toks;
    unsigned max;
    unsigned n;
};

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r')) {
        p->pos++;
    }
}

static int new_tok(struct parser *p, enum hxfr_json_type type)
{
    if (p->n == p->max) {
        return -E2BIG;
    }
    struct hxfr_json_tok *t = &p->toks[p->n];
    memset(t, 0, sizeof(*t));
    t->type = type;
    t->start = (uint32_t)p->pos;
    return (int)p->n++;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A string; p->pos is at the opening quote. Escapes are checked here and
 * decoded by hxfr__json_str. */
static int parse_string(struct parser *p)
{
    p->pos++;
    int t = new_tok(p, HXFR_JSON_STRING);
    if (t < 0) {
        return t;
    }
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->toks[t].end = (uint32_t)p->pos;
            p->pos++;
            return t;
        }
        if (c < 0x20) {
            return -EINVAL; /* control characters (NUL too) must be escaped */
        }
        if (c == '\\') {
            if (p->pos + 1 >= p->len) {
                return -EINVAL;
            }
            char e = p->s[p->pos + 1];
            if (e == 'u') {
                if (p->pos + 6 > p->len) {
                    return -EINVAL;
                }
                for (size_t k = 2; k < 6; k++) {
                    if (!is_hex(p->s[p->pos + k])) {
                        return -EINVAL;
                    }
                }
                p->pos += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return -EINVAL;
            }
            p->pos += 2;
            continue;
        }
        p->pos++;
    }
    return -EINVAL;
}

static int parse_number(struct parser *p)
{
    int t = new_tok(p, HXFR_JSON_NUMBER);
    if (t < 0) {
        return t;
    }
    size_t i = p->pos;
    if (i < p->len && p->s[i] == '-') {
        i++;
    }
    if (i >= p->len || !is_digit(p->s[i])) {
        return -EINVAL;
    }
    if (p->s[i] == '0') {
        i++;
    } else {
        while (i < p->len && is_digit(p->s[i])) {
            i++;
        }
    }
    if (i < p->len && p->s[i] == '.') {
        i++;
        if (i >= p->len || !is_digit(p->s[i])) {
            return -EINVAL;
        }
        while (i < p->len && is_digit(p->s[i])) {
            i++;
        }
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) {
            i++;
        }
        if (i >= p->len || !is_digit(p->s[i])) {
            return -EINVAL;
        }
        while (i < p->len && is_digit(p->s[i])) {
            i++;
        }
    }
    p->pos = i;
    p->toks[t].end = (uint32_t)i;
    return t;
}

static int parse_word(struct parser *p, const char *word, enum hxfr_json_type type)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        return -EINVAL;
    }
    int t = new_tok(p, type);
    if (t < 0) {
        return t;
    }
    p->pos += n;
    p->toks[t].end = (uint32_t)p->pos;
    return t;
}

static int parse_value(struct parser *p, unsigned depth);

/* An object or array; p->pos is at its opening bracket. */
static int parse_container(struct parser *p, unsigned depth, bool object)
{
    if (depth >= HXFR_JSON_DEPTH) {
        return -EINVAL;
    }
    int t = new_tok(p, object ? HXFR_JSON_OBJECT : HXFR_JSON_ARRAY);
    if (t < 0) {
        return t;
    }
    char close = object ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->toks[t].end = (uint32_t)p->pos;
        return t;
    }
    for (;;) {
        int r;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                return -EINVAL;
            }
            r = parse_string(p);
            if (r < 0) {
                return r;
            }
            p->toks[r].next = (uint32_t)p->n;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                return -EINVAL;
            }
            p->pos++;
        }
        r = parse_value(p, depth + 1);
        if (r < 0) {
            return r;
        }
        p->toks[t].count++;
        skip_ws(p);
        if (p->pos >= p->len) {
            return -EINVAL;
        }
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] != close) {
            return -EINVAL;
        }
        p->pos++;
        p->toks[t].end = (uint32_t)p->pos;
        return t;
    }
}

static int parse_value(struct parser *p, unsigned depth)
{
    int t;
    skip_ws(p);
    if (p->pos >= p->len) {
        return -EINVAL;
    }
    switch (p->s[p->pos]) {
    case '{':
        t = parse_container(p, depth, true);
        break;
    case '[':
        t = parse_container(p, depth, false);
        break;
    case '"':
        t = parse_string(p);
        break;
    case 't':
        t = parse_word(p, "true", HXFR_JSON_TRUE);
        break;
    case 'f':
        t = parse_word(p, "false", HXFR_JSON_FALSE);
        break;
    case 'n':
        t = parse_word(p, "null", HXFR_JSON_NULL);
        break;
    default:
        t = parse_number(p);
        break;
    }
    if (t >= 0) {
        p->toks[t].next = (uint32_t)p->n;
    }
    return t;
}

int hxfr__json_parse(const char *text, size_t len, struct hxfr_json_tok *toks, unsigned max,
                     struct hxfr_json *out)
{
    if (len > UINT32_MAX) {
        return -E2BIG;
    }
    struct parser p = {.s = text, .len = len, .toks = toks, .max = max};
    int r = parse_value(&p, 0);
    if (r < 0) {
        return r;
    }
    skip_ws(&p);
    if (p.pos != len) {
        return -EINVAL;
    }
    out->text = text;
    out->toks = toks;
    out->n = p.n;
    return 0;
}

static bool valid(const struct hxfr_json *j, int i)
{
    return i >= 0 && (unsigned)i < j->n;
}

int hxfr__json_get(const struct hxfr_json *j, int obj, const char *key)
{
    if (!valid(j, obj) || j->toks[obj].type != HXFR_JSON_OBJECT) {
        return -1;
    }
    unsigned i = (unsigned)obj + 1;
    for (uint32_t m = 0; m < j->toks[obj].count; m++) {
        if (hxfr__json_is(j, (int)i, key)) {
            return (int)i + 1;
        }
        i = j->toks[i + 1].next;
    }
    return -1;
}

int hxfr__json_at(const struct hxfr_json *j, int arr, unsigned idx)
{
    if (!valid(j, arr) || j->toks[arr].type != HXFR_JSON_ARRAY || idx >= j->toks[arr].count) {
        return -1;
    }
    unsigned i = (unsigned)arr + 1;
    for (unsigned k = 0; k < idx; k++) {
        i = j->toks[i].next;
    }
    return (int)i;
}

int hxfr__json_int(const struct hxfr_json *j, int i, int64_t min, int64_t max, int64_t *out)
{
    if (!valid(j, i) || j->toks[i].type != HXFR_JSON_NUMBER) {
        return -EINVAL;
    }
    const char *s = j->text + j->toks[i].start;
    size_t n = j->toks[i].end - j->toks[i].start;
    bool neg = s[0] == '-';
    size_t k = neg ? 1 : 0;
    uint64_t v = 0;
    if (n - k > 18) {
        return -EINVAL; /* 18 digits cannot overflow; more are out of range anyway */
    }
    for (; k < n; k++) {
        if (!is_digit(s[k])) {
            return -EINVAL; /* a fraction or an exponent */
        }
        v = v * 10 + (uint64_t)(s[k] - '0');
    }
    int64_t x = neg ? -(int64_t)v : (int64_t)v;
    if (x < min || x > max) {
        return -EINVAL;
    }
    *out = x;
    return 0;
}

int hxfr__json_bool(const struct hxfr_json *j, int i, bool *out)
{
    if (!valid(j, i) || (j->toks[i].type != HXFR_JSON_TRUE && j->toks[i].type != HXFR_JSON_FALSE)) {
        return -EINVAL;
    }
    *out = j->toks[i].type == HXFR_JSON_TRUE;
    return 0;
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Appends code point cp as UTF-8. */
static int put_utf8(char *out, size_t cap, size_t *o, unsigned cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*o + n >= cap) {
        return -ENOSPC;
    }
    memcpy(out + *o, b, n);
    *o += n;
    return 0;
}

int hxfr__json_str(const struct hxfr_json *j, int i, char *out, size_t cap)
{
    if (!valid(j, i) || j->toks[i].type != HXFR_JSON_STRING || cap == 0) {
        return -EINVAL;
    }
    const char *s = j->text + j->toks[i].start;
    size_t n = j->toks[i].end - j->toks[i].start;
    size_t o = 0;
    int r;
    for (size_t k = 0; k < n;) {
        unsigned cp;
        if (s[k] != '\\') {
            cp = (unsigned char)s[k++];
            if (o + 1 >= cap) {
                return -ENOSPC;
            }
            out[o++] = (char)cp;
            continue;
        }
        /* The tokenizer checked every escape, so the bytes are there. */
        char e = s[k + 1];
        k += 2;
        switch (e) {
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            cp = hex4(s + k);
            k += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -EINVAL;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (k + 6 > n || s[k] != '\\' || s[k + 1] != 'u') {
                    return -EINVAL;
                }
                unsigned lo = hex4(s + k + 2);
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    return -EINVAL;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                k += 6;
            }
            if (cp == 0) {
                return -EINVAL;
            }
            break;
        default:
            cp = (unsigned char)e; /* " \ / */
            break;
        }
        r = put_utf8(out, cap, &o, cp);
        if (r < 0) {
            return r;
        }
    }
    out[o] = '\0';
    return (int)o;
}

bool hxfr__json_is(const struct hxfr_json *j, int i, const char *lit)
{
    char buf[64];
    size_t n = strlen(lit);
    if (n >= sizeof(buf)) {
        return false;
    }
    int r = hxfr__json_str(j, i, buf, sizeof(buf));
    return r >= 0 && (size_t)r == n && memcmp(buf, lit, n) == 0;
}
