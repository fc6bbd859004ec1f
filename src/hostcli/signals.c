/* The signals of a server program (hostcli.h): SIGTERM and SIGINT through
 * a signalfd its loop polls, so a stop is handled on the loop thread like
 * any other event; SIGPIPE ignored, so a write to a vanished client is an
 * EPIPE result instead of the end of the program. */
#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "hostcli.h"

int hxfr__hostcli_signalfd(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
