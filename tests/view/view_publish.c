/* A minimal scanout publisher for the end-to-end viewer tests: connects
 * to a host, enables a scanout (ENABLE_SCANOUT, waits for SCANOUT_RESP) and
 * publishes pattern frames into it as inline FRAME_REQUESTs with
 * session_id = the scanout, at a fixed rate, with a few frames in flight.
 * pts of frame i is i * 1e9 / fps, so a viewer can tell which pattern frame
 * it decoded.
 *
 *   view-publish --connect URI [--scanout N] [--size WxH] [--fps F]
 *                [--variant desktop|static|busy] [--frames N]
 *
 * Prints "publishing" on stdout once the scanout is enabled. SIGUSR1
 * pauses publishing (the connection stays: the host's keepalive keeps the
 * stream alive), SIGUSR2 resumes; SIGTERM disables the scanout
 * (DISABLE_SCANOUT, as a display being switched off; the scanout would
 * otherwise outlive the connection) and exits; SIGKILL just leaves it.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <hxfr/proto.h>

#include "pattern.h"
#include "transport.h"

#define WINDOW 4

static volatile sig_atomic_t stop, paused;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_pause(int sig)
{
    paused = sig == SIGUSR1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Reads what is there (waiting up to timeout_ms); counts responses.
 * Returns 0, or -1 on EOF, error or an ERROR message. */
