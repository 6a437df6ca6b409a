/*
 * dgw-soak's faults: what each kind does to a shard or to a whole side,
 * and the random choice of the next one.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include "soak.h"

const struct fault_kind soak_kinds[F_COUNT] = {
    [F_DROP] = {"tcp drop", 0, 0, 3},
    [F_MIDFRAME] = {"drop mid-frame", 0, 0, 3},
    [F_CLOSE_4000] = {"close 4000", 0, 0, 3},
    [F_CLOSE_4001] = {"close 4001", 0, 0, 3},
    [F_CLOSE_4002] = {"close 4002", 0, 0, 3},
    [F_CLOSE_4005] = {"close 4005", 0, 0, 3},
    [F_CLOSE_4008] = {"close 4008", 0, 0, 3},
    [F_CLOSE_4007] = {"close 4007 (new session)", 1, 0, 3},
    [F_CLOSE_4009] = {"close 4009 (new session)", 1, 0, 3},
    [F_OP7] = {"op 7 reconnect", 0, 0, 3},
    [F_OP9_TRUE] = {"op 9 true", 0, 0, 3},
    [F_OP9_FALSE] = {"op 9 false (new session)", 1, 0, 3},
    [F_LOST_THEN_CUT] = {"dispatches lost, then cut", 0, 0, 3},
    [F_HB_REQUEST] = {"server heartbeat request", 0, 0, 3},
    [F_CORRUPT_ZLIB] = {"corrupt zlib message", 0, 0, 3},
    [F_BAD_FRAME] = {"malformed frame", 0, 0, 3},
    [F_SLOW_READER] = {"slow reader (150 ms stall)", 0, 0, 3},
    [F_NO_ACK] = {"withheld ACKs (8 shards)", 0, 1, 3},
    [F_CUT_ALL] = {"network cut (8 shards)", 0, 1, 3},
    [F_OUTAGE] = {"outage: listener gone 300 ms (8 shards)", 0, 1, 12},
};

/* ---------------------------------------------------------------- faults */

void ack_back(evutil_socket_t fd, short what, void *arg) {
  struct side *side = arg;

  (void)fd;
  (void)what;
  dgw_mock_set_ack(side->mock, 1);
  side->ack_off = 0;
}

void listen_back(evutil_socket_t fd, short what, void *arg) {
  struct side *side = arg;

  (void)fd;
  (void)what;
  if (dgw_mock_set_listening(side->mock, 1) != DGW_OK) {
    struct timeval tv = {0, 100000};

    evtimer_add(side->listen_timer, &tv); /* the port is busy: again */
    return;
  }
  side->listen_off = 0;
}

/* A zlib message no inflater accepts: a stored block header that lies
 * about its length, then the sync-flush suffix. */
static const unsigned char bad_zlib[] = {0x82, 0x0a, 0x00, 0x05, 0x00, 0x12,
                                         0x34, 0x56, 0x00, 0x00, 0xff, 0xff};
/* Frames a client must fail the connection on: a reserved opcode, a
 * masked frame from the server, RSV1 without an extension. */
static const unsigned char bad_frames[3][8] = {
    {0x83, 0x00},
    {0x81, 0x82, 0x01, 0x02, 0x03, 0x04, 'x' ^ 0x01, 'y' ^ 0x02},
    {0xc1, 0x02, '{', '}'},
};
static const size_t bad_frame_len[3] = {2, 8, 4};

static void close_code(struct shard *sh, uint16_t code, int forget) {
  char sid[64];

  snprintf(sid, sizeof sid, "%s", sh->sid);
  dgw_mock_conn_close(sh->conn, code, "soak");
  /* A session the client will not resume: free its history now. */
  if (forget)
    dgw_mock_invalidate_session(sh->side->mock, sid);
}

/* One fault of kind `k` on shard `sh` (any shard of its side for the
 * global ones).  Returns 0 when it does not apply now. */
