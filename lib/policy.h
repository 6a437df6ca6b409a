/*
 * What the gateway does after a connection ends: the close-code policy
 * table and the reconnect backoff.  No I/O; unit-tested from tables.
 */
#ifndef DGW_POLICY_H
#define DGW_POLICY_H

#include <stdint.h>

#include <dgw/dgw.h>

/*
 * The backoff before reconnect attempt `attempt` (0 for the first retry
 * after a failure): min(max_ms, base_ms * 2^attempt), then "equal jitter":
 * half of that fixed, half uniform from `random01` (in [0,1)).  So a storm
 * of shards spreads out, yet no retry comes sooner than half its step.
 */
uint32_t dgw_backoff_ms(uint32_t attempt, uint32_t base_ms, uint32_t max_ms,
                        double random01);

/* A wait uniform in [min_ms, max_ms] from `random01` in [0,1): the pause
 * before a fresh IDENTIFY after INVALID_SESSION (1-5 s by default). */
uint32_t dgw_uniform_ms(uint32_t min_ms, uint32_t max_ms, double random01);

/* A uniform double in [0,1) from the OpenSSL CSPRNG (falls back to 0.5,
 * never fails).  Used for heartbeat jitter and backoff. */
double dgw_random01(void);

#endif /* DGW_POLICY_H */
