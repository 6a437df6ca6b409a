/*
 * The free guard: lets an owner free an object from inside one of the
 * object's own callbacks.  Every entry point of the library that may call
 * out to the owner brackets its work with dgw_guard_enter() and
 * dgw_guard_leave(); the object's free function asks dgw_guard_free()
 * whether it may destroy now or must leave that to the outermost
 * dgw_guard_leave().  hiredis defers its async context's free the same
 * way.  Header only, no I/O.  Internal to dgw.
 *
 * The pattern, for an object `o` with `struct dgw_guard guard`:
 *
 *   static int leave(struct obj *o) {     // 1: `o` is gone
 *     if (dgw_guard_leave(&o->guard)) { destroy(o); return 1; }
 *     return 0;
 *   }
 *   void obj_free(struct obj *o) {
 *     if (o != NULL && dgw_guard_free(&o->guard)) destroy(o);
 *   }
 *
 * and, after any call out to the owner, `if (dgw_guard_dying(&o->guard))`
 * stop touching anything but what leave() needs.
 */
#ifndef DGW_GUARD_H
#define DGW_GUARD_H

struct dgw_guard {
  int depth;        /* library frames of this object on the stack */
  int free_pending; /* the owner freed the object inside one of them */
};

/* A library frame of the object starts: call on entry to every callback
 * from libevent (or public call) that may call out to the owner. */
static inline void dgw_guard_enter(struct dgw_guard *g) {
  g->depth++;
}

/* The frame ends.  Returns 1 when it was the outermost one and the owner
 * asked for a free meanwhile: the caller must destroy the object now and
 * not touch it again.  Returns 0 otherwise. */
static inline int dgw_guard_leave(struct dgw_guard *g) {
  return --g->depth == 0 && g->free_pending;
}

/* The owner asks for a free.  Returns 1 when no library frame of the
 * object is on the stack, so the caller destroys it now; otherwise marks
 * the free pending (the outermost dgw_guard_leave() will return 1) and
 * returns 0. */
static inline int dgw_guard_free(struct dgw_guard *g) {
  if (g->depth > 0) {
    g->free_pending = 1;
    return 0;
  }
  return 1;
}

/* 1 once a free is pending: make no more calls to the owner and start no
 * new work; only unwind. */
static inline int dgw_guard_dying(const struct dgw_guard *g) {
  return g->free_pending;
}

/* 1 while a library frame of the object is on the stack (for work that is
 * better done once the outermost frame returns). */
static inline int dgw_guard_inside(const struct dgw_guard *g) {
  return g->depth > 0;
}

#endif /* DGW_GUARD_H */
