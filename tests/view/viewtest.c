/* hxfr-view integration-test helpers (see viewtest.h). */
#include "viewtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 16
static pid_t children[MAX_CHILDREN];
static bool atexit_done;

/* How long a helper process may take to become ready: generous, since a
 * loaded machine (or a sanitizer build) can be many times slower. */
#define START_TIMEOUT_MS 30000

int64_t vt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    }
}

static void track(pid_t pid)
{
    if (!atexit_done) {
        atexit(kill_children);
        atexit_done = true;
    }
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
    }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] == pid) {
            children[i] = 0;
        }
    }
}

/* fork + exec with stdout to out_fd (or inherited when -1). */
static pid_t spawn(const char *const *argv, int out_fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (out_fd >= 0) {
            dup2(out_fd, STDOUT_FILENO);
        }
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid > 0) {
        track(pid);
    }
    return pid;
}

int vt_stop(pid_t *pid)
{
    int status = -1;
    if (*pid <= 0) {
        return -1;
    }
    kill(*pid, SIGTERM);
    int64_t deadline = vt_now_ms() + 5000;
    for (;;) {
        pid_t r = waitpid(*pid, &status, WNOHANG);
        if (r == *pid) {
            break;
        }
        if (r < 0 || vt_now_ms() > deadline) {
            kill(*pid, SIGKILL);
            waitpid(*pid, &status, 0);
            status = -1;
            break;
        }
        usleep(10000);
    }
    untrack(*pid);
    *pid = 0;
    if (status >= 0 && WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return -1;
}

int vt_setup(struct vt_env *e)
{
    memset(e, 0, sizeof(*e));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(e->dir, sizeof(e->dir), "%s/hxfr-view-test-XXXXXX", base);
    if (!mkdtemp(e->dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(e->sock, sizeof(e->sock), "%s/host.sock", e->dir);
    snprintf(e->log, sizeof(e->log), "%s/host.log", e->dir);
    const char *enc = getenv("VIEW_FAKEHOST_ENCODER");
    if (enc && strcmp(enc, "1") == 0) {
        return 0;
    }
    /* No encoder in the double: make an H.264 file from the pattern with
     * the ffmpeg CLI (keyframe every 30 frames, no B-frames). */
    snprintf(e->h264, sizeof(e->h264), "%s/pattern.h264", e->dir);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "'%s' render desktop 320 240 90 | '%s' -nostdin -loglevel error -f rawvideo "
             "-pix_fmt bgra -s 320x240 -r 30 -i - -c:v libx264 -preset ultrafast "
             "-tune zerolatency -g 30 -bf 0 -pix_fmt yuv420p -f h264 -y '%s'",
             getenv("VIEW_PATTERN"), getenv("FFMPEG"), e->h264);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not make %s\n", e->h264);
        return -1;
    }
    return 0;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            char p[600];
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

void vt_teardown(struct vt_env *e)
{
    vt_stop(&e->view);
    vt_stop(&e->host);
    if (e->dir[0]) {
        remove_dir(e->dir);
    }
}

int vt_start_host(struct vt_env *e, const char *const *extra)
{
    char listen[320];
    snprintf(listen, sizeof(listen), "unix:%s", e->sock);
    const char *argv[32];
    int n = 0;
    argv[n++] = getenv("VIEW_FAKEHOST");
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--log";
    argv[n++] = e->log;
    if (e->h264[0]) {
        argv[n++] = "--h264";
        argv[n++] = e->h264;
    } else {
        argv[n++] = "--pattern";
        argv[n++] = "desktop";
        argv[n++] = "--size";
        argv[n++] = "320x240";
    }
    for (int i = 0; extra && extra[i] && n < 30; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    unlink(e->sock);
    /* Ready when the double says it listens: its socket file appears at
     * bind(), before listen(), and a connect in between is refused. */
    e->host = vt_spawn(argv, "fakehost: listening on", START_TIMEOUT_MS);
    if (e->host <= 0) {
        e->host = 0;
        fprintf(stderr, "the host double did not start\n");
        return -1;
    }
    return 0;
}

int vt_start_view(struct vt_env *e, const char *const *extra)
{
    char connect[320];
    snprintf(connect, sizeof(connect), "unix:%s", e->sock);
    const char *argv[32];
    int n = 0;
    bool own_connect = false;
    for (int i = 0; extra && extra[i]; i++) {
        own_connect = own_connect || strcmp(extra[i], "--connect") == 0;
    }
    argv[n++] = getenv("HXFR_VIEW");
    if (!own_connect) {
        argv[n++] = "--connect";
        argv[n++] = connect;
    }
    argv[n++] = "--http";
    argv[n++] = "127.0.0.1:0";
    if (getenv("VT_VERBOSE")) {
        argv[n++] = "--verbose";
    }
    for (int i = 0; extra && extra[i] && n < 30; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        return -1;
    }
    e->view = spawn(argv, pfd[1]);
    close(pfd[1]);
    if (e->view <= 0) {
        close(pfd[0]);
        return -1;
    }
    /* The first stdout line names the URL. */
    char line[512];
    size_t len = 0;
    int64_t deadline = vt_now_ms() + START_TIMEOUT_MS;
    while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        int left = (int)(deadline - vt_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) {
            break;
        }
        ssize_t r = read(pfd[0], line + len, sizeof(line) - 1 - len);
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
    }
    close(pfd[0]);
    line[len] = '\0';
    const char *p = strstr(line, "http://127.0.0.1:");
    if (!p || sscanf(p, "http://127.0.0.1:%d/", &e->port) != 1) {
        fprintf(stderr, "hxfr-view did not start: '%s'\n", line);
        return -1;
    }
    return 0;
}

pid_t vt_spawn(const char *const *argv, const char *needle, int timeout_ms)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        return -1;
    }
    pid_t pid = spawn(argv, pfd[1]);
    close(pfd[1]);
    if (pid <= 0 || !needle) {
        close(pfd[0]);
        return pid;
    }
    char out[4096];
    size_t len = 0;
    int64_t deadline = vt_now_ms() + timeout_ms;
    bool found = false;
    while (!found && len < sizeof(out) - 1) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        int left = (int)(deadline - vt_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) {
            break;
        }
        ssize_t r = read(pfd[0], out + len, sizeof(out) - 1 - len);
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
        out[len] = '\0';
        found = strstr(out, needle) != NULL;
    }
    close(pfd[0]);
    if (!found) {
        fprintf(stderr, "%s did not print '%s'\n", argv[0], needle);
        vt_stop(&pid);
        return -1;
    }
    return pid;
}

