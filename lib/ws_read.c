/*
 * The socket side of the input on plain (ws://) connections: reads past
 * libevent 2.1's 4 KiB.  evbuffer_read() takes at most EVBUFFER_MAX_READ
 * (4096) bytes a call, not configurable before 2.2, so a busy plain socket
 * costs an epoll_wait, an ioctl(FIONREAD) and a readv every 4 KiB (about
 * 26 gateway events); on the machines measured a system call costs about
 * 2 us.  When libevent's read was capped, ws_read_more() takes what else
 * waits in one large read.  A TLS bufferevent reads whole records and owns
 * its socket: never used there.  Split from ws.c; shares struct dgw_ws
 * through ws_internal.h.
 */
#include "config.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "ws_internal.h"

/* A read that returned this much hit libevent's cap (EVBUFFER_MAX_READ in
 * its buffer.c): more probably waits. */
#define WS_LIBEVENT_READ 4096u
/* One read of ours asks for this much: a 64 KiB block with the chain's
 * header (a larger request rounds the block up to 128 KiB, which malloc
 * maps and unmaps each time). */
#define WS_READ_CHUNK (65536u - 256u)

void ws_read_begin(struct dgw_ws *ws, struct evbuffer *in) {
  size_t len = evbuffer_get_length(in);

  /* What libevent read since our last look: a capped read leaves the
   * input at least 4 KiB longer than we left it. */
  ws->io.budget = 0;
  if (ws->plain && ws->io.pending_errno == 0 &&
      len >= ws->io.left + WS_LIBEVENT_READ)
    ws->io.budget = WS_READ_BUDGET;
}

void ws_read_end(struct dgw_ws *ws, struct evbuffer *in) {
  ws->io.left = in != NULL ? evbuffer_get_length(in) : 0;
}

/* Bytes the bufferevent lets us read now: its high read watermark and its
 * rate limit (bufferevent_get_max_to_read(); dgw sets neither, but a
 * bufferevent's limits are kept). */
static size_t allowed(struct bufferevent *bev, struct evbuffer *in,
                      size_t want) {
  size_t high = 0;
  ev_ssize_t max = bufferevent_get_max_to_read(bev);

  if (max <= 0)
    return 0;
  if ((size_t)max < want)
    want = (size_t)max;
  if (bufferevent_getwatermark(bev, EV_READ, NULL, &high) == 0 && high > 0) {
    size_t len = evbuffer_get_length(in);

    if (len >= high)
      return 0;
    if (high - len < want)
      want = high - len;
  }
  return want;
}

int ws_read_more(struct dgw_ws *ws) {
  struct evbuffer *in;
  struct evbuffer_iovec vec[2];
  evutil_socket_t fd;
  size_t want;
  ssize_t n;
  int nvec, waiting = 0;

  if (ws->io.budget == 0 || ws->bev == NULL || ws->paused ||
      (ws->state != WS_OPEN && ws->state != WS_CLOSING) ||
      !(bufferevent_get_enabled(ws->bev) & EV_READ) ||
      (fd = bufferevent_getfd(ws->bev)) < 0)
    return 0;
  in = bufferevent_get_input(ws->bev);
  want = allowed(ws->bev, in,
                 ws->io.budget < WS_READ_CHUNK ? ws->io.budget : WS_READ_CHUNK);
  /* Reserve only what waits: a 64 KiB block per read would sit in the
   * input under a partial frame, and a thousand shards starting at once
   * (their READY and GUILD_CREATEs) held 64 MiB that way, most of it
   * left fragmented afterwards.  Nothing waiting (or the end of the
   * stream, or an error) is libevent's to find on its next read. */
  if (want > 0 && (ioctl(fd, FIONREAD, &waiting) < 0 || waiting <= 0)) {
    ws->io.budget = 0;
    return 0;
  }
  if ((size_t)waiting < want)
    want = (size_t)waiting;
  if (want == 0)
    return 0;
  /* The input's end is frozen to all but libevent's own read; thaw it as
   * bufferevent_sock.c does around its evbuffer_read(). */
  evbuffer_unfreeze(in, 0);
  nvec = evbuffer_reserve_space(in, (ev_ssize_t)want, vec, 2);
  if (nvec <= 0) {
    evbuffer_freeze(in, 0);
    ws->io.budget = 0;
    return 0; /* no memory: libevent reads on, 4 KiB at a time */
  }
  do {
    n = readv(fd, (struct iovec *)vec, nvec);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    /* evbuffer_commit_space() wants the lengths it is given to fit. */
    size_t rest = (size_t)n;

    for (int i = 0; i < nvec; i++) {
      if (vec[i].iov_len > rest)
        vec[i].iov_len = rest;
      rest -= vec[i].iov_len;
    }
    evbuffer_commit_space(in, vec, nvec);
  } else {
    evbuffer_commit_space(in, vec, 0);
  }
  evbuffer_freeze(in, 0);
  if (n <= 0) {
    int e = errno;

    ws->io.budget = 0;
    /* Nothing more now, or the end of the stream: libevent finds the end
     * again on its next read (it stays readable) and reports it as it
     * always did.  An error is the socket's only once (the kernel clears
     * it as it reports it): kept, and reported by ws_read_failed() once
     * what came before it is delivered. */
    if (n < 0 && e != EAGAIN && e != EWOULDBLOCK)
      ws->io.pending_errno = e;
    return 0;
  }
  ws->io.reads++;
  ws->io.bytes += (uint64_t)n;
  ws->io.budget = (size_t)n < ws->io.budget ? ws->io.budget - (size_t)n : 0;
  /* A short read drained the socket, but more may have arrived since: the
   * next call asks again (one read that finds nothing per callback, only
   * when libevent's own read was capped). */
  return 1;
}

int ws_read_failed(struct dgw_ws *ws) {
  int e = ws->io.pending_errno;

  if (e == 0 || ws->paused || ws->bev == NULL ||
      (ws->state != WS_OPEN && ws->state != WS_CLOSING))
    return 0;
  ws->io.pending_errno = 0;
  errno = e;
  return e;
}

void dgw_ws_read_stats(const struct dgw_ws *ws, uint64_t *reads,
                       uint64_t *bytes) {
  if (reads != NULL)
    *reads = ws->io.reads;
  if (bytes != NULL)
    *bytes = ws->io.bytes;
}
