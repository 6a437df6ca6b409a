#!/usr/bin/python3
"""A worker for the redis-streams plugin: reads events from the stream in a
consumer group, deduplicates on (session, s) (delivery is at-least-once),
and acknowledges them.  Run several with the same group to share the work.

    worker.py --url unix:///run/redis.sock --name mybot --group bots \
              [--consumer NAME] [--count N] [--timeout SECONDS]

Prints one JSON line per new event: {"t":..., "s":..., "shard":...,
"session":..., "d":<the raw d>} and exits after --count events (or on
--timeout seconds without one).  Needs Debian's python3-redis.

Commands back to the gateway (issue 13, item 3) do not exist yet: this
worker only consumes.
"""
import argparse
import json
import sys

try:
    import redis
except ImportError:
    sys.exit("worker.py needs the redis module: apt-get install python3-redis")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", default="dgw")
    ap.add_argument("--group", default="workers")
    ap.add_argument("--consumer", default="worker-1")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0)
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
                    print(json.dumps({
                        "t": f[b"t"].decode(),
                        "s": int(f[b"s"]),
                        "shard": int(f[b"shard"]),
                        "session": f[b"session"].decode(),
                        "d": json.loads(f[b"d"]),
                    }), flush=True)
                r.xack(stream, a.group, entry_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
