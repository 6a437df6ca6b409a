// A plain discord.js 14 bot, pointed at `dgw mock` by its REST base only
// (`rest: { api }` below); the gateway URL comes from GET /gateway/bot, as
// on Discord.  Everything else is what a bot author writes for Discord.
//
// Prints one JSON line per thing it sees on stdout, which
// tests/interop/test_discordjs.sh reads.  Environment: MOCK_URL
// (http://HOST:PORT), MOCK_TOKEN.
'use strict';
const { Client, Events, GatewayIntentBits } = require('discord.js');

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const client = new Client({
  intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages,
            GatewayIntentBits.MessageContent],
  rest: { api: process.env.MOCK_URL + '/api' }, // point discord.js at the mock
});

client.once(Events.ClientReady, async (c) => {
  const synced = await c.application.commands.set(
      [{ name: 'ping', description: 'Answers pong' },
       { name: 'slow', description: 'Thinks, then answers' }]);
  say({ event: 'synced', commands: synced.map((x) => x.name) });
  say({ event: 'ready', user: c.user.username, user_id: c.user.id,
        guilds: c.guilds.cache.map((g) => g.id),
        channels: c.channels.cache.map((ch) => ch.name) });
});

client.on(Events.MessageCreate, async (message) => {
  say({ event: 'message', content: message.content, author: message.author.id,
        mine: message.author.id === client.user.id,
        guild: message.guildId, channel: message.channel.name });
  if (message.author.id !== client.user.id && message.content === 'hello bot') {
    const sent = await message.channel.send('hello human');
    say({ event: 'sent', id: sent.id, content: sent.content });
  }
});

client.on(Events.InteractionCreate, async (interaction) => {
  if (!interaction.isChatInputCommand()) return;
  say({ event: 'interaction', name: interaction.commandName,
        guild: interaction.guildId, user: interaction.user.username });
  if (interaction.commandName === 'ping') {
    await interaction.reply('pong from discord.js');
  } else if (interaction.commandName === 'slow') {
    await interaction.deferReply();
    await interaction.editReply('edited from discord.js');
    await interaction.followUp('follow-up from discord.js');
    say({ event: 'slow_done' });
  }
});

client.on(Events.Error, (e) => say({ event: 'error', error: String(e) }));

client.login(process.env.MOCK_TOKEN).catch((e) => {
  say({ event: 'login_failure', error: String(e) });
  process.exit(3);
});
