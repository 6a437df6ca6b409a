/* A private redis-server per test: see redis_server.h. */
#include "config.h"

#include "redis_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXTRA 16
#define MAX_SERVERS 8

struct redis_server {
  char dir[256];
  char sock[300];
  char url[320];
  char log[300];
  char *extra[MAX_EXTRA + 1];
  pid_t pid;
};

static struct redis_server *all[MAX_SERVERS];
static int atexit_set;

static double scale(void) {
  const char *s = getenv("DGW_TEST_TIME_SCALE");
  double v = s != NULL ? atof(s) : 1.0;

  return v >= 1.0 ? v : 1.0;
}

static double mono_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void kill_all(void) {
  for (int i = 0; i < MAX_SERVERS; i++)
    if (all[i] != NULL)
      redis_server_free(all[i]);
}

/* The program to run: $DGW_REDIS_SERVER or redis-server on PATH. */
static int find_program(char *out, size_t len) {
  const char *env = getenv("DGW_REDIS_SERVER");
  const char *path = getenv("PATH");

  if (env != NULL && env[0] != '\0') {
    snprintf(out, len, "%s", env);
    return access(out, X_OK);
  }
  while (path != NULL && *path != '\0') {
    size_t n = strcspn(path, ":");

    snprintf(out, len, "%.*s/redis-server", (int)n, path);
    if (access(out, X_OK) == 0)
      return 0;
    path += n;
    if (*path == ':')
      path++;
  }
  return -1;
}

static void print_log(const struct redis_server *s) {
  FILE *f = fopen(s->log, "r");
  char line[512];

  if (f == NULL)
    return;
  fprintf(stderr, "# redis-server log (%s):\n", s->log);
  while (fgets(line, sizeof(line), f) != NULL)
    fprintf(stderr, "#   %s", line);
  fclose(f);
}

static int connect_sock(const char *path) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -1;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int reap(struct redis_server *s, double within_ms) {
  double end = mono_ms() + within_ms * scale();
  int st;

  while (mono_ms() < end) {
    pid_t p = waitpid(s->pid, &st, WNOHANG);

    if (p == s->pid || (p < 0 && errno == ECHILD)) {
      s->pid = 0;
      return 0;
    }
    usleep(5000);
  }
  return -1;
}

