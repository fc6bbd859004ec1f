/* Error strings and the library version. */
#include <string.h>

#include <hxfr/hxfr.h>

#include "hxfr-config.h"

static const char *const hxfr_messages[HXFR_ELAST - HXFR_EBASE] = {
    [HXFR_EMAGIC - HXFR_EBASE] = "bad message magic (not HXFR)",
    [HXFR_ETYPE - HXFR_EBASE] = "unknown message type",
    [HXFR_EFLAGS - HXFR_EBASE] = "flags not defined for this message type",
    [HXFR_ESHORT - HXFR_EBASE] = "payload shorter than the message requires",
    [HXFR_ELONG - HXFR_EBASE] = "payload longer than the message allows",
    [HXFR_ETOOBIG - HXFR_EBASE] = "payload above the configured maximum",
    [HXFR_EPARSER - HXFR_EBASE] = "protocol parser already failed",
    [HXFR_EFORMAT - HXFR_EBASE] = "unknown or unsupported pixel format",
    [HXFR_EZERO - HXFR_EBASE] = "width, height or stride is zero",
    [HXFR_EODD - HXFR_EBASE] = "odd width, height or stride for a 4:2:0 format",
    [HXFR_ESTRIDE - HXFR_EBASE] = "stride smaller than the row size",
    [HXFR_EDIMS - HXFR_EBASE] = "width or height above the limit",
    [HXFR_EOVERFLOW - HXFR_EBASE] = "frame size arithmetic overflows",
    [HXFR_EPIXELS - HXFR_EBASE] = "inline pixel byte count does not match the frame",
    [HXFR_EUNITS - HXFR_EBASE] = "malformed FRAME_RESPONSE unit list",
    [HXFR_EREMOTE - HXFR_EBASE] = "the peer answered with an error",
};

HXFR_EXPORT const char *hxfr_strerror(int err)
{
    /* Negate through a wider type so INT_MIN does not overflow. */
    long long e = err < 0 ? -(long long)err : err;
    if (e == 0) {
        return "success";
    }
    if (e >= HXFR_EBASE && e < HXFR_ELAST) {
        return hxfr_messages[e - HXFR_EBASE];
    }
    if (e < HXFR_EBASE) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
        /* strerror() may write a shared buffer for unknown values;
         * strerrordesc_np() only returns static strings. */
        const char *s = strerrordesc_np((int)e);
        if (s) {
            return s;
        }
#else
        /* Elsewhere strerror() returns static strings for known values. */
        return strerror((int)e);
#endif
    }
    return "unknown error";
}

HXFR_EXPORT const char *hxfr_version(void)
{
    return HXFR_VERSION;
}
