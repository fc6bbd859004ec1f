/* --listen URI of a server program (hostcli.h): listen, or say why not
 * with a hint at the usual cause. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hostcli.h"

static const char *listen_hint(int err)
{
    switch (err) {
    case -EAFNOSUPPORT:
        return " (AF_VSOCK is not available on this machine: load the vsock "
               "kernel modules or use unix:/tcp:)";
    case -EADDRINUSE:
        return " (another server is listening there)";
    case -EPROTONOSUPPORT:
    case -EINVAL:
        return " (forms: unix:PATH, tcp:HOST:PORT, vsock:PORT)";
    default:
        return "";
    }
}

int hxfr__hostcli_listen(struct hxfr_hostcli *cli, struct hxfr_host *host, const char *uri)
{
    int r = hxfr_host_listen(host, uri, NULL, 0);
    if (r < 0) {
        fprintf(stderr, "%s: cannot listen on %s: %s%s\n", cli->prog, uri, strerror(-r),
                listen_hint(r));
    }
    return r;
}