static int drain(int fd, struct hxfr_parser *p, int timeout_ms, unsigned *responses,
                 struct hxfr_msg *last)
{
    uint8_t buf[65536];
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, timeout_ms);
    if (r <= 0) {
        return r < 0 && errno != EINTR ? -1 : 0;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
        if (n < 0 && errno == EINTR) {
            return 0;
        }
        fprintf(stderr, "view-publish: the host closed the connection\n");
        return -1;
    }
    size_t off = 0;
    while (off < (size_t)n) {
        struct hxfr_parse_result res;
        int used = hxfr_parser_feed(p, buf + off, (size_t)n - off, &res);
        if (used < 0) {
            fprintf(stderr, "view-publish: protocol error: %s\n", hxfr_strerror(used));
            return -1;
        }
        off += (size_t)used;
        if (res.event != HXFR_PARSE_MESSAGE) {
            continue;
        }
        *last = res.msg;
        if (res.msg.hdr.type == HXFR_MSG_FRAME_RESPONSE) {
            (*responses)++;
        } else if (res.msg.hdr.type == HXFR_MSG_ERROR) {
            fprintf(stderr, "view-publish: host error %s: %s\n",
                    hxfr_status_name(res.msg.u.error.code), res.msg.u.error.message);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"scanout", required_argument, NULL, 's'},
        {"size", required_argument, NULL, 'S'},
        {"fps", required_argument, NULL, 'f'},
        {"variant", required_argument, NULL, 'v'},
        {"frames", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    const char *uri_s = NULL;
    unsigned scanout = 0, w = 320, h = 240;
    double fps = 30;
    int variant = HXFR_PATTERN_DESKTOP;
    unsigned long max_frames = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            uri_s = optarg;
            break;
        case 's':
            scanout = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'S':
            if (sscanf(optarg, "%ux%u", &w, &h) != 2) {
                return 2;
            }
            break;
        case 'f':
            fps = atof(optarg);
            break;
        case 'v':
            variant = hxfr_pattern_variant_from_name(optarg);
            break;
        case 'n':
            max_frames = strtoul(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (!uri_s || variant < 0 || fps <= 0 || w == 0 || h == 0 || w > 4096 || h > 4096 ||
        scanout > 65535) {
        fprintf(stderr, "usage: view-publish --connect URI [--scanout N] [--size WxH] "
                        "[--fps F] [--variant NAME] [--frames N]\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_pause;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct hxfr_uri uri;
    if (hxfr__uri_parse(uri_s, false, &uri) < 0) {
        fprintf(stderr, "view-publish: bad URI %s\n", uri_s);
        return 2;
    }
    int fd = hxfr__transport_connect(&uri);
    if (fd < 0) {
        fprintf(stderr, "view-publish: connect %s: %s\n", uri_s, hxfr_strerror(fd));
        return 1;
    }
    struct hxfr_parser parser;
    hxfr_parser_init(&parser, 64u << 20);

    struct hxfr_msg m;
    uint8_t hdr[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_ENABLE_SCANOUT;
    m.hdr.session_id = (uint16_t)scanout;
    m.u.enable_scanout.scanout_id = scanout;
    m.u.enable_scanout.width = w;
    m.u.enable_scanout.height = h;
    m.u.enable_scanout.refresh_hz = (uint32_t)(fps + 0.5);
    int n = hxfr_msg_encode(&m, 0, hdr, sizeof(hdr));
    struct iovec iov[2] = {{hdr, (size_t)n}, {NULL, 0}};
    if (n < 0 || send_all(fd, iov, 1) < 0) {
        return 1;
    }
    unsigned responses = 0;
    struct hxfr_msg last = {0};
    double deadline = now_s() + 10;
    while (last.hdr.type != HXFR_MSG_SCANOUT_RESP) {
        if (now_s() > deadline || drain(fd, &parser, 100, &responses, &last) < 0) {
            fprintf(stderr, "view-publish: no SCANOUT_RESP\n");
            return 1;
        }
    }
    if (!last.u.scanout_resp.success) {
        fprintf(stderr, "view-publish: scanout %u refused\n", scanout);
        return 1;
    }
    printf("publishing scanout %u on %s\n", scanout, last.u.scanout_resp.connector);
    fflush(stdout);

    size_t frame_bytes = (size_t)w * h * 4;
    uint8_t *pixels = malloc(frame_bytes);
    if (!pixels) {
        return 1;
    }
    unsigned long sent = 0;
    double period = 1.0 / fps;
    double next = now_s();
    int rc = 0;
    while (!stop && (max_frames == 0 || sent < max_frames)) {
        double wait = next - now_s();
        if (drain(fd, &parser, wait > 0 ? (int)(wait * 1000) + 1 : 0, &responses, &last) < 0) {
            rc = 1;
            break;
        }
        if (now_s() < next) {
            continue;
        }
        next += period;
        /* Frames in flight stay bounded: a slow host makes us skip. */
        if (paused || sent - responses >= WINDOW) {
            continue;
        }
        uint8_t *planes[3] = {pixels, NULL, NULL};
        uint32_t strides[3] = {w * 4, 0, 0};
        hxfr_pattern_render((enum hxfr_pattern_variant)variant, HXFR_FORMAT_ARGB8888, w, h, sent,
                            planes, strides);
        memset(&m, 0, sizeof(m));
        m.hdr.type = HXFR_MSG_FRAME_REQUEST;
        m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
        m.hdr.session_id = (uint16_t)scanout;
        m.u.frame_request.width = w;
        m.u.frame_request.height = h;
        m.u.frame_request.format = HXFR_FORMAT_ARGB8888;
        m.u.frame_request.stride = w * 4;
        m.u.frame_request.pts = (int64_t)((double)sent * 1e9 / fps);
        m.u.frame_request.duration = (int64_t)(1e9 / fps);
        n = hxfr_msg_encode(&m, (uint32_t)frame_bytes, hdr, sizeof(hdr));
        iov[0] = (struct iovec){hdr, (size_t)n};
        iov[1] = (struct iovec){pixels, frame_bytes};
        if (n < 0 || send_all(fd, iov, 2) < 0) {
            fprintf(stderr, "view-publish: send failed\n");
            rc = 1;
            break;
        }
        sent++;
    }
    if (stop && rc == 0) {
        memset(&m, 0, sizeof(m));
        m.hdr.type = HXFR_MSG_DISABLE_SCANOUT;
        m.hdr.session_id = (uint16_t)scanout;
        m.u.disable_scanout.scanout_id = scanout;
        n = hxfr_msg_encode(&m, 0, hdr, sizeof(hdr));
        iov[0] = (struct iovec){hdr, (size_t)n};
        if (n < 0 || send_all(fd, iov, 1) < 0) {
            rc = 1;
        }
        /* Its answer comes after those of the frames in flight. */
        last.hdr.type = 0;
        deadline = now_s() + 5;
        while (rc == 0 && last.hdr.type != HXFR_MSG_SCANOUT_RESP) {
            if (now_s() > deadline || drain(fd, &parser, 100, &responses, &last) < 0) {
                fprintf(stderr, "view-publish: DISABLE_SCANOUT not answered\n");
                rc = 1;
            }
        }
    }
    free(pixels);
    close(fd);
    return rc;
}
