/* What a worker does with one frame: open (or reopen) the session's
 * encoder when the frame's size, format or settings differ from what it
 * was opened for, encode, and package the access unit as the complete
 * FRAME_RESPONSE message. */
#ifndef HXFR_HOST_ENCODE_H
#define HXFR_HOST_ENCODE_H

#include <stdint.h>

#include "frame.h"

/* A session's encoder and what it was opened for. Touched only by the
 * worker that runs a frame of the session (one at a time), and freed by
 * the loop once no frame of the session is at a worker. */
struct hxfr__encoding {
    struct hxfr_encoder *enc;
    uint32_t gen; /* cfg_gen of the settings it was opened with */
    uint32_t width, height, format;
};

/* Worker thread. Encodes f with f->encoding: fills f->status, f->errmsg,
 * f->out, f->keyframe, f->au_bytes, f->codec and f->encode_ns. */
void hxfr__frame_encode(struct hxfr__frame *f);
/* Closes the encoder. */
void hxfr__encoding_finish(struct hxfr__encoding *e);

#endif
