"""A plain discord.py 2.x bot, pointed at `dgw mock` by its base and
gateway URLs only (the two assignments under "Point discord.py at the
mock"); everything else is what a bot author writes for Discord.

Prints one JSON line per thing it sees on stdout, which
tests/interop/test_discordpy.sh reads.  Environment: MOCK_URL
(http://HOST:PORT), MOCK_TOKEN.
"""
import json
import os
import sys

import discord
import yarl
from discord import app_commands

base = os.environ["MOCK_URL"]

# Point discord.py at the mock: its REST base, and the gateway it dials
# first (discord.py 2.2 does not ask GET /gateway for it; resumes use
# READY's resume_gateway_url, the mock's own ws:// URL).
discord.http.Route.BASE = base + "/api/v10"
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
    base.replace("http", "ws", 1) + "/")


def say(**kw):
    print(json.dumps(kw), flush=True)


intents = discord.Intents.default()
intents.message_content = True


class Bot(discord.Client):
    def __init__(self):
        super().__init__(intents=intents)
        self.tree = app_commands.CommandTree(self)

    async def setup_hook(self):
        synced = await self.tree.sync()
        say(event="synced", commands=[c.name for c in synced])


bot = Bot()


@bot.tree.command(name="ping", description="Answers pong")
async def ping(interaction: discord.Interaction):
    say(event="interaction", name=interaction.command.name,
        guild=str(interaction.guild_id), user=interaction.user.name)
    await interaction.response.send_message("pong from discord.py")


@bot.tree.command(name="slow", description="Thinks, then answers")
async def slow(interaction: discord.Interaction):
    await interaction.response.defer(thinking=True)
    await interaction.edit_original_response(content="edited from discord.py")
    await interaction.followup.send("follow-up from discord.py")
    say(event="slow_done")


@bot.event
async def on_ready():
    say(event="ready", user=bot.user.name, user_id=str(bot.user.id),
        guilds=[str(g.id) for g in bot.guilds],
        channels=[c.name for g in bot.guilds for c in g.text_channels])


@bot.event
async def on_message(message: discord.Message):
    say(event="message", content=message.content,
        author=str(message.author.id), mine=message.author == bot.user,
        guild=str(message.guild.id) if message.guild else None,
        channel=getattr(message.channel, "name", None))
    if message.author != bot.user and message.content == "hello bot":
        sent = await message.channel.send("hello human")
        say(event="sent", id=str(sent.id), content=sent.content)


try:
    bot.run(os.environ["MOCK_TOKEN"], log_handler=None)
except discord.LoginFailure as e:
    say(event="login_failure", error=str(e))
    sys.exit(3)
