/* Integration tests of hxfr-view's input and agent API against the host
 * double (fakehost) and a QMP double (fakeqmp): the token, view-only
 * scanouts, page input reaching QMP with the right coordinates, keys
 * released on blur, on close and after a QMP reconnect, the HTTP input
 * API and its refusals, and /info.
 *
 * Waits are conditions with generous deadlines (log lines, messages),
 * never sleeps that decide pass or fail. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "input.h"
#include "viewtest.h"

#define WAIT_MS 10000
#define TOKEN   "test-token-0123456789"

struct qenv {
    struct vt_env e;
    char qsock[320];
    char qlog[320];
    char qarg[340];
    pid_t qmp;
};

static void start_qmp(struct qenv *t, const char *mode)
{
    const char *argv[] = {
        getenv("VIEW_FAKEQMP"), "--listen", t->qsock, "--log", t->qlog, "--mode", mode, NULL};
    t->qmp = vt_spawn(argv, "fakeqmp: listening", 30000);
    CHECK(t->qmp > 0);
}

/* The host double, a QMP double in mode and hxfr-view with --qmp 0=... and
 * the token, plus extra view arguments. */
static void setup(struct qenv *t, const char *mode, const char *const *extra)
{
    memset(t, 0, sizeof(*t));
    if (vt_setup(&t->e) < 0 || vt_start_host(&t->e, NULL) < 0) {
        FAIL("setup");
    }
    snprintf(t->qsock, sizeof(t->qsock), "%s/qmp.sock", t->e.dir);
    snprintf(t->qlog, sizeof(t->qlog), "%s/qmp.log", t->e.dir);
    snprintf(t->qarg, sizeof(t->qarg), "0=unix:%s", t->qsock);
    if (mode) {
        start_qmp(t, mode);
    }
    const char *args[16] = {"--qmp", t->qarg, "--token", TOKEN};
    int n = 4;
    for (int i = 0; extra && extra[i] && n < 15; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    CHECK_EQ(vt_start_view(&t->e, args), 0);
}

static void teardown(struct qenv *t)
{
    vt_stop(&t->qmp);
    vt_teardown(&t->e);
}

/* Lines of the QMP log containing needle. */
static int qcount(struct qenv *t, const char *needle)
{
    FILE *f = fopen(t->qlog, "r");
    static char line[1 << 16];
    int n = 0;
    if (!f) {
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        n += strstr(line, needle) != NULL;
    }
    fclose(f);
    return n;
}

static bool qwait(struct qenv *t, const char *needle, int n)
{
    int64_t deadline = vt_now_ms() + WAIT_MS;
    while (qcount(t, needle) < n) {
        if (vt_now_ms() > deadline) {
            return false;
        }
        usleep(10000);
    }
    return true;
}

#define KEY(q, d)                                                                                  \
    "{\"type\":\"key\",\"data\":{\"down\":" d ",\"key\":{\"type\":\"qcode\",\"data\":\"" q "\"}}}"
#define BTN(b, d) "{\"type\":\"btn\",\"data\":{\"down\":" d ",\"button\":\"" b "\"}}"

/* A page of scanout 0 with the token that has seen a keyframe (so the
 * gateway knows the size, 320x240). */
static void open_page(struct qenv *t, struct ws *w)
{
    struct vt_msg m;
    CHECK_EQ(ws_open(w, t->e.port, "/ws/0?token=" TOKEN, NULL, 0), 0);
    CHECK_EQ(vt_recv(w, WAIT_MS, &m), 1);
    CHECK(strstr(m.text, "\"input\":true") != NULL);
    CHECK_EQ(vt_recv_frame(w, WAIT_MS, &m), 1);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
    CHECK(qwait(t, "qmp_capabilities", 1));
}

static void send_text(struct ws *w, const char *text)
{
    CHECK_EQ(ws_send(w, WS_OP_TEXT, text, strlen(text), true, true), 0);
}

static int post_input(int port, const char *path, const char *auth, const char *body, char *out,
                      size_t cap)
{
    struct ws_http_req rq = {.port = port,
                             .method = "POST",
                             .path = path,
                             .headers = auth,
                             .body = body,
                             .body_len = strlen(body),
                             .timeout_ms = 15000};
    return ws_http(&rq, out, cap, NULL);
}

TEST(qmp_needs_token)
{
    struct vt_env e;
    CHECK_EQ(vt_setup(&e), 0);
    const char *argv[] = {getenv("HXFR_VIEW"), "--qmp", "0=unix:/nonexistent", "--http",
                          "127.0.0.1:0",       NULL};
    pid_t p = vt_spawn(argv, NULL, 0);
    int status;
    CHECK(waitpid(p, &status, 0) == p);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    const char *bad_token[] = {getenv("HXFR_VIEW"), "--token", "short", NULL};
    p = vt_spawn(bad_token, NULL, 0);
    CHECK(waitpid(p, &status, 0) == p);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    vt_teardown(&e);
}

TEST(token_required_everywhere)
{
    struct qenv t;
    setup(&t, "normal", NULL);
    int port = t.e.port;
    char body[4096];
    CHECK_EQ(ws_http_get(port, "/scanout/0", NULL, NULL, 0, NULL, 0), 401);
    CHECK_EQ(ws_http_get(port, "/", NULL, NULL, 0, NULL, 0), 401);
    CHECK_EQ(ws_http_get(port, "/index.json", NULL, NULL, 0, NULL, 0), 401);
    CHECK_EQ(ws_http_get(port, "/scanout/0/info", NULL, NULL, 0, NULL, 0), 401);
    CHECK_EQ(ws_http_get(port, "/scanout/0?token=wrong-token-0123456789", NULL, NULL, 0, NULL, 0),
             401);
    CHECK_EQ(ws_http_get(port, "/scanout/0?token=" TOKEN "x", NULL, NULL, 0, NULL, 0), 401);
    /* The script is public; the page and the rest with the token. */
    CHECK_EQ(ws_http_get(port, "/viewer.js", NULL, NULL, 0, NULL, 0), 200);
    CHECK_EQ(ws_http_get(port, "/scanout/0?token=" TOKEN, NULL, NULL, 0, NULL, 0), 200);
    char loc[256];
    CHECK_EQ(ws_http_get(port, "/?token=" TOKEN, NULL, NULL, 0, loc, sizeof(loc)), 302);
    CHECK(strcmp(loc, "/scanout/0?token=" TOKEN) == 0);
    struct ws_http_req rq = {
        .port = port, .path = "/scanout/0/info", .headers = "Authorization: Bearer " TOKEN "\r\n"};
    CHECK_EQ(ws_http(&rq, body, sizeof(body), NULL), 200);
    CHECK(strstr(body, "\"input\":{\"enabled\":true") != NULL);
    rq.headers = "Authorization: Bearer nope\r\n";
    CHECK_EQ(ws_http(&rq, body, sizeof(body), NULL), 401);
    CHECK_EQ(post_input(port, "/scanout/0/input", NULL, "{\"action\":\"type\",\"text\":\"a\"}",
                        body, sizeof(body)),
             401);
    struct ws w;
    CHECK(ws_open(&w, port, "/ws/0", NULL, 0) != 0);
    CHECK(ws_open(&w, port, "/ws/0?token=nope", NULL, 0) != 0);
    CHECK_EQ(ws_open(&w, port, "/ws/0?token=" TOKEN, NULL, 0), 0);
    ws_close(&w);
    /* Nothing reached QEMU. */
    CHECK_EQ(qcount(&t, "input-send-event"), 0);
    teardown(&t);
}

TEST(view_only_stays_view_only)
{
    struct vt_env e;
    CHECK_EQ(vt_setup(&e), 0);
    CHECK_EQ(vt_start_host(&e, NULL), 0);
    CHECK_EQ(vt_start_view(&e, NULL), 0);
    struct ws w, good;
    struct vt_msg m;
    CHECK_EQ(ws_open(&good, e.port, "/ws/0", NULL, 0), 0);
    CHECK_EQ(ws_open(&w, e.port, "/ws/0", NULL, 0), 0);
    CHECK_EQ(vt_recv(&w, WAIT_MS, &m), 1);
    CHECK(strstr(m.text, "\"input\":false") != NULL);
    send_text(&w, "kd KeyA");
    CHECK(ws_wait_closed(&w, WAIT_MS));
    CHECK_EQ(w.close_code, 1008);
    ws_close(&w);
    char body[1024];
    CHECK_EQ(post_input(e.port, "/scanout/0/input", NULL, "{\"action\":\"type\",\"text\":\"a\"}",
                        body, sizeof(body)),
             403);
    CHECK(strstr(body, "not enabled") != NULL);
    /* The other browser goes on. */
    CHECK_EQ(vt_recv_frame(&good, WAIT_MS, &m), 1);
    ws_close(&good);
    vt_teardown(&e);
}

TEST(page_input_reaches_qmp)
{
    struct qenv t;
    setup(&t, "normal", NULL);
    struct ws w;
    open_page(&t, &w);
    send_text(&w, "kd KeyA");
    send_text(&w, "kd KeyA"); /* key repeat: another down */
    send_text(&w, "ku KeyA");
    send_text(&w, "ku KeyA"); /* an up for a key not held: dropped */
    send_text(&w, "kd Unidentified");
    send_text(&w, "mm 160 120");
    send_text(&w, "bd 0 319 239");
    send_text(&w, "bu 0 319 239");
    send_text(&w, "bd 2 400 400"); /* outside: clamped to the last pixel */
    send_text(&w, "bu 2 400 400");
    send_text(&w, "wh 0 2 10 10");
    send_text(&w, "wh 1 -1 10 10");
    send_text(&w, "kd MetaLeft");
    CHECK(qwait(&t, KEY("meta_l", "true"), 1));
    CHECK_EQ(qcount(&t, KEY("a", "true")), 2);
    CHECK_EQ(qcount(&t, KEY("a", "false")), 1);
    /* Coordinates scaled from 320x240 to 0..0x7fff; the button events
     * carry their position first. */
    CHECK_EQ(qcount(&t, "\"axis\":\"x\",\"value\":16383}},{\"type\":\"abs\",\"data\":{\"axis\":"
                        "\"y\",\"value\":16383}}"),
             1);
    CHECK_EQ(qcount(&t, "\"value\":32664}},{\"type\":\"abs\",\"data\":{\"axis\":\"y\",\"value\":"
                        "32630}}," BTN("left", "true")),
             1);
    CHECK_EQ(qcount(&t, BTN("right", "true")), 1);
    CHECK_EQ(qcount(&t, BTN("wheel-down", "true") "," BTN("wheel-down",
                                                          "false") "," BTN("wheel-down", "true")),
             1);
    CHECK_EQ(qcount(&t, BTN("wheel-up", "true") "," BTN("wheel-up", "false") "," BTN("wheel-right",
                                                                                     "true")),
             1);
    /* The page goes away holding the Meta key: the gateway lets go. */
    ws_close(&w);
    CHECK(qwait(&t, KEY("meta_l", "false"), 1));
    teardown(&t);
}

TEST(release_on_blur_and_only_own_keys)
{
    struct qenv t;
    setup(&t, "normal", NULL);
    struct ws a, b;
    open_page(&t, &a);
    open_page(&t, &b);
    send_text(&a, "kd ShiftLeft");
    send_text(&a, "bd 1 5 5");
    send_text(&b, "kd KeyZ");
    CHECK(qwait(&t, KEY("z", "true"), 1));
    CHECK(qwait(&t, BTN("middle", "true"), 1));
    /* a lost focus: it releases what it holds, and only that. */
    send_text(&a, "release");
    CHECK(qwait(&t, KEY("shift", "false"), 1));
    CHECK(qwait(&t, BTN("middle", "false"), 1));
    CHECK_EQ(qcount(&t, KEY("z", "false")), 0);
    /* Released once: closing a holds nothing more. */
    ws_close(&a);
    send_text(&b, "ku KeyZ");
    CHECK(qwait(&t, KEY("z", "false"), 1));
    CHECK_EQ(qcount(&t, KEY("shift", "false")), 1);
    ws_close(&b);
    teardown(&t);
}

TEST(malformed_input_closes_only_that_browser)
{
    static const char *const bad[] = {"kd Key-A",    "mm 99999 1", "bd 7 0 0",
                                      "wh 50 0 0 0", "kd",         "release now"};
    struct qenv t;
    setup(&t, "normal", NULL);
    struct ws good;
    open_page(&t, &good);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ws w;
        CHECK_EQ(ws_open(&w, t.e.port, "/ws/0?token=" TOKEN, NULL, 0), 0);
        send_text(&w, "kd KeyQ");
        send_text(&w, bad[i]);
        if (!ws_wait_closed(&w, WAIT_MS)) {
            FAIL("kept a browser that sent '%s'", bad[i]);
        }
        ws_close(&w);
        /* What it held was released when it was closed. */
        CHECK(qwait(&t, KEY("q", "false"), (int)i + 1));
    }
    struct vt_msg m;
    CHECK_EQ(vt_recv_frame(&good, WAIT_MS, &m), 1);
    send_text(&good, "kd KeyW");
    CHECK(qwait(&t, KEY("w", "true"), 1));
    ws_close(&good);
    teardown(&t);
}

