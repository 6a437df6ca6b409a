/* A reference-counted evdns_base, freed only when no lookup needs it. */
#include "config.h"

#include <stdlib.h>

#include "resolver.h"

struct dgw_resolver {
  struct event_base *base;
  struct evdns_base *dns;
  int own;
  int refs;
};

struct dgw_resolver *dgw_resolver_new(struct event_base *base,
                                      struct evdns_base *dns, int own) {
  struct dgw_resolver *r = calloc(1, sizeof(*r));

  if (r == NULL)
    return NULL;
  if (dns == NULL) {
    /* Without DISABLE_WHEN_INACTIVE the resolver's own events would keep
     * event_base_dispatch() running after every shard has closed.
     * libevent 2.1 applies that flag only after it added the nameservers
     * of EVDNS_BASE_INITIALIZE_NAMESERVERS, whose read events then stay
     * added for good: so the flag first, resolv.conf after. */
    dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (dns == NULL) {
      free(r);
      return NULL;
    }
    /* No resolv.conf: libevent's defaults, and /etc/hosts still answers. */
    (void)evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL,
                                       "/etc/resolv.conf");
    evdns_base_load_hosts(dns, NULL);
    own = 1;
  }
  r->base = base;
  r->dns = dns;
  r->own = own;
  r->refs = 1;
  return r;
}

void dgw_resolver_ref(struct dgw_resolver *r) {
  r->refs++;
}

static void free_later(evutil_socket_t fd, short what, void *arg) {
  struct dgw_resolver *r = arg;

  (void)fd;
  (void)what;
  if (r->own)
    evdns_base_free(r->dns, 0);
  free(r);
}

void dgw_resolver_unref(struct dgw_resolver *r) {
  if (r != NULL && --r->refs == 0)
    free_later(-1, 0, r);
}

void dgw_resolver_unref_in_callback(struct dgw_resolver *r) {
  struct timeval now = {0, 0};

  if (r == NULL || --r->refs > 0)
    return;
  if (event_base_once(r->base, -1, EV_TIMEOUT, free_later, r, &now) != 0)
    r->refs = 1; /* cannot defer: leak it rather than free it under evdns */
}

struct evdns_base *dgw_resolver_evdns(const struct dgw_resolver *r) {
  return r->dns;
}
