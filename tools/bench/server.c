/*
 * The bench server: a forked child with plain blocking sockets (and
 * blocking OpenSSL for wss://), so that it costs the client nothing and is
 * never the bottleneck.  It does the HTTP upgrade with dgw's own handshake
 * code, sends HELLO, waits for IDENTIFY and then either writes the whole
 * pre-built stream in as few system calls as the kernel allows (BLAST) or
 * sends live dispatches at a steady rate, each stamped with its send time
 * (PACED).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <dgw/dgw.h>

#include "bench.h"
#include "handshake.h"

/* Time a server waits for its next client before giving up. */
#define ACCEPT_TIMEOUT_MS 60000

struct conn {
  int fd;
  SSL *ssl;
  uint8_t in[DGW_HANDSHAKE_MAX_HEADER];
  size_t in_len;
  int zstd; /* the compress= the client must ask for */
};

static ssize_t conn_read(struct conn *c, void *buf, size_t len) {
  if (c->in_len > 0) {
    size_t n = len < c->in_len ? len : c->in_len;

    memcpy(buf, c->in, n);
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
    return (ssize_t)n;
  }
  if (c->ssl != NULL) {
    int n = SSL_read(c->ssl, buf, len > 1u << 20 ? 1 << 20 : (int)len);

    return n > 0 ? n : -1;
  }
  for (;;) {
    ssize_t n = read(c->fd, buf, len);

    if (n < 0 && errno == EINTR)
      continue;
    return n > 0 ? n : -1;
  }
}

static int read_exact(struct conn *c, void *buf, size_t len) {
  uint8_t *p = buf;

  while (len > 0) {
    ssize_t n = conn_read(c, p, len);

    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int write_all(struct conn *c, const void *buf, size_t len) {
  const uint8_t *p = buf;

  while (len > 0) {
    size_t piece = len > (1u << 30) ? (1u << 30) : len;

    if (c->ssl != NULL) {
      int n = SSL_write(c->ssl, p, (int)piece);

      if (n <= 0)
        return -1;
      p += n;
      len -= (size_t)n;
    } else {
      ssize_t n = write(c->fd, p, piece);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      p += n;
      len -= (size_t)n;
    }
  }
  return 0;
}

/* Reads one (masked) client frame into `payload`; returns its opcode or
 * -1 when the connection ended. */
static int read_frame(struct conn *c, struct sbuf *payload) {
  uint8_t h[14];
  uint64_t len;
  size_t off = 2;

  if (read_exact(c, h, 2) != 0)
    return -1;
  len = h[1] & 0x7f;
  if (len == 126) {
    if (read_exact(c, h + 2, 2) != 0)
      return -1;
    len = (uint64_t)h[2] << 8 | h[3];
    off = 4;
  } else if (len == 127) {
    if (read_exact(c, h + 2, 8) != 0)
      return -1;
    len = 0;
    for (int i = 0; i < 8; i++)
      len = len << 8 | h[2 + i];
    off = 10;
  }
  if (len > 1u << 20)
    return -1;
  if ((h[1] & 0x80) && read_exact(c, h + off, 4) != 0)
    return -1;
  payload->len = 0;
  sb_reserve(payload, (size_t)len);
  if (read_exact(c, payload->p, (size_t)len) != 0)
    return -1;
  if (h[1] & 0x80)
    for (size_t i = 0; i < len; i++)
      payload->p[i] = (char)(payload->p[i] ^ h[off + i % 4]);
  payload->len = (size_t)len;
  payload->p[len] = '\0';
  return h[0] & 0x0f;
}

/* Reads the upgrade request and answers 101.  0 on success. */
static int upgrade(struct conn *c) {
  struct dgw_handshake_request_info info;
  char accept[DGW_WS_ACCEPT_LEN + 1];
  char why[160];
  char resp[256];
  size_t header_len = 0;
  int n;

  for (;;) {
    ssize_t r;

    if (c->in_len == sizeof c->in)
      return -1;
    if (c->ssl != NULL)
      r = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof c->in - c->in_len));
    else
      r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (r <= 0)
      return -1;
    c->in_len += (size_t)r;
    n = dgw_handshake_parse_request((const char *)c->in, c->in_len, &header_len,
                                    &info, why, sizeof why);
    if (n == DGW_OK)
      break;
    if (n != DGW_ERR_AGAIN) {
      fprintf(stderr, "bench server: bad upgrade: %s\n", why);
      return -1;
    }
  }
  memmove(c->in, c->in + header_len, c->in_len - header_len);
  c->in_len -= header_len;
  if (strstr(info.path_query, c->zstd ? "compress=zstd-stream"
                                      : "compress=zlib-stream") == NULL) {
    fprintf(stderr, "bench server: client did not ask for %s\n",
            c->zstd ? "zstd-stream" : "zlib-stream");
    return -1;
  }
  dgw_ws_accept_key(info.key, strlen(info.key), accept);
  n = snprintf(resp, sizeof resp,
               "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n\r\n",
               accept);
  return write_all(c, resp, (size_t)n);
}

/* Waits for the client's IDENTIFY (op 2), ignoring anything else. */
static int wait_identify(struct conn *c) {
  struct sbuf msg = {0};
  int op, rv = -1;

  while ((op = read_frame(c, &msg)) >= 0) {
    if (op == 8)
      break; /* the client closed */
    if (op == 1 && strstr(msg.p, "\"op\":2") != NULL) {
      rv = 0;
      break;
    }
  }
  sb_free(&msg);
  return rv;
}

