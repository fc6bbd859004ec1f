/* hxfr: common definitions shared by every hxfr library.
 *
 * Error convention: functions returning int give >= 0 on success and a
 * negative value on failure: either -errno (for example -ENOMEM, -EAGAIN)
 * or a negated hxfr-specific code from enum hxfr_errno below. Functions
 * returning a pointer give NULL and set errno. Wire status codes (what an
 * ERROR message carries) are a separate enum, enum hxfr_status in proto.h.
 */
#ifndef HXFR_HXFR_H
#define HXFR_HXFR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define HXFR_EXPORT __attribute__((visibility("default")))
#else
#define HXFR_EXPORT
#endif

/* hxfr-specific local error codes, returned negated (-HXFR_EMAGIC). They
 * start above every errno value Linux or macOS defines. */
enum hxfr_errno {
    HXFR_EBASE = 4096,
    HXFR_EMAGIC = HXFR_EBASE, /* header magic is not "HXFR" */
    HXFR_ETYPE,               /* unknown message type */
    HXFR_EFLAGS,              /* flag bits the message type does not define */
    HXFR_ESHORT,              /* payload shorter than the type's fixed part */
    HXFR_ELONG,               /* payload longer than the type allows */
    HXFR_ETOOBIG,             /* payload above the configured maximum */
    HXFR_EPARSER,             /* parser already failed; reset it or close */
    HXFR_EFORMAT,             /* unknown or unsupported pixel format */
    HXFR_EZERO,               /* width, height or stride is zero */
    HXFR_EODD,                /* odd width/height/stride for a 4:2:0 format */
    HXFR_ESTRIDE,             /* stride smaller than the row size */
    HXFR_EDIMS,               /* width or height above the limit */
    HXFR_EOVERFLOW,           /* size arithmetic overflows */
    HXFR_EPIXELS,             /* inline pixel byte count does not match */
    HXFR_EUNITS,              /* malformed FRAME_RESPONSE unit list */
    HXFR_EREMOTE,             /* the peer answered with an ERROR message */
    HXFR_ELAST
};

/* A static, human-readable description of err. Accepts -errno, errno,
 * -HXFR_E* and HXFR_E*. Never returns NULL; thread-safe. */
HXFR_EXPORT const char *hxfr_strerror(int err);

/* The library version string, e.g. "0.1.0". */
HXFR_EXPORT const char *hxfr_version(void);

#ifdef __cplusplus
}
#endif

#endif
