/* Helpers shared by the hxfr GStreamer elements: format mapping, SPS
 * parsing for caps, address parsing. Internal to the plugin. */
#ifndef GST_HXFR_UTIL_H
#define GST_HXFR_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

/* The first bytes of an H.264 sequence parameter set. */
struct hxfr_sps_info {
    gint profile_idc;
    gint constraint_flags; /* constraint_set0..5 flags byte */
    gint level_idc;
};

/* The DRM fourcc (enum hxfr_format) for a GStreamer video format, or 0. */
guint32 gst_hxfr_format_from_video(GstVideoFormat format);

/* Finds the first SPS NAL unit in an Annex B buffer and reads profile,
 * constraint flags and level. Returns FALSE if there is none (or it is
 * truncated). */
gboolean gst_hxfr_find_sps(const guint8 *data, gsize size, struct hxfr_sps_info *out);

/* The caps "profile" string for an SPS ("constrained-baseline", "main",
 * "high", ...), or NULL for a profile_idc caps have no name for. */
const gchar *gst_hxfr_profile_name(const struct hxfr_sps_info *sps);

/* The caps "level" string ("1b", "3", "3.1", "4.2", ...) into buf.
 * Returns FALSE for a level_idc that is no H.264 level. */
gboolean gst_hxfr_level_name(const struct hxfr_sps_info *sps, gchar *buf, gsize len);

/* TRUE if the client connects to address over a UNIX socket: "unix:PATH",
 * or a bare path (a '/' before any "scheme:"), as libhxfr-client reads it.
 * Only such a connection can pass a memfd (shared-memory frames). */
gboolean gst_hxfr_address_is_unix(const gchar *address);

G_END_DECLS

#endif
