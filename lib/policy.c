/* The close-code policy table and reconnect backoff. */
#include "config.h"

#include <openssl/rand.h>

#include <dgw/dgw.h>

#include "policy.h"

struct close_entry {
  int code;
  enum dgw_close_action action;
  const char *name;
};

/* One table, in one place: gateway-protocol.md section 4. */
static const struct close_entry close_table[] = {
    {1000, DGW_CLOSE_RESUME, "Normal closure"},
    {1001, DGW_CLOSE_RESUME, "Going away"},
    {1002, DGW_CLOSE_RESUME, "Protocol error"},
    {1003, DGW_CLOSE_RESUME, "Unsupported data"},
    {1006, DGW_CLOSE_RESUME, "Abnormal closure"},
    {1007, DGW_CLOSE_RESUME, "Invalid payload data"},
    {1008, DGW_CLOSE_RESUME, "Policy violation"},
    {1009, DGW_CLOSE_RESUME, "Message too big"},
    {1011, DGW_CLOSE_RESUME, "Internal server error"},
    {1012, DGW_CLOSE_RESUME, "Service restart"},
    {1013, DGW_CLOSE_RESUME, "Try again later"},
    {1014, DGW_CLOSE_RESUME, "Bad gateway"},
    {4000, DGW_CLOSE_RESUME, "Unknown error"},
    {4001, DGW_CLOSE_RESUME, "Unknown opcode"},
    {4002, DGW_CLOSE_RESUME, "Decode error"},
    /* A payload sent before identifying: the session itself is still
     * alive, so RESUME first; an invalidated one answers op 9 false and
     * the shard IDENTIFYs after the 1-5 s wait (issue 15). */
    {4003, DGW_CLOSE_RESUME, "Not authenticated"},
    {4004, DGW_CLOSE_FATAL, "Authentication failed"},
    {4005, DGW_CLOSE_RESUME, "Already authenticated"},
    /* Gone since gateway v5, may still be seen: the session is invalid. */
    {4006, DGW_CLOSE_NEW_SESSION, "Session no longer valid"},
    {4007, DGW_CLOSE_NEW_SESSION, "Invalid seq"},
    {4008, DGW_CLOSE_RESUME, "Rate limited"},
    {4009, DGW_CLOSE_NEW_SESSION, "Session timed out"},
    {4010, DGW_CLOSE_FATAL, "Invalid shard"},
    {4011, DGW_CLOSE_FATAL, "Sharding required"},
    {4012, DGW_CLOSE_FATAL, "Invalid API version"},
    {4013, DGW_CLOSE_FATAL, "Invalid intent(s)"},
    {4014, DGW_CLOSE_FATAL, "Disallowed intent(s)"},
};

static const struct close_entry *find(int code) {
  for (size_t i = 0; i < sizeof(close_table) / sizeof(close_table[0]); i++)
    if (close_table[i].code == code)
      return &close_table[i];
  return NULL;
}

enum dgw_close_action dgw_close_code_action(int code) {
  const struct close_entry *e = find(code);

  return e != NULL ? e->action : DGW_CLOSE_RESUME;
}

const char *dgw_close_code_name(int code) {
  const struct close_entry *e = find(code);

  if (e != NULL)
    return e->name;
  return code == 0 ? "no close code" : "unknown close code";
}

uint32_t dgw_backoff_ms(uint32_t attempt, uint32_t base_ms, uint32_t max_ms,
                        double random01) {
  uint64_t step = base_ms;
  uint32_t half;

  for (uint32_t i = 0; i < attempt && step < max_ms; i++)
    step *= 2;
  if (step > max_ms)
    step = max_ms;
  half = (uint32_t)(step / 2);
  if (random01 < 0.0 || !(random01 < 1.0))
    random01 = 0.5;
  return half + (uint32_t)((double)(step - half) * random01);
}

uint32_t dgw_uniform_ms(uint32_t min_ms, uint32_t max_ms, double random01) {
  if (max_ms <= min_ms)
    return min_ms;
  if (random01 < 0.0 || !(random01 < 1.0))
    random01 = 0.5;
  /* +1 so that max_ms itself can be drawn; in 64 bits so that the full
   * range 0..UINT32_MAX does not wrap to 0. */
  return min_ms +
         (uint32_t)((double)((uint64_t)(max_ms - min_ms) + 1u) * random01);
}

double dgw_random01(void) {
  uint64_t r;

  if (RAND_bytes((unsigned char *)&r, (int)sizeof(r)) != 1)
    return 0.5;
  return (double)(r >> 11) * (1.0 / 9007199254740992.0); /* 53 bits */
}
