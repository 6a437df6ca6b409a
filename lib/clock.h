/*
 * The one clock of the library: monotonic time for deadlines and rate
 * limits, and the conversion of a delay to the struct timeval libevent's
 * timers take.  Header only (static inline), no libevent, so the I/O-free
 * layers may use it too.  Internal to dgw.
 */
#ifndef DGW_CLOCK_H
#define DGW_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/* Nanoseconds on CLOCK_MONOTONIC: never goes backwards, unaffected by
 * changes to the wall clock.  The epoch is arbitrary; use only
 * differences. */
static inline uint64_t dgw_monotonic_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Milliseconds on the same clock as dgw_monotonic_ns(). */
static inline uint64_t dgw_monotonic_ms(void) {
  return dgw_monotonic_ns() / 1000000u;
}

/* A delay of `ms` milliseconds as a struct timeval (for evtimer_add and
 * friends). */
static inline struct timeval dgw_timeval_ms(uint64_t ms) {
  struct timeval tv;

  tv.tv_sec = (time_t)(ms / 1000u);
  tv.tv_usec = (suseconds_t)((ms % 1000u) * 1000u);
  return tv;
}

/* A delay of `ns` nanoseconds as a struct timeval, rounded up to the next
 * microsecond so that a timer never fires before the delay is over. */
static inline struct timeval dgw_timeval_ns(uint64_t ns) {
  uint64_t us = (ns + 999u) / 1000u;
  struct timeval tv;

  tv.tv_sec = (time_t)(us / 1000000u);
  tv.tv_usec = (suseconds_t)(us % 1000000u);
  return tv;
}

#endif /* DGW_CLOCK_H */
