/* Unit tests for hxfr-view's bounded JSON reader. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "json.h"

#include "harness.h"

static struct hxfr_json_tok toks[256];

static int parse(const char *s, struct hxfr_json *j)
{
    return hxfr__json_parse(s, strlen(s), toks, 256, j);
}

TEST(valid_texts)
{
    static const char *const good[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "1.5e-3",
        "\"\"",
        "true",
        "false",
        "null",
        " {\"a\" : [1, 2, {}]} ",
        "{\"a\":\"\\u00e9\\n\\\"\"}",
        "[[[[]]]]",
        "\"\\ud83d\\ude00\"",
        "{\"\":0}",
        "12345678901234567890",
    };
    struct hxfr_json j;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (parse(good[i], &j) != 0) {
            FAIL("refused %s", good[i]);
        }
    }
}

TEST(invalid_texts)
{
    static const char *const bad[] = {
        "",      " ",          "{",     "}",       "[1,]",        "{\"a\":}", "{\"a\" 1}",
        "{a:1}", "[1 2]",      "01",    "1.",      ".5",          "-",        "1e",
        "tru",   "nul",        "\"abc", "\"\\x\"", "\"\\u12g4\"", "\"a\tb\"", "{} {}",
        "[1]x",  "{\"a\":1,}", "'a'",   "+1",      "[-]",         "\"\\",
    };
    struct hxfr_json j;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &j) != -EINVAL) {
            FAIL("accepted '%s'", bad[i]);
        }
    }
    /* A NUL inside the text. */
    CHECK_EQ(hxfr__json_parse("[1]\0", 4, toks, 256, &j), -EINVAL);
    CHECK_EQ(hxfr__json_parse("\"a\0b\"", 5, toks, 256, &j), -EINVAL);
}

TEST(depth_and_token_limits)
{
    char deep[2 * HXFR_JSON_DEPTH + 3];
    struct hxfr_json j;
    memset(deep, '[', HXFR_JSON_DEPTH);
    memset(deep + HXFR_JSON_DEPTH, ']', HXFR_JSON_DEPTH);
    deep[2 * HXFR_JSON_DEPTH] = '\0';
    CHECK_EQ(parse(deep, &j), 0);
    memset(deep, '[', HXFR_JSON_DEPTH + 1);
    memset(deep + HXFR_JSON_DEPTH + 1, ']', HXFR_JSON_DEPTH + 1);
    deep[2 * HXFR_JSON_DEPTH + 2] = '\0';
    CHECK_EQ(parse(deep, &j), -EINVAL);
    CHECK_EQ(hxfr__json_parse("[1,2,3]", 7, toks, 3, &j), -E2BIG);
    CHECK_EQ(hxfr__json_parse("[1,2,3]", 7, toks, 4, &j), 0);
    CHECK_EQ(j.n, 4);
}

TEST(lookups)
{
    struct hxfr_json j;
    const char *text = "{\"a\":{\"x\":[1,2]},\"n\":-42,\"f\":1.5,\"b\":true,\"s\":\"h\\u00e9\\/\","
                       "\"big\":123456789012345678901,\"a\":2}";
    CHECK_EQ(parse(text, &j), 0);
    int a = hxfr__json_get(&j, 0, "a");
    CHECK(a > 0 && toks[a].type == HXFR_JSON_OBJECT);
    int x = hxfr__json_get(&j, a, "x");
    CHECK(x > 0 && toks[x].count == 2);
    int64_t v;
    CHECK_EQ(hxfr__json_int(&j, hxfr__json_at(&j, x, 1), 0, 10, &v), 0);
    CHECK_EQ(v, 2);
    CHECK_EQ(hxfr__json_at(&j, x, 2), -1);
    CHECK_EQ(hxfr__json_int(&j, hxfr__json_get(&j, 0, "n"), -100, 100, &v), 0);
    CHECK_EQ(v, -42);
    CHECK_EQ(hxfr__json_int(&j, hxfr__json_get(&j, 0, "n"), 0, 100, &v), -EINVAL);
    CHECK_EQ(hxfr__json_int(&j, hxfr__json_get(&j, 0, "f"), 0, 100, &v), -EINVAL);
    CHECK_EQ(hxfr__json_int(&j, hxfr__json_get(&j, 0, "big"), INT64_MIN, INT64_MAX, &v), -EINVAL);
    CHECK_EQ(hxfr__json_int(&j, -1, 0, 1, &v), -EINVAL);
    bool b;
    CHECK_EQ(hxfr__json_bool(&j, hxfr__json_get(&j, 0, "b"), &b), 0);
    CHECK(b);
    char s[16];
    CHECK_EQ(hxfr__json_str(&j, hxfr__json_get(&j, 0, "s"), s, sizeof(s)), 4);
    CHECK(strcmp(s, "h\xc3\xa9/") == 0);
    CHECK_EQ(hxfr__json_str(&j, hxfr__json_get(&j, 0, "s"), s, 4), -ENOSPC);
    CHECK(hxfr__json_get(&j, 0, "missing") < 0);
    /* The first of two equal keys. */
    CHECK_EQ(hxfr__json_get(&j, 0, "a"), a);
    CHECK(hxfr__json_is(&j, hxfr__json_get(&j, 0, "s"), "h\xc3\xa9/"));
    CHECK(!hxfr__json_is(&j, hxfr__json_get(&j, 0, "n"), "-42"));
}

TEST(string_escapes)
{
    struct hxfr_json j;
    char s[32];
    CHECK_EQ(parse("\"\\ud83d\\ude00\"", &j), 0);
    CHECK_EQ(hxfr__json_str(&j, 0, s, sizeof(s)), 4);
    CHECK_MEM(s, "\xf0\x9f\x98\x80", 4);
    /* Lone surrogates and NUL are refused when decoded. */
    CHECK_EQ(parse("\"\\ud83d\"", &j), 0);
    CHECK_EQ(hxfr__json_str(&j, 0, s, sizeof(s)), -EINVAL);
    CHECK_EQ(parse("\"\\ude00\"", &j), 0);
    CHECK_EQ(hxfr__json_str(&j, 0, s, sizeof(s)), -EINVAL);
    CHECK_EQ(parse("\"\\ud83d\\u0041\"", &j), 0);
    CHECK_EQ(hxfr__json_str(&j, 0, s, sizeof(s)), -EINVAL);
    CHECK_EQ(parse("\"a\\u0000b\"", &j), 0);
    CHECK_EQ(hxfr__json_str(&j, 0, s, sizeof(s)), -EINVAL);
    CHECK_EQ(parse("\"\\b\\f\\n\\r\\t\\\\\"", &j), 0);
    CHECK_EQ(hxfr__json_str(&j, 0, s, sizeof(s)), 6);
    CHECK_MEM(s, "\b\f\n\r\t\\", 6);
    /* Not a string. */
    CHECK_EQ(parse("[1]", &j), 0);
    CHECK_EQ(hxfr__json_str(&j, 0, s, sizeof(s)), -EINVAL);
}
