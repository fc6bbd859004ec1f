/* The hxfr GStreamer plugin: hxfrsrc (a scanout stream subscriber). The
 * encoder vsockenc is a plugin of its own (gstvsockencplugin.c), so that
 * it can take the place of Helix's plugin file of the same name. */
#include <gst/gst.h>

#include "gsthxfrsrc.h"
#include "hxfr-config.h"

#ifndef PACKAGE
#define PACKAGE "hxfr"
#endif

static gboolean plugin_init(GstPlugin *plugin)
{
    return gst_element_register(plugin, "hxfrsrc", GST_RANK_NONE, GST_TYPE_HXFRSRC);
}

/* GST_PLUGIN_DEFINE exports gst_plugin_hxfr_get_desc(), which must stay
 * visible although the project builds with -fvisibility=hidden. */
#pragma GCC visibility push(default)
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, hxfr,
                  "hxfr: subscription to the scanout streams of an hxfr host (hxfrsrc)",
                  plugin_init, HXFR_VERSION, "MIT", "hxfr", "https://example.invalid/hxfr")
#pragma GCC visibility pop
