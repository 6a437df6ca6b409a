/*
 * What `dgw run` does for an operator besides running the bot
 * (docs/operations.md): a warn line naming the URL and the cause when a
 * shard loses the network, reminders while offline, giving up after
 * give_up_after_s offline, and systemd's sd_notify (READY=1, STATUS=,
 * WATCHDOG=1, STOPPING=1).
 */
#ifndef DGW_CLI_RUN_OPS_H
#define DGW_CLI_RUN_OPS_H

#include <stdint.h>

#include <dgw/dgw.h>

struct event_base;
struct run_ops;

/* How long between "still offline" reminders (seconds). */
#define RUN_OPS_REMINDER_S 300

/*
 * Makes the operations state of a run on `base` for `client`.
 * `gateway_url` is the configured URL (NULL: Discord's, learnt at start);
 * `give_up_after_s` 0 never gives up, else `give_up(arg)` is called after
 * that long offline as a whole.  `reminder_s` is the time between
 * reminders.  Returns NULL without memory.
 */
struct run_ops *run_ops_new(struct event_base *base, struct dgw_client *client,
                            const char *gateway_url, uint32_t give_up_after_s,
                            uint32_t reminder_s, void (*give_up)(void *arg),
                            void *arg);

/* A shard disconnected (the on_disconnect callback). */
void run_ops_disconnect(struct run_ops *o, struct dgw_gateway *gw,
                        const struct dgw_disconnect *info);

/* A shard is READY (or RESUMED). */
void run_ops_ready(struct run_ops *o, struct dgw_gateway *gw);

/* The client went offline (0) or came back online (1). */
void run_ops_network(struct run_ops *o, int online);

/* The run is stopping: STOPPING=1 once. */
void run_ops_stopping(struct run_ops *o);

/* 1 when the binary notifies systemd (built with libsystemd). */
int run_ops_have_systemd(void);

/* Frees `o` (NULL is a no-op) and its timers. */
void run_ops_free(struct run_ops *o);

#endif /* DGW_CLI_RUN_OPS_H */
