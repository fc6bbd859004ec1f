/* Internal to libhxfr: the per-type rules the header validator, the codec
 * and the parser share. */
#ifndef HXFR_PROTO_PRIVATE_H
#define HXFR_PROTO_PRIVATE_H

#include <stdint.h>

#include <hxfr/proto.h>

/* How a message type may carry bytes beyond its fixed part. */
enum hxfr__body_rule {
    HXFR__BODY_NONE = 0, /* payload_size is exactly the fixed size */
    HXFR__BODY_ANY,      /* zero or more body bytes (FRAME_RESPONSE units) */
    HXFR__BODY_IF_FLAG,  /* a non-empty body iff body_flag is set, none otherwise */
};

/* One row of the message table (message.c). Extensions add a row; nothing
 * else in the library needs to learn about a new type. */
struct hxfr__msg_info {
    uint8_t type;
    const char *name;
    uint16_t fixed_size;
    uint8_t flags;     /* header flag bits this type defines */
    uint8_t exclusive; /* of those, bits of which at most one may be set */
    uint8_t body_rule; /* enum hxfr__body_rule */
    uint8_t body_flag; /* HXFR__BODY_IF_FLAG: the flag announcing the body */
};

/* The table row for type, or NULL if the type is unknown. */
const struct hxfr__msg_info *hxfr__msg_info(uint8_t type);

/* max_body as the API defines it: 0 means the hard limit, and nothing may
 * exceed the hard limit. */
uint32_t hxfr__effective_max_body(uint32_t max_body);

#endif
