/*
 * The connection pacer: at most `max` connection attempts of a client in
 * flight at once (from "connecting" until HELLO asked to IDENTIFY, or
 * RESUMED/READY, or the attempt failed), the rest waiting in FIFO order
 * and let go as slots free up (the owner spreads each grant by a few
 * random milliseconds, DGW_PACER_JITTER_MS).  After
 * a client-wide outage thousands of shards come back at once; paced, they
 * do not starve each other's heartbeats.  An attempt that finds a free
 * slot goes at once: pacing adds nothing to a lone shard's resume.
 * Items are opaque pointers (the client's shards).  Internal to dgw.
 */
#ifndef DGW_PACER_H
#define DGW_PACER_H

#include <stdint.h>

#include <event2/event.h>

/* The longest random delay the owner adds to a grant from the queue, in
 * ms (none for an item that found a free slot at once). */
#define DGW_PACER_JITTER_MS 5u

struct dgw_pacer;

/* A waiting item's turn: it now holds a slot.  Called from the pacer's
 * own timer, several in a row when several slots are free: the callee
 * only schedules the item's attempt (it runs no application code) and
 * must not free the pacer; it may call dgw_pacer_release(), e.g. for an
 * item that no longer wants the slot. */
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
