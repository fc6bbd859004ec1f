/* The vsockenc plugin: hxfr's host-side H.264 encoder element, as a
 * replacement for Helix's vsockenc plugin.
 *
 * Which element a pipeline gets when both are installed: GStreamer keeps
 * one plugin per file name (the first found while scanning
 * GST_PLUGIN_PATH, then ~/.local/share/gstreamer-1.0/plugins, then the
 * system folder; even gst_plugin_load_file() will not load a second file
 * of that name) and one element per name (the last registered). This
 * plugin's file has the name of Helix's, libgstvsockenc.so, so installed
 * in its place or in a folder scanned before Helix's it is the only
 * libgstvsockenc.so loaded and "vsockenc" is ours, whatever the order of
 * files inside a folder. Its GType has a name of its own
 * (GstHxfrVsockEnc), so a process that registers both anyway (a static
 * build, or the plugins' entry points called directly) gets both types
 * without a clash, and the name goes to the last registered. The rank is
 * Helix's, PRIMARY, so autopluggers that picked Helix's element pick this
 * one. docs/gstreamer.md and docs/helix.md say the same for users. */
#include <gst/gst.h>

#include "gstvsockenc.h"
#include "hxfr-config.h"

#ifndef PACKAGE
#define PACKAGE "hxfr"
#endif

static gboolean plugin_init(GstPlugin *plugin)
{
    return gst_element_register(plugin, "vsockenc", GST_RANK_PRIMARY, GST_TYPE_HXFR_VSOCKENC);
}

/* GST_PLUGIN_DEFINE exports gst_plugin_vsockenc_get_desc(), the symbol
 * GStreamer looks up for a file named libgstvsockenc.so; it must stay
 * visible although the project builds with -fvisibility=hidden. */
#pragma GCC visibility push(default)
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, vsockenc,
                  "hxfr's vsockenc: H.264 encoding on the hxfr host for guest pipelines, a "
                  "drop-in for Helix's vsockenc plugin",
                  plugin_init, HXFR_VERSION, "MIT", "hxfr", "https://example.invalid/hxfr")
#pragma GCC visibility pop
