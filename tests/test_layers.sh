#!/bin/sh
# The one-way rule of docs/architecture.md, checked on the sources: each
# file of lib/ includes only headers of its own layer or of layers below it,
# and no file of lib/ is over the size a reader can hold (800 lines; tools/
# 1,000; a plugin's .c files 800).  Prints TAP like the C tests.  A new file
# of lib/ must be given a layer below, or this test fails and names it.
srcdir=${srcdir:-.}
cd "$srcdir" || exit 1

# The layers, lowest first.  A file's layer is looked up by its base name
# without the extension, so x.c and x.h share one.
layer_of() {
  case "$1" in
  why | clock | guard | error | intents | url | policy | ratelimit | stats | \
    resolver | tls | handshake) echo 0 ;;            # leaves: no I/O state
  connector) echo 1 ;;                               # DNS, addresses, TLS
  ws | ws_frames | ws_read | ws_internal | rest | rest_answer) echo 2 ;; # WebSocket, HTTP
  redis | redis_url) echo 2 ;;                       # Redis (hiredis)
  inflate | decomp | zstd_stream) echo 3 ;;          # transport compression
  payload | field | jsonscan | commands) echo 4 ;;   # peek, fields, encoders
  session | kokoro | sender | identify | requests | pacer | lease) echo 5 ;; # cores
  identify_redis) echo 5 ;;                          # the shared queue
  gateway | gateway_internal | gateway_api | gateway_send | gateway_hold | \
    gateway_lazy | gateway_quiet) echo 6 ;; # the shard
  plugin | router) echo 7 ;;                         # loader and router
  client | client_plugins | client_stats | fanout | options | command_api | \
    session_file | client_shards | cluster | cluster_options | \
    cluster_agree) echo 8 ;; # client
  *) echo "" ;;
  esac
}

n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; }

out=""
for f in lib/*.c lib/*.h; do
  base=$(basename "$f")
  mine=$(layer_of "${base%.*}")
  if [ -z "$mine" ]; then
    out="$out
$f has no layer in tests/test_layers.sh"
    continue
  fi
  for inc in $(sed -n 's/^#include "\([a-z_]*\)\.h"$/\1/p' "$f"); do
    [ -f "lib/$inc.h" ] || continue
    theirs=$(layer_of "$inc")
    if [ -z "$theirs" ] || [ "$theirs" -gt "$mine" ]; then
      out="$out
$f (layer $mine) includes $inc.h (layer ${theirs:-none})"
    fi
  done
done
if [ -z "$out" ]; then
  ok "lib/ includes only its own layer or lower ones"
else
  not_ok "lib/ includes only its own layer or lower ones"
  echo "$out" | sed '/^$/d; s/^/# /'
fi

# The upper layers' own promises: the shard knows no client and no plugin;
# the loader and the router know no client.
if grep -l '#include "\(client\|router\|plugin\)\.h"' lib/gateway*.[ch] \
  lib/session.[ch] >/dev/null 2>&1; then
  not_ok "the shard and the session core include no client, router or plugin header"
else
  ok "the shard and the session core include no client, router or plugin header"
fi
if grep -l '#include "client\.h"' lib/plugin.[ch] lib/router.[ch] \
  >/dev/null 2>&1; then
  not_ok "the plugin loader and the router include no client header"
else
  ok "the plugin loader and the router include no client header"
fi
if grep -l '#include <event2/' lib/session.[ch] lib/policy.[ch] \
  lib/payload.[ch] lib/inflate.[ch] lib/decomp.[ch] lib/zstd_stream.[ch] >/dev/null 2>&1; then
  not_ok "the session core, policy, payload and inflate use no libevent"
else
  ok "the session core, policy, payload and inflate use no libevent"
fi

long=$(wc -l lib/*.c lib/*.h | awk '$2 != "total" && $1 > 800 {print $2 " " $1}')
if [ -z "$long" ]; then
  ok "no file of lib/ is over 800 lines"
else
  not_ok "no file of lib/ is over 800 lines"
  echo "$long" | sed 's/^/# /'
fi
long=$(find tools -name '*.[ch]' -exec wc -l {} + |
  awk '$2 != "total" && $1 > 1000 {print $2 " " $1}')
if [ -z "$long" ]; then
  ok "no file of tools/ is over 1,000 lines"
else
  not_ok "no file of tools/ is over 1,000 lines"
  echo "$long" | sed 's/^/# /'
fi
long=$(wc -l plugins/*/*.c | awk '$2 != "total" && $1 > 800 {print $2 " " $1}')
if [ -z "$long" ]; then
  ok "no .c file of plugins/ is over 800 lines"
else
  not_ok "no .c file of plugins/ is over 800 lines"
  echo "$long" | sed 's/^/# /'
fi
echo "1..$n"
exit 0
