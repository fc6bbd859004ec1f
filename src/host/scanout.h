/* Scanout streams (push mode), private to libhxfr-host.
 *
 * The life of a scanout, in one place (docs/protocol.md section 11 is the
 * wire view; Helix's model, DESIGN.md "Who publishes"):
 *
 * - ENABLE_SCANOUT N creates scanout N (connector "Virtual-<N+1>", the
 *   guest kernel's name) and makes the sender its publisher. ENABLE of an
 *   existing N by its publisher records a new mode; by anyone while N has
 *   no publisher, makes the sender its publisher; by another connection
 *   while N has one, is refused (success 0: it could not publish).
 * - The scanout outlives every connection: when its publisher goes away
 *   it stays enabled without one, and its subscribers keep getting
 *   keepalives of the last picture.
 * - It ends on DISABLE_SCANOUT N from any connection (answered
 *   SCANOUT_RESP success 1), or after scanout_timeout_ms with neither
 *   publisher nor subscribers; subscribers then get ERROR NO_SCANOUT.
 * - A subscriber's CONFIG_REQ (on session N, or on any session when the
 *   connection publishes nothing and has no session of that id: Helix's
 *   subscriber sends 0) asks for a bitrate; the lowest a current
 *   subscriber asks for (at least HXFR_HOST_SUBSCRIBER_MIN_BITRATE) caps
 *   the publisher's setting.
 * An embedder that publishes without a connection (a VMM: hxfr-gpu) is
 * one more kind of publisher over these same rules: a VMM scanout
 * (hxfr__scanout_vmm_*) has no publishing connection and never times out
 * alone, no peer can take it over, and with the embedder's enable and
 * disable callbacks (struct hxfr_host_scanout_ops) a peer's
 * ENABLE/DISABLE_SCANOUT is a command to the VMM's display. Its frames
 * are the embedder's pixels (source-gpu.c), never kept: a keepalive asks
 * the embedder for the current picture.
 *
 * A scanout's frames are encoded by one session: the publisher's session
 * whose id is the scanout id, so a FRAME_REQUEST with session_id = N goes
 * through the normal frame path (inline, resolver or shm source, window,
 * pool) and only delivery differs: the finished access unit is fanned out
 * to every subscriber (one reference-counted buffer shared by all output
 * queues) and then given to the publisher as its FRAME_RESPONSE. Without
 * a publisher the session has no client (hxfr__session_disown) and the
 * scanout owns it; a new publisher adopts it (hxfr__session_adopt), so the
 * encoder and the kept picture carry over.
 *
 * The last published picture is kept (struct hxfr__keep, owned by the
 * session; source-keep.c) so the loop can re-encode it for keepalive and
 * for a new subscriber that needs an IDR while the publisher is idle.
 *
 * Threads: everything here runs on the loop thread.
 */
#ifndef HXFR_HOST_SCANOUT_H
#define HXFR_HOST_SCANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host-private.h"

#define HXFR_HOST_KEEPALIVE_DEFAULT_MS    500u
#define HXFR_HOST_MAX_SCANOUTS_DEFAULT    16u
#define HXFR_HOST_MAX_SUBSCRIBERS_DEFAULT 32u
/* Messages queued for a subscriber before its access units are dropped. */
#define HXFR_HOST_SUBSCRIBER_QUEUE_DEFAULT 8u
/* ... and bytes, whichever bound is hit first. */
#define HXFR_HOST_SUBSCRIBER_BYTES (16u * 1024u * 1024u)
/* IDRs that subscribers ask for (joining, KEYFRAME_REQ) are made at most
 * this often per scanout; a request that comes sooner waits for it. */
#define HXFR_HOST_IDR_MIN_INTERVAL_NS (100u * 1000000u)
/* A scanout with neither publisher nor subscribers ends after this. */
#define HXFR_HOST_SCANOUT_TIMEOUT_DEFAULT_MS 60000u
/* The lowest bitrate a subscriber's CONFIG_REQ can ask for (bit/s). */
#define HXFR_HOST_SUBSCRIBER_MIN_BITRATE 100000u

/* Server-wide scanout state (host->scanouts). */
int hxfr__scanouts_init(struct hxfr_host *h);
void hxfr__scanouts_finish(struct hxfr_host *h);
void hxfr__scanouts_on_timer(struct hxfr_host *h);
/* The server starts stopping: no more keepalive frames. */
void hxfr__scanouts_stop(struct hxfr_host *h);
void hxfr__scanouts_stats(struct hxfr_host *h, struct hxfr_host_stats *out);

/* Requests (request.c). */
void hxfr__scanout_handle_enable(struct hxfr__client *c, const struct hxfr_msg *m);
void hxfr__scanout_handle_disable(struct hxfr__client *c, const struct hxfr_msg *m);
void hxfr__scanout_handle_subscribe(struct hxfr__client *c, const struct hxfr_msg *m);
/* KEYFRAME_REQ with session_id sid from a subscriber of scanout sid:
 * returns true if it was taken as a subscriber's request. */
bool hxfr__scanout_keyframe_req(struct hxfr__client *c, uint16_t sid);
/* CONFIG_REQ with session_id sid and bitrate: if it is a subscriber's (see
 * the rules above), records the bitrate for the scanout, writes the
 * scanout's size to *width and *height and returns its session (for the
 * answer's effective settings); NULL: not a subscriber's request. */
const struct hxfr__session *hxfr__scanout_config_req(struct hxfr__client *c, uint16_t sid,
                                                     uint32_t bitrate, uint32_t *width,
                                                     uint32_t *height);
/* Scanouts the embedder publishes (host.c's hxfr_host_scanout_enable,
 * _disable, _publish: the contracts are in include/hxfr/host.h). */
int hxfr__scanout_vmm_enable(struct hxfr_host *h, uint32_t id, uint32_t width, uint32_t height,
                             const char *connector);
int hxfr__scanout_vmm_disable(struct hxfr_host *h, uint32_t id);
int hxfr__scanout_vmm_publish(struct hxfr_host *h, uint32_t id, const struct hxfr_host_frame *fr);

/* The client is going away: its subscriptions are removed and the scanouts
 * it publishes go on without a publisher (their sessions leave the
 * client). Called before its sessions are detached. */
void hxfr__scanout_client_closed(struct hxfr__client *c);

#endif
