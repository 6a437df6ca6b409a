/*
 * A plugin whose descriptor is smaller than the host needs (as if built
 * against an older, shorter struct dgw_plugin): the host must refuse it
 * rather than read past its end.
 */
#include <stddef.h>

#include <dgw/plugin.h>

static const struct dgw_plugin descriptor = {
    .abi = DGW_PLUGIN_ABI,
    .size = (uint32_t)offsetof(struct dgw_plugin, on_dispatch),
    .name = "small",
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &descriptor;
}
