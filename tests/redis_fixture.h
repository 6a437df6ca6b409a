/*
 * What the redis-streams plugin tests (tests/test_redis_streams.c,
 * tests/test_redis_commands.c) share on top of tests/fixture.h and
 * tests/redis_server.h: a blocking hiredis connection to the private
 * server, loading the plugin into a fixture's client, the Python the
 * example worker runs under, and the refused-config check.  Every failure
 * fails the test (cmocka) with a message naming the cause.
 */
#ifndef DGW_TEST_REDIS_FIXTURE_H
#define DGW_TEST_REDIS_FIXTURE_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "fixture.h"
#include "redis_server.h"

/* The plugin as built in the tree (SHIPPED_PLUGIN_DIR from Makefile.am). */
#define STREAMS_PLUGIN                                                         \
  SHIPPED_PLUGIN_DIR "/redis-streams/.libs/redis-streams.so"

/* A blocking connection to `srv`'s socket; the caller redisFree()s it.
 * Fails the test when it cannot connect. */
redisContext *rfx_connect(const struct redis_server *srv);

/* The integer reply to "`command` `key`" (e.g. XLEN, PTTL) on a new
 * connection to `srv`, or `otherwise` when the reply is not an integer. */
long long rfx_integer(const struct redis_server *srv, const char *command,
                      const char *key, long long otherwise);

/* Loads the redis-streams plugin with the JSON `config` into f's client
 * (fx_client_new done, fx_start not yet); fails the test with the
 * plugin's reason when it is refused. */
void rfx_load_streams(struct fx *f, const char *config);

/* The Python for plugins/redis-streams/worker.py: $DGW_TEST_PYTHON, else
 * /usr/bin/python3.  Fails the test when it cannot import redis. */
const char *rfx_python(void);

/* A config the plugin must refuse, and words of the log line that says
 * why. */
struct rfx_refusal {
  const char *config, *says;
};

/* For each of the `n` configs of `bad`: loading the plugin with it into a
 * fresh client is refused, with a log line containing its `says`. */
void rfx_expect_refused(const struct rfx_refusal *bad, size_t n);

#endif
