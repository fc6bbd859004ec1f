/* Helpers for the hxfr-view integration tests: a temporary directory, the
 * test-double host, the gateway process, and reading gateway messages.
 * Every process started here dies with the test (PR_SET_PDEATHSIG and an
 * atexit handler), so a failing or timed-out test leaves nothing behind. */
#ifndef HXFR_TESTS_VIEW_VIEWTEST_H
#define HXFR_TESTS_VIEW_VIEWTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "viewmsg.h"
#include "wsclient.h"

struct vt_env {
    char dir[256];  /* temporary directory */
    char sock[300]; /* the host double's socket */
    char log[300];  /* its SUBSCRIBE / KEYFRAME_REQ log */
    char h264[300]; /* H.264 file when the double has no encoder */
    pid_t host;
    pid_t view;
    int port; /* the gateway's HTTP port */
};

/* Creates the temporary directory (and the H.264 file if needed). Returns
 * 0, or -1 with a message on stderr. */
int vt_setup(struct vt_env *e);
/* Stops everything and removes the directory. */
void vt_teardown(struct vt_env *e);

/* Starts the host double (extra: NULL-terminated argv tail) and waits for
 * its socket. Returns 0 or -1. */
int vt_start_host(struct vt_env *e, const char *const *extra);
/* SIGTERM, wait. Returns the exit status or -1. */
int vt_stop(pid_t *pid);

/* Starts hxfr-view on 127.0.0.1:0 connected to the double's socket (unless
 * extra has a --connect of its own) and reads its port. Returns 0 or -1. */
int vt_start_view(struct vt_env *e, const char *const *extra);

/* Lines in the double's log that start with prefix. */
int vt_log_count(struct vt_env *e, const char *prefix);
/* Waits until vt_log_count(prefix) >= n, up to timeout_ms. */
bool vt_log_wait(struct vt_env *e, const char *prefix, int n, int timeout_ms);

/* One message from the gateway, decoded. */
struct vt_msg {
    int opcode;
    /* text */
    char text[HXFR_VIEW_TEXT_MAX + 1];
    /* binary */
    struct hxfr_view_frame_header h;
    const uint8_t *data; /* Annex B, valid until the next receive */
    size_t data_len;
};

/* Receives the next message (text or frame). Returns 1, 0 on timeout, -1
 * when closed or when a binary message does not parse. */
int vt_recv(struct ws *w, int timeout_ms, struct vt_msg *m);
/* Skips text messages; returns the next frame (1), 0 or -1. */
int vt_recv_frame(struct ws *w, int timeout_ms, struct vt_msg *m);
/* Waits for a status message whose state is `state`; stores its text. */
bool vt_wait_status(struct ws *w, const char *state, int timeout_ms, char *text, size_t cap);

/* True if the Annex B data holds a NAL unit of the given type. */
bool vt_has_nal(const uint8_t *data, size_t len, unsigned type);

int64_t vt_now_ms(void);

/* Starts argv (NULL-terminated) and, when needle is given, waits up to
 * timeout_ms for a stdout line containing it. Returns the pid or -1. The
 * process dies with the test; stop it with vt_stop(). */
pid_t vt_spawn(const char *const *argv, const char *needle, int timeout_ms);

#endif