static int launch(struct redis_server *s) {
  char prog[1024];
  const char *argv[32 + MAX_EXTRA];
  int n = 0;
  double end;

  if (find_program(prog, sizeof(prog)) < 0) {
    fprintf(stderr,
            "# redis-server not found (PATH or $DGW_REDIS_SERVER): the Redis "
            "tests need it: apt-get install redis-server\n");
    return -1;
  }
  unlink(s->sock);
  argv[n++] = prog;
  argv[n++] = "--port";
  argv[n++] = "0";
  argv[n++] = "--unixsocket";
  argv[n++] = s->sock;
  argv[n++] = "--unixsocketperm";
  argv[n++] = "700";
  argv[n++] = "--save";
  argv[n++] = "";
  argv[n++] = "--appendonly";
  argv[n++] = "no";
  argv[n++] = "--dir";
  argv[n++] = s->dir;
  argv[n++] = "--logfile";
  argv[n++] = s->log;
  argv[n++] = "--daemonize";
  argv[n++] = "no";
  for (int i = 0; s->extra[i] != NULL; i++)
    argv[n++] = s->extra[i];
  argv[n] = NULL;
  s->pid = fork();
  if (s->pid < 0) {
    fprintf(stderr, "# fork: %s\n", strerror(errno));
    s->pid = 0;
    return -1;
  }
  if (s->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(prog, (char *const *)argv);
    _exit(127);
  }
  end = mono_ms() + 10000.0 * scale();
  while (mono_ms() < end) {
    int st, fd;
    pid_t p = waitpid(s->pid, &st, WNOHANG);

    if (p == s->pid) {
      fprintf(stderr, "# redis-server (%s) exited at start (status %d)\n", prog,
              WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
      s->pid = 0;
      print_log(s);
      return -1;
    }
    fd = connect_sock(s->sock);
    if (fd >= 0) {
      char out[64];
      const char *ping[] = {"PING"};

      close(fd);
      if (redis_server_cmd(s, out, sizeof(out), 1, ping) == 0 &&
          (strcmp(out, "+PONG") == 0 || strncmp(out, "-NOAUTH", 7) == 0))
        return 0;
    }
    usleep(10000);
  }
  fprintf(stderr, "# redis-server did not answer PING within 10 s\n");
  print_log(s);
  redis_server_kill(s);
  return -1;
}

struct redis_server *redis_server_start(const char *const *extra) {
  struct redis_server *s = calloc(1, sizeof(*s));
  const char *tmp = getenv("TMPDIR");
  int slot = -1;

  if (s == NULL)
    return NULL;
  for (int i = 0; i < MAX_SERVERS; i++)
    if (all[i] == NULL) {
      slot = i;
      break;
    }
  if (slot < 0) {
    fprintf(stderr, "# more than %d redis-servers at once\n", MAX_SERVERS);
    free(s);
    return NULL;
  }
  /* A unix socket path must fit in 108 bytes: prefer a short TMPDIR. */
  snprintf(s->dir, sizeof(s->dir), "%s/dgw-redis.XXXXXX",
           tmp != NULL && strlen(tmp) < 60 ? tmp : "/tmp");
  if (mkdtemp(s->dir) == NULL) {
    fprintf(stderr, "# mkdtemp %s: %s\n", s->dir, strerror(errno));
    free(s);
    return NULL;
  }
  snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
  snprintf(s->url, sizeof(s->url), "unix://%s", s->sock);
  snprintf(s->log, sizeof(s->log), "%s/redis.log", s->dir);
  for (int i = 0; extra != NULL && extra[i] != NULL && i < MAX_EXTRA; i++)
    s->extra[i] = strdup(extra[i]);
  all[slot] = s;
  if (!atexit_set) {
    atexit(kill_all);
    atexit_set = 1;
  }
  if (launch(s) < 0) {
    redis_server_free(s);
    return NULL;
  }
  return s;
}

const char *redis_server_url(const struct redis_server *s) {
  return s->url;
}

const char *redis_server_socket(const struct redis_server *s) {
  return s->sock;
}

pid_t redis_server_pid(const struct redis_server *s) {
  return s->pid;
}

int redis_server_kill(struct redis_server *s) {
  if (s->pid <= 0)
    return -1;
  /* No SIGCONT first: a stopped server must die without running again
   * (it would answer what waits on its sockets). */
  kill(s->pid, SIGKILL);
  return reap(s, 5000);
}

int redis_server_stop(struct redis_server *s) {
  if (s->pid <= 0)
    return -1;
  kill(s->pid, SIGCONT);
  kill(s->pid, SIGTERM);
  if (reap(s, 5000) == 0)
    return 0;
  return redis_server_kill(s);
}

int redis_server_restart(struct redis_server *s) {
  if (s->pid > 0)
    redis_server_kill(s);
  return launch(s);
}

int redis_server_pause(struct redis_server *s) {
  return s->pid > 0 ? kill(s->pid, SIGSTOP) : -1;
}

int redis_server_resume(struct redis_server *s) {
  return s->pid > 0 ? kill(s->pid, SIGCONT) : -1;
}

/* Reads one CRLF line (without it) within the deadline. */
static int read_line(int fd, char *out, size_t len, double end) {
  size_t n = 0;

  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int left = (int)(end - mono_ms());
    char c;

    if (left <= 0 || poll(&p, 1, left) <= 0)
      return -1;
    if (read(fd, &c, 1) != 1)
      return -1;
    if (c == '\n') {
      if (n > 0 && out[n - 1] == '\r')
        n--;
      out[n] = '\0';
      return 0;
    }
    if (n + 1 < len)
      out[n++] = c;
  }
}

int redis_server_cmd(const struct redis_server *s, char *out, size_t out_len,
                     int argc, const char *const *argv) {
  char buf[4096];
  size_t off = 0;
  double end = mono_ms() + 2000.0 * scale();
  int fd = connect_sock(s->sock), rc = -1;

  if (fd < 0)
    return -1;
  off += (size_t)snprintf(buf + off, sizeof(buf) - off, "*%d\r\n", argc);
  for (int i = 0; i < argc && off < sizeof(buf); i++)
    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "$%zu\r\n%s\r\n",
                            strlen(argv[i]), argv[i]);
  if (off < sizeof(buf) && write(fd, buf, off) == (ssize_t)off &&
      read_line(fd, out, out_len, end) == 0) {
    rc = 0;
    if (out[0] == '$' && strcmp(out, "$-1") != 0)
      rc = read_line(fd, out, out_len, end);
  }
  close(fd);
  return rc;
}

void redis_server_free(struct redis_server *s) {
  char cmd[600];

  if (s == NULL)
    return;
  for (int i = 0; i < MAX_SERVERS; i++)
    if (all[i] == s)
      all[i] = NULL;
  if (s->pid > 0)
    redis_server_kill(s);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
  if (strncmp(s->dir, "/", 1) == 0 && strstr(s->dir, "dgw-redis.") != NULL &&
      system(cmd) != 0)
    fprintf(stderr, "# could not remove %s\n", s->dir);
  for (int i = 0; s->extra[i] != NULL; i++)
    free(s->extra[i]);
  free(s);
}
