/* Scanout streams (push mode), private to libhxfr-host.
 *
 * A scanout is owned by the client that enabled it (the publisher). Its
 * frames are encoded by one session of that client: the session whose id
 * is the scanout id, so a FRAME_REQUEST with session_id = N goes through
 * the normal frame path (inline, resolver or shm source, window, pool) and
 * only delivery differs: the finished access unit is fanned out to every
 * subscriber (one reference-counted buffer shared by all output queues)
 * and then given to the publisher as its FRAME_RESPONSE.
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
/* The client is going away: its subscriptions are removed and the scanouts
 * it publishes end (subscribers are told). Called before its sessions are
 * detached. */
void hxfr__scanout_client_closed(struct hxfr__client *c);

#endif
