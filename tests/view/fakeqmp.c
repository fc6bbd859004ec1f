/* A test double of QEMU's QMP monitor for the hxfr-view input tests: it
 * listens on a UNIX socket, greets each client as QEMU does, answers
 * qmp_capabilities and every input-send-event, and writes each command it
 * receives to a log file (one line each, as received), so that the tests
 * can check which events reached "the guest".
 *
 *   fakeqmp --listen PATH --log FILE [--mode normal|error|stall]
 *
 * error: input-send-event is answered with an error. stall: after
 * qmp_capabilities nothing more is read (QEMU hung). One client at a time,
 * as a QMP chardev serves them; a new one is accepted after it leaves.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void say(int fd, const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return;
        }
        text += n;
        len -= (size_t)n;
    }
}

/* The "id" of a command line, or -1. */
static long command_id(const char *line)
{
    const char *p = strstr(line, "\"id\":");
    return p ? strtol(p + 5, NULL, 10) : -1;
}

static void serve(int c, FILE *log, const char *mode)
{
    char buf[1 << 16];
    size_t len = 0;
    bool stalled = false;
    say(c, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 10}, "
           "\"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n");
    while (!stop) {
        struct pollfd p = {c, stalled ? 0 : POLLIN, 0};
        if (poll(&p, 1, 200) < 0 && errno != EINTR) {
            return;
        }
        if (stalled || !(p.revents & (POLLIN | POLLHUP))) {
            continue;
        }
        ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0) {
            return;
        }
        len += (size_t)n;
        char *nl;
        while ((nl = memchr(buf, '\n', len))) {
            *nl = '\0';
            char reply[256];
            long id = command_id(buf);
            fprintf(log, "%s\n", buf);
            fflush(log);
            if (strstr(buf, "\"qmp_capabilities\"")) {
                snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %ld}\r\n", id);
                say(c, reply);
                /* An event between replies, as QEMU sends them. */
                say(c, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
                       "\"event\": \"RESUME\"}\r\n");
                stalled = strcmp(mode, "stall") == 0;
            } else if (strcmp(mode, "error") == 0) {
                snprintf(reply, sizeof(reply),
                         "{\"id\": %ld, \"error\": {\"class\": \"GenericError\", "
                         "\"desc\": \"Input is disabled\"}}\r\n",
                         id);
                say(c, reply);
            } else {
                snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %ld}\r\n", id);
                say(c, reply);
            }
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, nl + 1, len - used);
            len -= used;
        }
        if (len == sizeof(buf) - 1) {
            return; /* a line longer than QEMU would take */
        }
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL, *logpath = NULL, *mode = "normal";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0) {
            path = argv[i + 1];
        } else if (strcmp(argv[i], "--log") == 0) {
            logpath = argv[i + 1];
        } else if (strcmp(argv[i], "--mode") == 0) {
            mode = argv[i + 1];
        }
    }
    if (!path || !logpath) {
        fprintf(stderr, "usage: fakeqmp --listen PATH --log FILE [--mode normal|error|stall]\n");
        return 2;
    }
    FILE *log = fopen(logpath, "a");
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!log || l < 0 || strlen(path) >= sizeof(sa.sun_path)) {
        return 1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path);
    if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 4) < 0) {
        perror("fakeqmp: bind");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction act = {.sa_handler = on_signal};
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    printf("fakeqmp: listening on %s\n", path);
    fflush(stdout);
    while (!stop) {
        struct pollfd p = {l, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) {
            continue;
        }
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            continue;
        }
        fprintf(log, "CONNECT\n");
        fflush(log);
        serve(c, log, mode);
        close(c);
        fprintf(log, "DISCONNECT\n");
        fflush(log);
    }
    unlink(path);
    fclose(log);
    return 0;
}
