/* Helpers shared by vsockenc and hxfrsrc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hxfr/proto.h>

#include "gsthxfrutil.h"

guint32 gst_hxfr_format_from_video(GstVideoFormat format)
{
    switch (format) {
    case GST_VIDEO_FORMAT_BGRA:
        return HXFR_FORMAT_ARGB8888;
    case GST_VIDEO_FORMAT_BGRx:
        return HXFR_FORMAT_XRGB8888;
    case GST_VIDEO_FORMAT_RGBA:
        return HXFR_FORMAT_ABGR8888;
    case GST_VIDEO_FORMAT_RGBx:
        return HXFR_FORMAT_XBGR8888;
    case GST_VIDEO_FORMAT_NV12:
        return HXFR_FORMAT_NV12;
    case GST_VIDEO_FORMAT_I420:
        return HXFR_FORMAT_I420;
    default:
        return 0;
    }
}

gboolean gst_hxfr_find_sps(const guint8 *data, gsize size, struct hxfr_sps_info *out)
{
    /* The three bytes after an SPS header are profile_idc, the constraint
     * flags and level_idc (no emulation prevention can occur in them:
     * profile_idc is never 0 and a 00 00 03 sequence needs two zero bytes
     * first). */
    size_t sc;
    for (size_t at = hxfr_annexb_next(data, size, 0, &sc); at + sc < size;
         at = hxfr_annexb_next(data, size, at + sc, &sc)) {
        gsize h = at + sc;
        if ((data[h] & 0x1f) != 7) {
            continue;
        }
        if (h + 3 >= size) {
            return FALSE;
        }
        out->profile_idc = data[h + 1];
        out->constraint_flags = data[h + 2];
        out->level_idc = data[h + 3];
        return TRUE;
    }
    return FALSE;
}

const gchar *gst_hxfr_profile_name(const struct hxfr_sps_info *sps)
{
    gboolean set1 = (sps->constraint_flags & 0x40) != 0;
    gboolean set4 = (sps->constraint_flags & 0x08) != 0;
    gboolean set5 = (sps->constraint_flags & 0x04) != 0;
    switch (sps->profile_idc) {
    case 66:
        return set1 ? "constrained-baseline" : "baseline";
    case 77:
        return "main";
    case 88:
        return "extended";
    case 100:
        return set4 && set5 ? "constrained-high" : set4 ? "progressive-high" : "high";
    case 110:
        return "high-10";
    case 122:
        return "high-4:2:2";
    case 244:
        return "high-4:4:4";
    case 44:
        return "cavlc-4:4:4-intra";
    default:
        return NULL;
    }
}

gboolean gst_hxfr_level_name(const struct hxfr_sps_info *sps, gchar *buf, gsize len)
{
    static const gint levels[] = {9,  10, 11, 12, 13, 20, 21, 22, 30, 31,
                                  32, 40, 41, 42, 50, 51, 52, 60, 61, 62};
    gint l = sps->level_idc;
    gboolean known = FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(levels); i++) {
        known = known || levels[i] == l;
    }
    if (!known) {
        return FALSE;
    }
    /* Level 1b: level_idc 9, or 11 with constraint_set3 in the baseline,
     * main and extended profiles. */
    gboolean set3 = (sps->constraint_flags & 0x10) != 0;
    if (l == 9 || (l == 11 && set3 &&
                   (sps->profile_idc == 66 || sps->profile_idc == 77 || sps->profile_idc == 88))) {
        g_strlcpy(buf, "1b", len);
    } else if (l % 10 == 0) {
        g_snprintf(buf, len, "%d", l / 10);
    } else {
        g_snprintf(buf, len, "%d.%d", l / 10, l % 10);
    }
    return TRUE;
}

gboolean gst_hxfr_address_is_unix(const gchar *address)
{
    if (!address) {
        return FALSE;
    }
    if (g_str_has_prefix(address, "unix:")) {
        return TRUE;
    }
    /* Anything shaped like "scheme:" is another transport (or unknown);
     * a bare path has its first '/' before any ':'. */
    const gchar *colon = strchr(address, ':');
    const gchar *slash = strchr(address, '/');
    return slash && (!colon || slash < colon);
}
