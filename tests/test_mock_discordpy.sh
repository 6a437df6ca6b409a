#!/bin/sh
# Interop: an unmodified discord.py 2.x bot (Debian's python3-discord;
# tests/interop/discordpy_bot.py, only its base and gateway URLs point at
# the mock) against `dgw mock`: ready with the mock's guild, an injected
# message reaches on_message, its channel.send reply is created and comes
# back as MESSAGE_CREATE, an injected slash command is answered through
# the interaction callback.  A missing python3-discord fails the test.
. "$(dirname "$0")/interop/interop.sh"

python=${DGW_INTEROP_PYTHON:-/usr/bin/python3}
[ -x "$python" ] ||
  bail "$python is missing: apt-get install python3 python3-discord"
"$python" -c 'import discord, sys; sys.exit(0 if discord.version_info.major == 2 else 1)' 2> "$tmp/py.err" ||
  bail "discord.py 2.x is not importable by $python: apt-get install python3-discord ($(tail -n 1 "$tmp/py.err"))"

interop_run discord.py "$python" "$here/discordpy_bot.py"
