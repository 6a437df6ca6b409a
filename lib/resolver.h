/*
 * A reference-counted holder for an evdns_base.  Internal to dgw.
 *
 * libevent 2.1 reports a cancelled evdns_getaddrinfo() later, from the
 * loop, and touches the evdns_base when it does: freeing the base while a
 * cancelled lookup is still pending is a use-after-free.  So every lookup
 * holds a reference, and the base is freed (from a fresh loop callback,
 * never inside evdns's own) only when the owner and every lookup have let
 * go.
 */
#ifndef DGW_RESOLVER_H
#define DGW_RESOLVER_H

#include <event2/dns.h>
#include <event2/event.h>

struct dgw_resolver;

/*
 * Wraps `dns` (which must belong to `base`); with `own` set it is freed
 * with the last reference.  NULL `dns` makes one from /etc/resolv.conf and
 * /etc/hosts (owned), idle when no lookup runs so it never keeps the loop
 * alive.  The caller holds the first reference.  NULL without memory.
 */
struct dgw_resolver *dgw_resolver_new(struct event_base *base,
                                      struct evdns_base *dns, int own);

/* Takes a reference. */
void dgw_resolver_ref(struct dgw_resolver *r);

/* Drops a reference; the last one frees at once (no lookup can be pending
 * then, since each holds one).  NULL is a no-op. */
void dgw_resolver_unref(struct dgw_resolver *r);

/* Drops a lookup's reference from inside its evdns callback; if it was the
 * last, the base is freed from a fresh loop callback, because evdns goes
 * on using it after the callback returns. */
void dgw_resolver_unref_in_callback(struct dgw_resolver *r);

/* The evdns_base to resolve with. */
struct evdns_base *dgw_resolver_evdns(const struct dgw_resolver *r);

#endif /* DGW_RESOLVER_H */
