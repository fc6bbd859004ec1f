/* The calls of include/hxfr/host.h for programs that run a server (hxfrd,
 * hxfr-gpu) and need no server object: which encoders this machine can
 * open, systemd's listening sockets, the default endpoint. Kept out of
 * hxfr_host_src, like ffmpeg-log.c, because the encoder list needs the real
 * encoders, which the fuzz and fake-encoder builds do not have. */
#include <errno.h>
#include <stdio.h>

#include <hxfr/host.h>

#include "encoders/encoder.h"
#include "transport/transport.h"

int hxfr_host_list_encoders(void (*cb)(void *opaque, const char *codec, const char *backend),
                            void *opaque)
{
    return hxfr__encoder_list(cb, opaque);
}

int hxfr_host_sd_listen_fds(int *fds, int max)
{
    return hxfr__sd_listen_fds(fds, max);
}

int hxfr_host_default_uri(char *buf, size_t len)
{
    char path[HXFR_URI_PATH_MAX];
    int r = hxfr__default_socket_path(path, sizeof(path));
    if (r < 0) {
        return r;
    }
    int n = snprintf(buf, len, "unix:%s", path);
    if (n < 0 || (size_t)n >= len) {
        if (len > 0) {
            buf[0] = '\0';
        }
        return -ENAMETOOLONG;
    }
    return n;
}