/* Reads and drops whatever the client still sends, until it goes. */
static void drain(struct conn *c) {
  uint8_t buf[4096];

  while (conn_read(c, buf, sizeof buf) > 0)
    ;
}

/* Compresses `json` through `zs` and sends it as one binary frame. */
static int send_compressed(struct conn *c, struct packer *zs, struct sbuf *zbuf,
                           struct sbuf *frame, const char *json, size_t len) {
  if (packer_run(zs, zbuf, json, len) != 0)
    return -1;
  frame->len = 0;
  ws_frame(frame, 2, zbuf->p, zbuf->len);
  return write_all(c, frame->p, frame->len);
}

static int serve_paced(struct conn *c, const struct server_config *cfg) {
  struct corpus *corpus = corpus_new(cfg->seed);
  struct sbuf json = {0}, zbuf = {0}, frame = {0};
  /* Level 1: the stamp is taken before this payload is compressed, so
   * the cheapest level keeps the server's own share of the latency small
   * (a few microseconds). */
  struct packer *zs = packer_new(cfg->zstd, 1);
  int64_t start, interval = (int64_t)(1e9 / cfg->rate);
  int rv = -1;

  if (send_compressed(c, zs, &zbuf, &frame, BENCH_HELLO, strlen(BENCH_HELLO)) !=
          0 ||
      wait_identify(c) != 0)
    goto out;
  bench_ready_payload(&json);
  if (send_compressed(c, zs, &zbuf, &frame, json.p, json.len) != 0)
    goto out;
  start = now_ns() + 20000000; /* let the client settle after READY */
  for (uint64_t i = 0; i < cfg->paced_events; i++) {
    int64_t due = start + (int64_t)i * interval;
    struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
    size_t at = 0;

    json.len = 0;
    corpus_next(corpus, &json, (int64_t)i + 2, &at);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
      ;
    corpus_stamp(json.p + at, now_ns());
    if (send_compressed(c, zs, &zbuf, &frame, json.p, json.len) != 0)
      goto out;
  }
  json.len = 0;
  sb_str(&json, "{\"t\":null,\"s\":null,\"op\":7,\"d\":null}");
  if (send_compressed(c, zs, &zbuf, &frame, json.p, json.len) != 0)
    goto out;
  rv = 0;
out:
  packer_free(zs);
  sb_free(&json);
  sb_free(&zbuf);
  sb_free(&frame);
  corpus_free(corpus);
  return rv;
}

static int serve_blast(struct conn *c, const struct stream *s) {
  if (write_all(c, s->frames, s->hello_end) != 0 || wait_identify(c) != 0)
    return -1;
  return write_all(c, s->frames + s->hello_end, s->frames_len - s->hello_end);
}

static SSL_CTX *server_tls(const struct server_config *cfg) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

  if (ctx == NULL)
    return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

static void serve(const struct server_config *cfg, int lfd) {
  SSL_CTX *ctx = NULL;
  struct conn *c = malloc(sizeof *c);

  if (c == NULL)
    _exit(1);
  if (cfg->cert_file != NULL && (ctx = server_tls(cfg)) == NULL)
    _exit(1);
  for (unsigned i = 0; i < cfg->connections; i++) {
    struct pollfd pfd = {lfd, POLLIN, 0};
    int one = 1;

    if (poll(&pfd, 1, ACCEPT_TIMEOUT_MS) <= 0)
      _exit(2);
    memset(c, 0, sizeof *c);
    c->zstd = cfg->mode == SERVER_BLAST ? cfg->stream->zstd : cfg->zstd;
    c->fd = accept(lfd, NULL, NULL);
    if (c->fd < 0)
      _exit(2);
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ctx != NULL) {
      c->ssl = SSL_new(ctx);
      if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
          SSL_accept(c->ssl) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_free(c->ssl);
        close(c->fd);
        continue;
      }
    }
    if (upgrade(c) == 0) {
      if (cfg->mode == SERVER_BLAST)
        serve_blast(c, cfg->stream);
      else
        serve_paced(c, cfg);
      drain(c);
    }
    if (c->ssl != NULL)
      SSL_free(c->ssl);
    close(c->fd);
  }
  free(c);
  SSL_CTX_free(ctx);
}

pid_t server_start(const struct server_config *cfg, uint16_t *port) {
  struct sockaddr_in sa;
  socklen_t salen = sizeof sa;
  pid_t parent = getpid();
  pid_t pid;
  int one = 1;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (lfd < 0)
    die("socket: %s", strerror(errno));
  (void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(lfd, 64) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0)
    die("cannot listen on 127.0.0.1: %s", strerror(errno));
  *port = ntohs(sa.sin_port);
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0)
    die("fork: %s", strerror(errno));
  if (pid == 0) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() != parent)
      _exit(1);
    signal(SIGPIPE, SIG_IGN);
    serve(cfg, lfd);
    _exit(0);
  }
  close(lfd);
  return pid;
}

int child_wait(pid_t pid, const char *what) {
  int status = 0;

  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "dgw-bench: %s exited abnormally (status %d)\n", what,
            status);
    return -1;
  }
  return 0;
}
