/*
 * The Redis connection: one hiredis async context on the caller's event
 * base (hiredis's libevent adapter, no threads), with AUTH and SELECT done
 * before it reports "up", its own connect and command timeouts, and
 * reconnection with exponential backoff and jitter.  Internal to dgw;
 * built only when configure found hiredis (HAVE_HIREDIS).  See
 * docs/redis.md.
 *
 * The promise every caller builds on: a command accepted by
 * redis_command_argv() (it returned 0) gets its callback called exactly
 * once: with Redis's reply, or with reply NULL and a cause when the
 * connection dropped, a command timed out, or the handle was freed.  A
 * command refused (-1) never calls back.
 */
#ifndef DGW_REDIS_H
#define DGW_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include <dgw/dgw.h>

/* Where Redis is and how to log in, as redis_url_parse() reads it. */
struct redis_addr {
  int is_unix;        /* 1: `path` is a unix socket; 0: host and port */
  char host[256];     /* without the brackets of an IPv6 literal */
  int port;           /* 6379 unless given */
  char path[108];     /* the unix socket (sun_path's size) */
  char user[128];     /* ACL user; "" means the default user */
  char password[256]; /* "" means no AUTH */
  int db;             /* SELECTed when not 0 */
};

/*
 * Parses `url`:
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]   (HOST may be [IPv6])
 *   unix:///PATH[?db=N][&password=P][&user=U]
 * USER and PASSWORD may be percent-encoded.  Returns 0 and fills `out`, or
 * -1 with a sentence in `why` naming what is wrong (rediss:// is refused:
 * no TLS to Redis yet).
 */
int redis_url_parse(const char *url, struct redis_addr *out, char *why,
                    size_t why_len);

/* Writes `a` as a URL without its password (for logs and status):
 * "redis://user@host:port/db" or "unix:///path?db=N".  Always
 * NUL-terminated. */
void redis_addr_describe(const struct redis_addr *a, char *buf, size_t len);

struct dgw_redis;

/* Connection state changes, called from the loop.  on_up: connected,
 * authenticated and on the right database; commands may go.  on_down: the
 * connection that was up is gone (`cause` says why); every pending
 * command has already had its error callback; the handle reconnects by
 * itself.  Either may be NULL; both may call redis_free(). */
struct redis_callbacks {
  void (*on_up)(struct dgw_redis *r, void *user_data);
  void (*on_down)(struct dgw_redis *r, const char *cause, void *user_data);
};

/*
 * A handle for `url` on `base`; starts connecting at once (from the loop,
 * never calling back inside redis_new).  `cb` is copied and may be NULL.
 * `log` may be NULL: warn lines say when Redis cannot be reached (the
 * first failure, then at most one every 10 s, naming the URL without its
 * password and the cause) and info lines when it is up again.  Returns
 * NULL with a sentence in `why` for a bad URL or without memory.
 */
struct dgw_redis *redis_new(struct event_base *base, const char *url,
                            const struct redis_callbacks *cb, void *user_data,
                            dgw_log_fn log, void *log_user_data, char *why,
                            size_t why_len);

/*
 * Timeouts in ms; 0 keeps the current value.  connect_ms (default 2000):
 * connecting plus AUTH and SELECT.  command_ms (default 5000): a command
 * without a reply for that long drops the connection (a stopped or wedged
 * server), failing every pending command.  backoff_cap_ms (default 2000):
 * the longest wait between reconnect attempts (the first is 50 ms, then
 * doubling, each with jitter down to half).
 */
void redis_set_timeouts(struct dgw_redis *r, uint32_t connect_ms,
                        uint32_t command_ms, uint32_t backoff_cap_ms);

/* 1 when connected, authenticated and SELECTed; 0 otherwise. */
int redis_is_up(const struct dgw_redis *r);

/* Connect attempts failed since the handle was last up (0 while up), and
 * the last failure's cause ("" when none): for status output and tests. */
uint64_t redis_failures(const struct dgw_redis *r);
const char *redis_last_error(const struct dgw_redis *r);

/* The URL without the password (redis_addr_describe's form). */
const char *redis_describe(const struct dgw_redis *r);

/*
 * A command's outcome.  `reply` is Redis's answer (owned by hiredis, valid
 * during the call only) or NULL when the command failed without one.
 * `err` is NULL on success; otherwise a sentence: the error reply's text
 * (reply->type == REDIS_REPLY_ERROR), or why there is no reply ("connection
 * lost: ...", "no reply within N ms", "the Redis handle was freed").  May
 * call redis_free() and issue new commands.
 */
typedef void (*redis_reply_fn)(struct dgw_redis *r, redisReply *reply,
                               const char *err, void *user_data);

/*
 * Sends a command given as `argc` arguments (`argvlen` may be NULL for
 * NUL-terminated strings; arguments are copied).  Returns 0: `fn` (may be
 * NULL) will be called exactly once, from the loop, never inside this
 * call.  Returns -1 when Redis is not up or without memory: no callback.
 */
int redis_command_argv(struct dgw_redis *r, redis_reply_fn fn, void *user_data,
                       int argc, const char **argv, const size_t *argvlen);

/* The same with a printf-like format, as hiredis's redisvFormatCommand
 * reads it (%s, %b with a length, %d, ...). */
int redis_command(struct dgw_redis *r, redis_reply_fn fn, void *user_data,
                  const char *fmt, ...);

/* The same with the command already in RESP (`len` bytes: an array of
 * bulk strings, as hiredis's redisFormatCommandArgv writes it); hiredis
 * copies it into its output buffer once. */
int redis_command_formatted(struct dgw_redis *r, redis_reply_fn fn,
                            void *user_data, const char *cmd, size_t len);

/* A Lua script run by redis_eval(); define with REDIS_SCRIPT("...") so its
 * SHA-1 is computed once, on first use. */
struct redis_script {
  const char *body;
  char sha1[41];
};
#define REDIS_SCRIPT(body)                                                     \
  {                                                                            \
    (body), {                                                                  \
      0                                                                        \
    }                                                                          \
  }

/*
 * Runs `s` with EVALSHA on `nkeys` keys followed by the other arguments
 * (argv[0..nkeys-1] are the keys; argc counts all); when Redis answers
 * NOSCRIPT (it restarted or SCRIPT FLUSH ran) the same call is sent again
 * as EVAL, transparently.  Same return and callback contract as
 * redis_command_argv().
 */
int redis_eval(struct dgw_redis *r, struct redis_script *s, int nkeys, int argc,
               const char **argv, const size_t *argvlen, redis_reply_fn fn,
               void *user_data);

/* Closes the connection and frees the handle; every pending command's
 * callback is called, err "the Redis handle was freed", before this
 * returns, or, when called inside one of the handle's callbacks, once
 * that callback returns.  on_down is not called.  NULL is fine. */
void redis_free(struct dgw_redis *r);

#endif /* DGW_REDIS_H */
