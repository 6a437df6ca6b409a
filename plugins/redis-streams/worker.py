#!/usr/bin/python3
"""A worker for the redis-streams plugin: reads events from the stream in a
consumer group, deduplicates on (session, s) (delivery is at-least-once),
acknowledges them, and answers a "!ping" message with a presence update
sent back through the command stream of the message's shard (docs/streams.md).
Run several with the same group to share the work.

    worker.py --url unix:///run/redis.sock --name mybot --group bots \
              [--consumer NAME] [--count N] [--timeout SECONDS] \
              [--shards N] [--pong TEXT] [--no-answer]

Prints one JSON line per new event: {"t":..., "s":..., "shard":...,
"session":..., "d":<the raw d>} and exits after --count events (or on
--timeout seconds without one).  For each "!ping" it XADDs

    dgw:{NAME}:commands:SHARD  id ping-CONSUMER-MSGID  op presence
                               d {"status":"online","activities":
                                  [{"name":"PONG-MSGID","type":0}], ...}

where SHARD = (guild_id >> 22) % --shards (0 for a direct message), and
says so on stderr ("command ID to shard N").  The outcome arrives in
dgw:{NAME}:replies:ID (status ok, or status error with error and why).
Needs Debian's python3-redis.
"""
import argparse
import json
import sys

try:
    import redis
except ImportError:
    sys.exit("worker.py needs the redis module: apt-get install python3-redis")


def shard_of(d, shards):
    """The shard that owns the message's guild: (guild_id >> 22) % shards."""
    gid = d.get("guild_id")
    return (int(gid) >> 22) % shards if gid else 0


def answer_ping(r, a, d):
    """XADDs a presence update for a "!ping" message to its shard's
    command stream; returns the command's id."""
    cid = "ping-%s-%s" % (a.consumer, d.get("id", "0"))
    shard = shard_of(d, a.shards)
    presence = {"status": "online", "since": None, "afk": False,
                "activities": [{"name": "%s-%s" % (a.pong, d.get("id", "0")),
                                "type": 0}]}
    r.xadd("dgw:{%s}:commands:%d" % (a.name, shard),
           {"id": cid, "op": "presence", "shard": str(shard),
            "d": json.dumps(presence, separators=(",", ":"))})
    print("command %s to shard %d" % (cid, shard), file=sys.stderr,
          flush=True)
    return cid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", default="dgw")
    ap.add_argument("--group", default="workers")
    ap.add_argument("--consumer", default="worker-1")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--pong", default="pong")
    ap.add_argument("--no-answer", action="store_true")
    a = ap.parse_args()

    r = redis.Redis.from_url(a.url)
    stream = "dgw:{%s}:events" % a.name
    try:
        r.xgroup_create(stream, a.group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise
    seen = set()  # (session, s): a real worker keeps this bounded
    done = 0
    while a.count == 0 or done < a.count:
        got = r.xreadgroup(a.group, a.consumer, {stream: ">"}, count=100,
                           block=int(a.timeout * 1000))
        if not got:
            return 1 if a.count else 0
        for _, entries in got:
            for entry_id, f in entries:
                key = (f[b"session"], f[b"s"])
                if key not in seen:
                    seen.add(key)
                    done += 1
                    d = json.loads(f[b"d"])
                    print(json.dumps({
                        "t": f[b"t"].decode(),
                        "s": int(f[b"s"]),
                        "shard": int(f[b"shard"]),
                        "session": f[b"session"].decode(),
                        "d": d,
                    }), flush=True)
                    if (not a.no_answer and f[b"t"] == b"MESSAGE_CREATE"
                            and isinstance(d, dict)
                            and d.get("content") == "!ping"):
                        answer_ping(r, a, d)
                # Acknowledged after its command is in Redis: a worker that
                # dies before gets the message again (at-least-once).
                r.xack(stream, a.group, entry_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
