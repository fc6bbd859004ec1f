/* FRAME_REQUEST: which frame source the request names (inline pixels, a
 * shared-memory slot, or a resource the embedder resolves), its checks
 * against the server's limits, and the hand-over to the session's queue.
 * Loop thread only. */
#ifndef HXFR_HOST_REQUEST_FRAME_H
#define HXFR_HOST_REQUEST_FRAME_H

#include <stdint.h>

#include "host-private.h"

/* Handles one FRAME_REQUEST of c. With inline pixels it leaves the client
 * reading the body into the frame (c->body_mode, c->body_frame); every
 * refusal is answered ERROR in the session's answer order. */
void hxfr__request_frame(struct hxfr__client *c, const struct hxfr_msg *m, uint32_t body_size);

#endif
