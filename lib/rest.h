/*
 * GET {api_url}/gateway/bot: where the gateway is, how many shards Discord
 * recommends, and the identify limits.  Internal to dgw.
 *
 * One dgw_rest is one call, retried until it has an answer worth acting
 * on: a valid 200, or a refusal that retrying cannot fix (401, the other
 * 4xx, a redirect).  Everything transient (DNS, TCP, TLS, timeouts, 5xx,
 * 429, a malformed or oversized body) is retried, each retry logged at
 * WARN with its reason; 429 waits what the server asks, the rest the
 * client's backoff.
 *
 * Each attempt resolves the host with the client's resolver, then runs
 * libevent's HTTP client over a fresh bufferevent (and SSL) for each
 * address: a TLS bufferevent cannot reconnect after a failure, so
 * evhttp's own retries stay off.
 */
#ifndef DGW_REST_H
#define DGW_REST_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include <dgw/dgw.h>

#include "url.h"

/* Largest response body read; a bigger one is refused (and retried). */
#define DGW_REST_MAX_BODY (64u * 1024u)
/* Per-attempt time limit when the client configured none. */
#define DGW_REST_DEFAULT_TIMEOUT_MS 10000u
/* Most shards an answer may recommend: one process runs them all. */
#define DGW_REST_MAX_SHARDS 65536u
/* Longest wait a 429 may ask for before it is cut to this. */
#define DGW_REST_MAX_RETRY_AFTER_MS 3600000u

/* What GET /gateway/bot answered, checked. */
struct dgw_gateway_bot {
  char url[DGW_URL_MAX + 1]; /* ws:// or wss://, no query */
  uint32_t shards;           /* 1 .. DGW_REST_MAX_SHARDS */
  uint32_t max_concurrency;  /* 1 .. 65536 */
  int64_t total;             /* session starts per window, >= 0 */
  int64_t remaining;         /* 0 .. total */
  uint64_t reset_after_ms;   /* until `remaining` is `total` again */
};

/*
 * Parses and checks the body of a 200 answer (`len` bytes, need not be
 * NUL-terminated): an object with a ws:// or wss:// "url" (no query; never
 * ws:// when `api_tls`, or the token would go to the gateway in clear), an
 * integer "shards" in range, and "session_start_limit" with integer
 * "total", "remaining", "reset_after" and "max_concurrency" in range.
 * Unknown keys are ignored.  Returns DGW_OK, or DGW_ERR_JSON with a
 * sentence in `why` (may be NULL).
 */
int dgw_gateway_bot_parse(const char *body, size_t len, int api_tls,
                          struct dgw_gateway_bot *out, char *why,
                          size_t why_size);

/*
 * The wait a 429 asks for, in milliseconds: the body's "retry_after"
 * (seconds, fractional) when the body is a JSON object that has a positive
 * one, else the Retry-After header (`header`, may be NULL: seconds), cut
 * to DGW_REST_MAX_RETRY_AFTER_MS.  -1 when neither gives one.
 */
int64_t dgw_rest_retry_after_ms(const char *body, size_t len,
                                const char *header);

/* Discord's "message" from an error body (`len` bytes), printable and cut
 * to 120 characters, into `out` (`size` bytes, NUL-terminated) for the log;
 * "" when there is none, or when it would repeat any part of `token`, even
 * with its case changed or its separators altered (see rest_answer.c). */
void dgw_rest_error_message(const char *body, size_t len, const char *token,
                            char *out, size_t size);

/* 1 when the text `m` repeats any 12-character run of `token` (all of a
 * shorter one), compared on letters (case-folded) and digits only, or holds
 * an Authorization value; 1 as well when there is no memory to tell (the
 * text is then withheld rather than risked). */
int dgw_rest_echoes_token(const char *m, const char *token);

struct dgw_resolver;

struct dgw_rest_config {
  const char *api_url;           /* http:// or https://, no query; copied */
  const char *token;             /* without "Bot "; copied, wiped on free */
  SSL_CTX *ssl;                  /* borrowed; needed for https:// */
  struct dgw_resolver *resolver; /* referenced by each lookup in flight */
  uint32_t timeout_ms;           /* per attempt, DNS to body; 0: the default */
  uint32_t backoff_base_ms, backoff_max_ms; /* as dgw_backoff_ms() */
  size_t max_body;                          /* 0: DGW_REST_MAX_BODY */
  dgw_log_fn log;                           /* may be NULL */
  void *log_user_data;
  enum dgw_log_level log_level;
};

struct dgw_rest;

/*
 * The call's outcome, exactly once unless dgw_rest_free() came first:
 * DGW_OK with `bot`; or DGW_ERR_AUTH (401) or DGW_ERR_HTTP (another
 * refusal) with a sentence in `why`.  Pointers are valid during the call.
 * dgw_rest_free(r) is allowed inside.
 */
typedef void (*dgw_rest_done_fn)(struct dgw_rest *r, int error,
                                 const struct dgw_gateway_bot *bot,
                                 const char *why, void *user_data);

/*
 * Starts GET {api_url}/gateway/bot on `base`; the first attempt begins
 * from the loop, never inside this call.  Returns the call, or NULL with
 * *err: DGW_ERR_URL (a bad api_url), DGW_ERR_TLS (https:// without an
 * SSL_CTX), DGW_ERR_INVALID_ARGUMENT, DGW_ERR_NOMEM.
 */
struct dgw_rest *dgw_rest_gateway_bot(struct event_base *base,
                                      const struct dgw_rest_config *cfg,
                                      dgw_rest_done_fn done, void *user_data,
                                      int *err);

/* Cancels the call (no callback after this) and frees it; safe inside
 * its own callback.  NULL is a no-op. */
void dgw_rest_free(struct dgw_rest *r);

/* Attempts started so far (for tests and logs). */
uint32_t dgw_rest_attempts(const struct dgw_rest *r);

#endif /* DGW_REST_H */
