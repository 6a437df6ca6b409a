/*
 * The connection pacer: at most `max` connection attempts of a client in
 * flight at once (from "connecting" until HELLO asked to IDENTIFY, or
 * RESUMED/READY, or the attempt failed), the rest waiting in FIFO order
 * and let go one by one with a few milliseconds of random spacing.  After
 * a client-wide outage thousands of shards come back at once; paced, they
 * do not starve each other's heartbeats.  An attempt that finds a free
 * slot goes at once: pacing adds nothing to a lone shard's resume.
 * Items are opaque pointers (the client's shards).  Internal to dgw.
 */
#ifndef DGW_PACER_H
#define DGW_PACER_H

#include <stdint.h>

#include <event2/event.h>

/* The longest random gap between two grants from the queue, in ms. */
#define DGW_PACER_JITTER_MS 1u

struct dgw_pacer;

/* A waiting item's turn: it now holds a slot.  Called from the pacer's
 * own timer, as the last thing the pacer does in that callback (the
 * callee may free the pacer).  The callee calls dgw_pacer_release() when
 * the item no longer wants the slot. */
typedef void (*dgw_pacer_grant_fn)(void *item, void *user_data);

/* A pacer on `base` allowing `max` in flight (0: no limit).  NULL without
 * memory. */
struct dgw_pacer *dgw_pacer_new(struct event_base *base, uint32_t max,
                                dgw_pacer_grant_fn grant, void *user_data);
void dgw_pacer_free(struct dgw_pacer *p);

/* `item` wants to start a connection attempt.  Returns 1 when it holds a
 * slot now (go at once), 0 when it waits for the grant callback.  An item
 * already holding a slot or waiting gets 1 or 0 again, without a second
 * entry.  1 also without memory for the queue (unpaced rather than
 * stuck). */
int dgw_pacer_request(struct dgw_pacer *p, void *item);

/* `item` no longer holds its slot or waits (its attempt got through,
 * failed, or the item is going away).  Idempotent; unknown items are
 * ignored. */
void dgw_pacer_release(struct dgw_pacer *p, void *item);

/* Slots held now, and the most ever held at once (for tests, stats). */
uint32_t dgw_pacer_in_flight(const struct dgw_pacer *p);
uint32_t dgw_pacer_peak(const struct dgw_pacer *p);

/* Items waiting now. */
uint32_t dgw_pacer_waiting(const struct dgw_pacer *p);

#endif /* DGW_PACER_H */
