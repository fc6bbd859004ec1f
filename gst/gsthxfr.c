/* The hxfr GStreamer plugin: vsockenc (host-side H.264 encoding for a
 * guest pipeline) and hxfrsrc (a scanout stream subscriber). */
#include <gst/gst.h>

#include "gsthxfrsrc.h"
#include "gstvsockenc.h"
#include "hxfr-config.h"

#ifndef PACKAGE
#define PACKAGE "hxfr"
#endif

static gboolean plugin_init(GstPlugin *plugin)
{
    gboolean ok = gst_element_register(plugin, "vsockenc", GST_RANK_NONE, GST_TYPE_VSOCKENC);
    ok = ok && gst_element_register(plugin, "hxfrsrc", GST_RANK_NONE, GST_TYPE_HXFRSRC);
    return ok;
}

/* GST_PLUGIN_DEFINE exports gst_plugin_hxfr_get_desc(), which must stay
 * visible although the project builds with -fvisibility=hidden. */
#pragma GCC visibility push(default)
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, hxfr,
                  "hxfr: H.264 encoding on the host for guests (vsockenc) and scanout "
                  "stream subscription (hxfrsrc)",
                  plugin_init, HXFR_VERSION, "MIT", "hxfr", "https://example.invalid/hxfr")
#pragma GCC visibility pop