TEST(api_input)
{
    struct qenv t;
    setup(&t, "normal", NULL);
    char body[4096];
    const char *path = "/scanout/0/input?token=" TOKEN;
    /* No browser watches: the request connects upstream for the size. */
    CHECK_EQ(post_input(t.e.port, path, NULL,
                        "[{\"action\":\"click\",\"x\":160,\"y\":120},"
                        "{\"action\":\"type\",\"text\":\"Hi\"},"
                        "{\"action\":\"key\",\"keys\":\"ctrl+alt+t\"}]",
                        body, sizeof(body)),
             200);
    CHECK(strstr(body, "\"ok\":true,\"events\":15") != NULL);
    /* Answered once QEMU had answered: the events are all in the log. */
    CHECK_EQ(qcount(&t, BTN("left", "true") "," BTN("left", "false")), 1);
    CHECK_EQ(qcount(&t, KEY("shift", "true") "," KEY("h", "true") "," KEY("h", "false") "," KEY(
                            "shift", "false") "," KEY("i", "true")),
             1);
    CHECK_EQ(qcount(&t, KEY("ctrl", "true") "," KEY("alt", "true") "," KEY("t", "true") "," KEY(
                            "t", "false") "," KEY("alt", "false") "," KEY("ctrl", "false")),
             1);
    /* The Authorization header works as well; a drag lands in several
     * commands-worth of moves but one request. */
    CHECK_EQ(post_input(t.e.port, "/scanout/0/input", "Authorization: Bearer " TOKEN "\r\n",
                        "{\"action\":\"drag\",\"from\":[0,0],\"to\":[319,239],\"steps\":100}", body,
                        sizeof(body)),
             200);
    CHECK(strstr(body, "\"events\":103") != NULL);
    /* A long text is split into several commands, all answered. */
    static char text[HXFR_VIEW_API_TEXT_MAX + 64];
    int n = snprintf(text, sizeof(text), "{\"action\":\"type\",\"text\":\"");
    memset(text + n, 'x', 1000);
    strcpy(text + n + 1000, "\"}");
    int before = qcount(&t, "input-send-event");
    CHECK_EQ(post_input(t.e.port, path, NULL, text, body, sizeof(body)), 200);
    CHECK(strstr(body, "\"events\":2000") != NULL);
    CHECK(qcount(&t, "input-send-event") >= before + 2000 / 64);
    /* Refusals: bad JSON, bad actions, outside the picture, too big. */
    CHECK_EQ(post_input(t.e.port, path, NULL, "{\"action\":", body, sizeof(body)), 400);
    CHECK(strstr(body, "\"error\":") != NULL);
    CHECK_EQ(post_input(t.e.port, path, NULL, "{\"action\":\"key\",\"keys\":\"hyper+x\"}", body,
                        sizeof(body)),
             400);
    CHECK(strstr(body, "unknown key") != NULL);
    CHECK_EQ(post_input(t.e.port, path, NULL, "{\"action\":\"move\",\"x\":320,\"y\":0}", body,
                        sizeof(body)),
             400);
    static char big[HXFR_VIEW_API_BODY_MAX + 100];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_EQ(post_input(t.e.port, path, NULL, big, body, sizeof(body)), 413);
    CHECK_EQ(post_input(t.e.port, "/scanout/9/input?token=" TOKEN, NULL, "{}", body, sizeof(body)),
             404);
    struct ws_http_req get = {.port = t.e.port, .path = path};
    CHECK_EQ(ws_http(&get, body, sizeof(body), NULL), 405);
    /* /info tells the size and the input counters. */
    get.path = "/scanout/0/info?token=" TOKEN;
    CHECK_EQ(ws_http(&get, body, sizeof(body), NULL), 200);
    CHECK(strstr(body, "\"width\":320,\"height\":240") != NULL);
    CHECK(strstr(body, "\"qmp\":\"ready\"") != NULL);
    teardown(&t);
}