int vt_log_count(struct vt_env *e, const char *prefix)
{
    FILE *f = fopen(e->log, "r");
    char line[256];
    int n = 0;
    if (!f) {
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            n++;
        }
    }
    fclose(f);
    return n;
}

bool vt_log_wait(struct vt_env *e, const char *prefix, int n, int timeout_ms)
{
    int64_t deadline = vt_now_ms() + timeout_ms;
    while (vt_log_count(e, prefix) < n) {
        if (vt_now_ms() > deadline) {
            return false;
        }
        usleep(10000);
    }
    return true;
}

int vt_recv(struct ws *w, int timeout_ms, struct vt_msg *m)
{
    int op;
    const uint8_t *d;
    size_t n;
    int r = ws_recv(w, timeout_ms, &op, &d, &n);
    if (r <= 0) {
        return r;
    }
    m->opcode = op;
    m->text[0] = '\0';
    m->data = NULL;
    m->data_len = 0;
    if (op == WS_OP_TEXT) {
        size_t c = n < HXFR_VIEW_TEXT_MAX ? n : HXFR_VIEW_TEXT_MAX;
        memcpy(m->text, d, c);
        m->text[c] = '\0';
        return 1;
    }
    int off = hxfr__view_frame_header_decode(d, n, &m->h);
    if (off < 0) {
        return -1;
    }
    m->data = d + off;
    m->data_len = n - (size_t)off;
    return 1;
}

int vt_recv_frame(struct ws *w, int timeout_ms, struct vt_msg *m)
{
    int64_t deadline = vt_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - vt_now_ms());
        if (left <= 0) {
            return 0;
        }
        int r = vt_recv(w, left, m);
        if (r <= 0 || m->opcode == WS_OP_BINARY) {
            return r;
        }
    }
}

bool vt_wait_status(struct ws *w, const char *state, int timeout_ms, char *text, size_t cap)
{
    char want[64];
    snprintf(want, sizeof(want), "\"state\":\"%s\"", state);
    int64_t deadline = vt_now_ms() + timeout_ms;
    struct vt_msg m;
    for (;;) {
        int left = (int)(deadline - vt_now_ms());
        if (left <= 0 || vt_recv(w, left, &m) <= 0) {
            return false;
        }
        if (m.opcode == WS_OP_TEXT && strstr(m.text, "\"type\":\"status\"") &&
            strstr(m.text, want)) {
            if (text) {
                snprintf(text, cap, "%s", m.text);
            }
            return true;
        }
    }
}

bool vt_has_nal(const uint8_t *d, size_t len, unsigned type)
{
    for (size_t i = 0; i + 3 < len; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 && (d[i + 3] & 0x1f) == type) {
            return true;
        }
    }
    return false;
}
