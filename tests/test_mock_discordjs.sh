#!/bin/sh
# Interop: an unmodified discord.js 14 bot (tests/interop/discordjs_bot.js,
# only its REST base points at the mock; the gateway URL comes from GET
# /gateway/bot) against `dgw mock`: ready with the mock's guild, an
# injected message reaches messageCreate, its channel.send reply is created
# and comes back as MESSAGE_CREATE, an injected slash command is answered
# through the interaction callback.  A missing node or discord.js fails
# the test (`make interop-deps` installs discord.js).  discord.js is looked
# for in DGW_INTEROP_NODE_MODULES (make check sets it to the source tree's
# tests/interop/node/node_modules, also for make distcheck's copy).
. "$(dirname "$0")/interop/interop.sh"

node=${DGW_INTEROP_NODE:-node}
modules=${DGW_INTEROP_NODE_MODULES:-$here/node/node_modules}
command -v "$node" > /dev/null 2>&1 ||
  bail "node is missing: apt-get install nodejs npm"
NODE_PATH=$modules "$node" -e 'process.exit(require("discord.js").version.startsWith("14.") ? 0 : 1)' 2> "$tmp/js.err" ||
  bail "discord.js 14 is not in $modules: run 'make interop-deps' (npm install --prefix tests/interop/node discord.js@14) ($(grep -m 1 -E 'Error|Cannot' "$tmp/js.err"))"

interop_run discord.js env NODE_PATH="$modules" "$node" "$here/discordjs_bot.js"
