"""discord.py 2.x against an injected 429 of `dgw mock`: logs in over
REST only (no gateway) and sends one message with channel.send, which
gets the 429 the test injected; discord.py waits retry_after and retries
by itself.  Prints {"sent": content} once the message is created, and
exits 0; 1 on any error.  Environment: MOCK_URL (http://HOST:PORT),
MOCK_TOKEN.  tests/test_mock_ratelimit.sh runs it.
"""
import asyncio
import json
import os
import sys

import discord

discord.http.Route.BASE = os.environ["MOCK_URL"] + "/api/v10"


async def main():
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(os.environ["MOCK_TOKEN"])
        channel = client.get_partial_messageable(1200000000000000011)
        msg = await asyncio.wait_for(channel.send("after 429"), 30)
        print(json.dumps({"sent": msg.content}), flush=True)
    finally:
        await client.close()


try:
    asyncio.run(main())
except Exception as e:  # noqa: BLE001 - the test shows it
    print(json.dumps({"error": repr(e)}), flush=True)
    sys.exit(1)