static int inject(struct soak *s, enum fault k, struct shard *sh) {
  struct side *side = sh->side;
  struct timeval tv;
  int i;

  switch (k) {
  case F_DROP:
    dgw_mock_conn_drop(sh->conn);
    break;
  case F_MIDFRAME:
    dgw_mock_conn_drop_midframe(sh->conn);
    break;
  case F_CLOSE_4000:
    close_code(sh, 4000, 0);
    break;
  case F_CLOSE_4001:
    close_code(sh, 4001, 0);
    break;
  case F_CLOSE_4002:
    close_code(sh, 4002, 0);
    break;
  case F_CLOSE_4005:
    close_code(sh, 4005, 0);
    break;
  case F_CLOSE_4008:
    close_code(sh, 4008, 0);
    break;
  case F_CLOSE_4007:
    close_code(sh, 4007, 1);
    break;
  case F_CLOSE_4009:
    close_code(sh, 4009, 1);
    break;
  case F_OP7:
    dgw_mock_conn_send_json(sh->conn, "{\"op\":7,\"d\":null}");
    break;
  case F_OP9_TRUE:
    dgw_mock_conn_send_json(sh->conn, "{\"op\":9,\"d\":true}");
    break;
  case F_OP9_FALSE:
    dgw_mock_invalidate_session(side->mock, sh->sid);
    break;
  case F_LOST_THEN_CUT:
    /* Lost in flight, then the connection dies: a RESUME replays them. */
    dgw_mock_conn_lose_next(sh->conn, 5);
    add_events(s, sh, 5);
    dgw_mock_conn_drop(sh->conn);
    break;
  case F_HB_REQUEST:
    dgw_mock_conn_request_heartbeat(sh->conn);
    break;
  case F_CORRUPT_ZLIB:
    if (side->tls)
      return 0; /* that side runs without compression */
    dgw_mock_conn_send_raw(sh->conn, bad_zlib, sizeof bad_zlib);
    break;
  case F_BAD_FRAME:
    i = (int)rnd_below(s, 3);
    dgw_mock_conn_send_raw(sh->conn, bad_frames[i], bad_frame_len[i]);
    break;
  case F_SLOW_READER:
    sh->stall = 1;
    break;
  case F_NO_ACK:
    if (side->ack_off)
      return 0;
    side->ack_off = 1;
    dgw_mock_set_ack(side->mock, 0);
    tv.tv_sec = 0;
    tv.tv_usec = BEAT_MS * 2500; /* 2.5 intervals */
    evtimer_add(side->ack_timer, &tv);
    break;
  case F_CUT_ALL:
    dgw_mock_drop_all(side->mock);
    break;
  case F_OUTAGE:
    if (side->listen_off)
      return 0;
    side->listen_off = 1;
    dgw_mock_set_listening(side->mock, 0);
    dgw_mock_drop_all(side->mock);
    tv.tv_sec = 0;
    tv.tv_usec = 300000;
    evtimer_add(side->listen_timer, &tv);
    break;
  default:
    return 0;
  }
  return 1;
}

void soak_fault(struct soak *s) {
  struct shard *sh = NULL;
  enum fault k = (enum fault)rnd_below(s, F_COUNT);
  uint32_t tries;

  /* A shard whose session is live and whose connection the mock knows. */
  for (tries = 0; tries < s->nshards && sh == NULL; tries++) {
    struct shard *c = &s->shard[rnd_below(s, s->nshards)];

    if (c->conn != NULL && dgw_gateway_state(c->gw) == DGW_STATE_READY)
      sh = c;
  }
  if (sh == NULL || !inject(s, k, sh))
    return; /* tried again on the next tick */
  s->faults[k]++;
  if (soak_kinds[k].global) {
    uint32_t j;

    for (j = sh->side->first; j < sh->side->first + sh->side->count; j++)
      s->shard[j].credit += soak_kinds[k].credit;
    s->global_faults++;
    s->fault_hits += sh->side->count;
  } else {
    sh->credit += soak_kinds[k].credit;
    s->fault_hits++;
    sh->faults++;
  }
  if (soak_kinds[k].new_session)
    sh->owed++;
  s->next_fault = s->delivered + s->fault_every / 2 +
                  rnd_below(s, s->fault_every > 0 ? s->fault_every : 1);
  if (s->verbose)
    fprintf(stderr, "# fault at %" PRIu64 ": %s on shard %u\n", s->delivered,
            soak_kinds[k].name, sh->id);
}
