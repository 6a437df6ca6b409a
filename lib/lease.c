/*
 * The lease core (lease.h): deadlines from send times, renew timing, the
 * fair split.  No I/O, no clock: the caller passes `now`.
 */
#include "config.h"

#include <string.h>

#include "lease.h"

void dgw_lease_config_resolve(const struct dgw_lease_config *in,
                              struct dgw_lease_config *out) {
  *out = *in;
  if (out->margin_ms == 0) {
    out->margin_ms = out->lease_ms / 5;
    if (out->margin_ms < 100)
      out->margin_ms = 100;
  }
  if (out->margin_ms >= out->lease_ms)
    out->margin_ms = out->lease_ms / 2;
  if (out->renew_ms == 0)
    out->renew_ms = out->lease_ms / 3;
  if (out->renew_ms == 0)
    out->renew_ms = 1;
  if (out->retry_ms == 0)
    out->retry_ms = 250;
  if (out->retry_ms > out->renew_ms)
    out->retry_ms = out->renew_ms;
}

void dgw_lease_acquired(struct dgw_lease *l, const struct dgw_lease_config *cfg,
                        uint64_t sent_at, uint64_t token) {
  l->held = 1;
  l->token = token;
  l->valid_until = sent_at + cfg->lease_ms - cfg->margin_ms;
  l->in_flight = 0;
  l->next_renew = sent_at + cfg->renew_ms;
}

int dgw_lease_renew_due(const struct dgw_lease *l, uint64_t now) {
  return l->held && l->in_flight == 0 && now >= l->next_renew;
}

void dgw_lease_renew_sent(struct dgw_lease *l, uint64_t now) {
  /* 0 means "none in flight": a clock at 0 still counts as sent. */
  l->in_flight = now != 0 ? now : 1;
}

void dgw_lease_renew_answered(struct dgw_lease *l,
                              const struct dgw_lease_config *cfg, int ok,
                              uint64_t now) {
  uint64_t sent = l->in_flight;

  l->in_flight = 0;
  if (!l->held)
    return; /* dropped meanwhile: an answer resurrects nothing */
  if (!ok) {
    dgw_lease_lost(l);
    return;
  }
  if (sent != 0 && sent + cfg->lease_ms - cfg->margin_ms > l->valid_until)
    l->valid_until = sent + cfg->lease_ms - cfg->margin_ms;
  l->next_renew = (sent != 0 ? sent : now) + cfg->renew_ms;
}

void dgw_lease_renew_failed(struct dgw_lease *l,
                            const struct dgw_lease_config *cfg, uint64_t now) {
  l->in_flight = 0;
  l->next_renew = now + cfg->retry_ms;
}

int dgw_lease_may_send(const struct dgw_lease *l, uint64_t now) {
  return l->held && now < l->valid_until;
}

int dgw_lease_expired(const struct dgw_lease *l, uint64_t now) {
  return l->held && now >= l->valid_until;
}

void dgw_lease_lost(struct dgw_lease *l) {
  memset(l, 0, sizeof(*l));
}

uint64_t dgw_lease_left(const struct dgw_lease *l, uint64_t now) {
  return l->held && now < l->valid_until ? l->valid_until - now : 0;
}

uint32_t dgw_lease_fair_share(uint32_t total, uint32_t members, uint32_t rank) {
  if (members == 0)
    return 0;
  return total / members + (rank < total % members ? 1 : 0);
}

void dgw_lease_plan(uint32_t total, uint32_t members, uint32_t rank,
                    const uint8_t *mine, const uint8_t *taken, uint32_t *claim,
                    uint32_t *nclaim, uint32_t *release, uint32_t *nrelease) {
  uint32_t target = dgw_lease_fair_share(total, members, rank);
  uint32_t held = 0;
  uint32_t start;

  *nclaim = 0;
  *nrelease = 0;
  if (total == 0)
    return;
  for (uint32_t i = 0; i < total; i++)
    held += mine[i] != 0;
  if (held > target) {
    for (uint32_t i = total; i-- > 0 && *nrelease < held - target;)
      if (mine[i])
        release[(*nrelease)++] = i;
    return;
  }
  start = members != 0 ? (uint32_t)((uint64_t)rank * total / members) : 0;
  for (uint32_t k = 0; k < total && *nclaim < target - held; k++) {
    uint32_t i = (start + k) % total;

    if (!taken[i] && !mine[i])
      claim[(*nclaim)++] = i;
  }
}

int64_t dgw_lease_resume_seq(const char *sid, int64_t seq,
                             const char *stored_sid, int64_t stored_seq) {
  if (sid == NULL || stored_sid == NULL || strcmp(sid, stored_sid) != 0 ||
      stored_seq < 0)
    return seq;
  return stored_seq < seq ? stored_seq : seq;
}
