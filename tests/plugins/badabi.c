/*
 * A plugin built for a future plugin ABI: the host must refuse it before
 * reading anything past the ABI number and size.
 */
#include <dgw/plugin.h>

static const struct dgw_plugin descriptor = {
    .abi = DGW_PLUGIN_ABI + 1,
    .size = sizeof(struct dgw_plugin),
    .name = "badabi",
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &descriptor;
}