TEST(api_input_qemu_errors)
{
    struct qenv t;
    setup(&t, "error", NULL);
    char body[1024];
    CHECK_EQ(post_input(t.e.port, "/scanout/0/input?token=" TOKEN, NULL,
                        "{\"action\":\"type\",\"text\":\"a\"}", body, sizeof(body)),
             502);
    CHECK(strstr(body, "Input is disabled") != NULL);
    teardown(&t);
}

TEST(api_input_without_qmp)
{
    struct qenv t;
    setup(&t, NULL, NULL); /* nobody listens on the QMP socket */
    char body[1024];
    CHECK_EQ(post_input(t.e.port, "/scanout/0/input?token=" TOKEN, NULL,
                        "{\"action\":\"type\",\"text\":\"a\"}", body, sizeof(body)),
             503);
    teardown(&t);
}

TEST(qmp_reconnect_releases_held_keys)
{
    struct qenv t;
    setup(&t, "normal", NULL);
    struct ws w;
    open_page(&t, &w);
    send_text(&w, "kd ControlLeft");
    CHECK(qwait(&t, KEY("ctrl", "true"), 1));
    /* QEMU's monitor goes away and comes back (the gateway reconnects):
     * the key the guest still holds is let go at once. */
    CHECK_EQ(vt_stop(&t.qmp), 0);
    start_qmp(&t, "normal");
    CHECK(qwait(&t, "CONNECT", 2));
    CHECK(qwait(&t, KEY("ctrl", "false"), 1));
    /* The page's later release is harmless (an extra up). */
    ws_close(&w);
    teardown(&t);
}

TEST(stalled_qmp_bounds_output)
{
    /* QEMU stops reading: moves are coalesced and other input is refused
     * once the output bound is reached; the gateway keeps serving. */
    struct qenv t;
    setup(&t, "stall", NULL);
    struct ws w;
    open_page(&t, &w);
    char msg[64];
    for (int i = 0; i < 20000; i++) {
        if (i & 1) {
            snprintf(msg, sizeof(msg), "mm %d %d", i % 320, i % 240);
        } else {
            snprintf(msg, sizeof(msg), "kd KeyA");
        }
        send_text(&w, msg);
    }
    struct vt_msg m;
    /* Still streaming, and the API answers (503: QMP output full, or
     * 504: QEMU never answers) instead of hanging. */
    CHECK_EQ(vt_recv_frame(&w, WAIT_MS, &m), 1);
    char body[1024];
    int st = post_input(t.e.port, "/scanout/0/input?token=" TOKEN, NULL,
                        "{\"action\":\"type\",\"text\":\"a\"}", body, sizeof(body));
    CHECK(st == 503 || st == 504);
    ws_close(&w);
    teardown(&t);
}
