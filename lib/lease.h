/*
 * The lease core: when a shard held on a lease may run, when to renew,
 * when it must stop, and how the shards are split among the members.  No
 * I/O and no clock of its own: every call gets the monotonic time in ms
 * (dgw_monotonic_ms()), so the rules are tested from tables
 * (tests/test_lease.c).  Internal to dgw; the cluster (cluster.c) carries
 * the decisions out on Redis.
 *
 * The rules (docs/cluster.md):
 *  - A lease is valid until (the time its last successful acquire or
 *    renew was SENT) + lease_ms - margin_ms.  Redis sets the key's expiry
 *    when it runs the script, which is after we sent it, so our deadline
 *    is always before the key can expire and another member can take the
 *    shard; the reply's arrival time never extends it (a reply delayed by
 *    a pause or a slow network proves nothing about now).
 *  - Renew every renew_ms (lease/3), retrying a failed renew quickly;
 *    while Redis is unreachable the shard runs on until the deadline.
 *  - At the deadline the shard is lost: closed at once, and nothing more is
 *    written for it.  dgw_lease_may_send() reads the deadline against the
 *    caller's `now`, so a process waking from SIGSTOP or a VM freeze sees
 *    the loss at its first write, before any timer of its own ran.
 *  - Fencing: each acquire increments the shard's token in Redis; session
 *    and seq writes carry the token and the script refuses any but the
 *    current holder's.
 */
#ifndef DGW_LEASE_H
#define DGW_LEASE_H

#include <stddef.h>
#include <stdint.h>

struct dgw_lease_config {
  uint32_t lease_ms;  /* the key's TTL in Redis */
  uint32_t margin_ms; /* 0: lease/5, at least 100 ms */
  uint32_t renew_ms;  /* 0: lease/3 */
  uint32_t retry_ms;  /* after a failed renew; 0: 250 ms (capped renew_ms) */
};

/* One shard's lease as this process sees it.  Zero it to start. */
struct dgw_lease {
  int held;
  uint64_t token;       /* the fencing token of our acquire */
  uint64_t valid_until; /* monotonic ms: the deadline */
  uint64_t in_flight;   /* when the renew in flight was sent, 0: none */
  uint64_t next_renew;  /* monotonic ms */
};

/* The config with its defaults filled in. */
void dgw_lease_config_resolve(const struct dgw_lease_config *in,
                              struct dgw_lease_config *out);

/* An acquire sent at `sent_at` succeeded with `token`. */
void dgw_lease_acquired(struct dgw_lease *l, const struct dgw_lease_config *cfg,
                        uint64_t sent_at, uint64_t token);

/* 1 when a renew should be sent now (held, none in flight, due). */
int dgw_lease_renew_due(const struct dgw_lease *l, uint64_t now);

/* A renew was sent at `now`. */
void dgw_lease_renew_sent(struct dgw_lease *l, uint64_t now);

/* The renew in flight answered: `ok` 1 when the script renewed our lease
 * (the deadline moves to its send time + lease - margin), 0 when Redis
 * says the lease is no longer ours (lost: held becomes 0).  Arriving at
 * `now` (only for when to renew next). */
void dgw_lease_renew_answered(struct dgw_lease *l,
                              const struct dgw_lease_config *cfg, int ok,
                              uint64_t now);

/* The renew in flight failed without an answer (Redis unreachable, an
 * error): retry soon; the deadline stays. */
void dgw_lease_renew_failed(struct dgw_lease *l,
                            const struct dgw_lease_config *cfg, uint64_t now);

/* 1 while held and `now` is before the deadline: the shard may run and
 * write.  0: it must not write anything (and must be closed). */
int dgw_lease_may_send(const struct dgw_lease *l, uint64_t now);

/* 1 when the lease is held but `now` is at or past the deadline: the
 * owner closes the shard now and forgets the lease (dgw_lease_lost()). */
int dgw_lease_expired(const struct dgw_lease *l, uint64_t now);

/* Forgets the lease (lost, or released). */
void dgw_lease_lost(struct dgw_lease *l);

/* Ms from `now` to the deadline (0 when not held or past it). */
uint64_t dgw_lease_left(const struct dgw_lease *l, uint64_t now);

/*
 * Where a new holder RESUMEs a stored session (`sid`, `seq`: what the last
 * holder delivered, flushed every second) when a stream writer (the
 * redis-streams plugin) also stored how far it got (`stored_sid`,
 * `stored_seq`, NULL when nothing is stored): never past what the stream
 * holds, so that nothing delivered but not yet stored is lost.  The same
 * session: min(seq, stored_seq); no stored position or another session
 * (one the writer has not reached, or a stale one): seq.
 */
int64_t dgw_lease_resume_seq(const char *sid, int64_t seq,
                             const char *stored_sid, int64_t stored_seq);

/* The fair share of member `rank` (0-based, in the members' sorted order)
 * among `members` for `total` shards: total / members, one more for the
 * first total % members ranks.  0 when members is 0. */
uint32_t dgw_lease_fair_share(uint32_t total, uint32_t members, uint32_t rank);

/* What one member does this round.  `mine[i]` is 1 for shard i held by
 * us, `taken[i]` is 1 for shard i held by anyone (us included).  Fills
 * `claim` with up to (target - held) free shards to try to acquire, and
 * `release` with (held - target) of ours to hand over (highest ids
 * first), sizes in *nclaim and *nrelease (arrays of `total` entries).
 * Free shards are tried starting at rank * total / members, so members
 * that join together do not all race for shard 0. */
void dgw_lease_plan(uint32_t total, uint32_t members, uint32_t rank,
                    const uint8_t *mine, const uint8_t *taken, uint32_t *claim,
                    uint32_t *nclaim, uint32_t *release, uint32_t *nrelease);

#endif /* DGW_LEASE_H */
