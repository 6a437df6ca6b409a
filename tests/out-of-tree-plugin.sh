#!/bin/sh
# Proves that an installed dgw is enough to build and load a plugin:
#   1. `make install DESTDIR=<tmp>` from a configured and built tree;
#   2. builds docs/examples/hello-plugin.c with nothing but
#      `pkg-config --cflags dgw` pointing into that copy, and -Wl,-z,defs
#      (so it can have no undefined symbol outside libc: no libdgw, no
#      host program);
#   3. checks that the installed log and stats plugins need no dgw symbol;
#   4. builds a small application with `pkg-config --cflags --libs dgw`,
#      which loads the example by path and the installed plugins by name
#      ($DGW_PLUGIN_PATH), and frees the client (their fini runs);
#   5. runs the installed dgw program: check-plugin and the demo.
#
# Usage: tests/out-of-tree-plugin.sh [BUILDDIR]    (default: .)
# Needs: make, a C compiler ($CC, default cc), pkg-config, nm.
set -eu

builddir=$(cd "${1:-.}" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dgw-out-of-tree.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
root=$tmp/root

say() { echo "out-of-tree-plugin: $*"; }
die() { say "FAIL: $*" >&2; exit 1; }

say "installing into $root"
make -s -C "$builddir" install DESTDIR="$root" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; die "make install failed"; }

pcfile=$(find "$root" -name dgw.pc | head -n 1)
[ -n "$pcfile" ] || die "no dgw.pc was installed"
pcdir=$(dirname "$pcfile")
# The .pc names the final locations; point each at the staged copy.  (A
# --define-variable applies to every package pkg-config reads, so json-c
# gets a staged include dir that does not exist: harmless, the real one
# is on the default path.)
var() { PKG_CONFIG_PATH=$pcdir pkg-config --variable="$1" dgw; }
includedir=$(var includedir)
libdir=$(var libdir)
plugindir=$(var plugindir)
pc() {
  PKG_CONFIG_PATH=$pcdir pkg-config \
    --define-variable=includedir="$root$includedir" \
    --define-variable=libdir="$root$libdir" \
    --define-variable=plugindir="$root$plugindir" "$@" dgw
}

for f in dgw/dgw.h dgw/plugin.h dgw/version.h; do
  [ -f "$root$includedir/$f" ] || die "not installed: $includedir/$f"
done
for p in log stats; do
  so=$root$plugindir/$p.so
  [ -f "$so" ] || die "not installed: $plugindir/$p.so"
  if nm -D --undefined-only "$so" | grep -q ' dgw_'; then
    die "$p.so needs dgw symbols: $(nm -D --undefined-only "$so" | grep ' dgw_')"
  fi
done
[ "$(pc --variable=plugindir)" = "$root$plugindir" ] ||
  die "pkg-config --variable=plugindir dgw is not the plugin directory"

# docs/plugins.md shows the example in full: it must be this very file.
awk '/^```c$/ { inblock = 1; block = ""; next }
     /^```$/ && inblock { inblock = 0
       if (block ~ /hello: a complete dgw plugin/) printf "%s", block }
     inblock { block = block $0 "\n" }' "$srcdir/docs/plugins.md" |
  cmp -s - "$srcdir/docs/examples/hello-plugin.c" ||
  die "the example in docs/plugins.md differs from docs/examples/hello-plugin.c"

say "building the example plugin with: $(pc --cflags)"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror -shared -fPIC $(pc --cflags) \
  -o "$tmp/hello.so" "$srcdir/docs/examples/hello-plugin.c" -Wl,-z,defs ||
  die "the example plugin does not build against the installed headers"
nm -D --defined-only "$tmp/hello.so" | grep -q ' T dgw_plugin_describe$' ||
  die "hello.so does not export dgw_plugin_describe"

cat >"$tmp/host.c" <<'EOF'
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include <dgw/dgw.h>

static int greeted, goodbye;

static void sink(enum dgw_log_level level, const char *msg, void *ud) {
  (void)ud;
  printf("  [%s] %s\n", dgw_log_level_name(level), msg);
  greeted |= strstr(msg, "plugin hello: loaded into dgw") != NULL;
  goodbye |= strstr(msg, "plugin hello: goodbye after 0 messages") != NULL;
}

static int load(struct dgw_client *c, const char *what, const char *config) {
  char why[512];

  if (dgw_client_load_plugin(c, what, config, why, sizeof(why)) != DGW_OK) {
    printf("cannot load %s: %s\n", what, why);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct event_base *base = event_base_new();
  struct dgw_options *opt = dgw_options_new();
  struct dgw_client *c;
  int err = 0, bad = 0;

  if (argc != 2 || base == NULL || opt == NULL)
    return 2;
  dgw_options_set_token(opt, "not-a-real-token");
  dgw_options_set_log(opt, sink, NULL, DGW_LOG_DEBUG);
  dgw_options_set_plugins_strict(opt, 1);
  if ((c = dgw_client_new(base, opt, NULL, NULL, &err)) == NULL) {
    printf("dgw_client_new: %s\n", dgw_strerror(err));
    return 1;
  }
  bad |= load(c, argv[1], "{\"every_ms\":1000}");
  bad |= load(c, "log", "{\"path\":\"/dev/null\"}");
  bad |= load(c, "stats", "{\"interval_ms\":1000}");
  dgw_client_free(c);
  dgw_options_free(opt);
  event_base_free(base);
  return bad || !greeted || !goodbye;
}
EOF
say "building an application with: $(pc --libs)"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror $(pc --cflags) -o "$tmp/host" \
  "$tmp/host.c" $(pc --libs) ||
  die "an application does not build against the installed dgw"

say "loading the example by path and the installed plugins by name"
LD_LIBRARY_PATH=$root$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
  DGW_PLUGIN_PATH=$root$plugindir timeout -k 5 60 "$tmp/host" "$tmp/hello.so" ||
  die "the plugins did not load and unload cleanly"

# 5. The installed dgw program finds the installed plugins and runs its
#    demo from the staged copy.
dgw=$(find "$root" -path '*/bin/dgw' -type f | head -n 1)
[ -n "$dgw" ] && [ -x "$dgw" ] || die "no dgw program was installed"
say "running the installed $dgw check-plugin and demo"
# Bounded: a hung program is killed (TERM, then KILL) instead of hanging.
DGW_PLUGIN_PATH=$root$plugindir timeout -k 5 60 "$dgw" check-plugin --quiet log ||
  die "the installed dgw cannot load the installed log plugin"
DGW_PLUGIN_PATH=$root$plugindir timeout -k 5 120 "$dgw" demo --quiet >"$tmp/demo.log" 2>&1 ||
  { cat "$tmp/demo.log" >&2; die "the installed dgw demo failed"; }
grep -q 'complete, each exactly once' "$tmp/demo.log" ||
  die "the installed dgw demo did not report exactly-once delivery"
say "ok"
