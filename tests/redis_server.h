/*
 * A private redis-server for a test: a fresh mktemp -d directory, a unix
 * socket in it, no TCP (--port 0), no persistence.  The server runs as a
 * child that dies with the test (PR_SET_PDEATHSIG) and is killed at exit
 * (atexit) on every path.  A missing redis-server is a failure with a
 * clear message, never a skip.  Every wait has a deadline (scaled by
 * DGW_TEST_TIME_SCALE).  Used by tests/test_redis*.c and the cluster tests.
 */
#ifndef DGW_TEST_REDIS_SERVER_H
#define DGW_TEST_REDIS_SERVER_H

#include <sys/types.h>

struct redis_server;

/*
 * Starts redis-server (found on PATH, or $DGW_REDIS_SERVER) with the
 * extra arguments `extra` (NULL-terminated, may be NULL; e.g.
 * {"--requirepass", "secret", NULL}) and waits until it answers PING (10 s
 * deadline).  Returns NULL after printing the reason to stderr (not found,
 * exited early: its log is printed, no answer in time).
 */
struct redis_server *redis_server_start(const char *const *extra);

/* "unix:///tmp/dgw-redis.XXXXXX/redis.sock" (add "?db=N" etc. yourself). */
const char *redis_server_url(const struct redis_server *s);

/* The socket path and the server's pid (0 while it is not running). */
const char *redis_server_socket(const struct redis_server *s);
pid_t redis_server_pid(const struct redis_server *s);

/* SIGKILL and reap (a crash: no clean shutdown; a paused server dies
 * without running again).  0, or -1 when it was not running. */
int redis_server_kill(struct redis_server *s);

/* SIGTERM and reap within a deadline (SIGKILL past it). */
int redis_server_stop(struct redis_server *s);

/* Starts it again, same directory, socket and arguments (a restarted Redis
 * is empty: no persistence), and waits for PING.  0, or -1 with a message
 * on stderr.  Kills a running one first. */
int redis_server_restart(struct redis_server *s);

/* SIGSTOP / SIGCONT: a wedged server that keeps its socket open. */
int redis_server_pause(struct redis_server *s);
int redis_server_resume(struct redis_server *s);

/* A blocking one-shot command for assertions, through redis-cli-free
 * plain RESP on the socket: sends argv and copies the reply's first line
 * (e.g. "+OK", ":3", "$5" then the bulk, "-ERR ...") into out.  Bulk
 * strings are returned without the "$n" line.  0, or -1 on I/O failure or
 * timeout (2 s). */
int redis_server_cmd(const struct redis_server *s, char *out, size_t out_len,
                     int argc, const char *const *argv);

/* Kills the server, reaps it and removes its directory.  NULL is fine. */
void redis_server_free(struct redis_server *s);

#endif /* DGW_TEST_REDIS_SERVER_H */
