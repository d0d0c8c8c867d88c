#!/usr/bin/env bash
# partfetch against curl: one large file from nginx on 127.0.0.1, over HTTP
# and HTTPS, streamed to /dev/null; plus binary sizes and the crate count.
# Prints a Markdown table for BENCHMARKS.md.
#
#   bench/bench.sh            # 1 GiB, 5 runs of each tool per protocol
#   RUNS=9 bench/bench.sh     # more runs
#   bench/bench.sh --quick    # 256 MiB, 1 run: checks that everything works
#
# Run from anywhere; it builds with the repository's own target/ directory
# (the plain-HTTP build goes to target/no-tls/ so neither clobbers the other).
# Everything it makes lives in one directory under /tmp, removed on exit, and
# the nginx it starts is stopped on exit, Ctrl-C included.
set -euo pipefail

usage() {
  sed -n '2,13s/^# \{0,1\}//p' "$0"
}

SIZE=1G
RUNS=${RUNS:-5}
for arg in "$@"; do
  case $arg in
    --quick)
      SIZE=256M
      RUNS=1
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
done
case $RUNS in
  '' | *[!0-9]* | 0) echo "error: RUNS must be a positive number, not '$RUNS'" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh

# ---------------------------------------------------------------- tools

if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "installing openssl"
    apt-get install -y openssl >/dev/null || { apt-get update >/dev/null && apt-get install -y openssl >/dev/null; }
  else
    die "openssl is missing (apt-get install openssl)"
  fi
fi
for tool in curl cargo; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"
need_gnu_time

# ---------------------------------------------------------------- build

build_release
note "building: cargo build --release --no-default-features --target-dir target/no-tls"
cargo build --release --quiet --no-default-features --target-dir target/no-tls
BIN_NO_TLS=$REPO/target/no-tls/release/partfetch

bench_workdir
note "work directory: $WORK"

# Sizes of stripped copies (the release profile strips already; this makes
# sure a profile change cannot inflate the figure unnoticed).
stripped_size() {
  local copy
  copy="$WORK/$(basename "$(dirname "$(dirname "$1")")")-partfetch"
  cp "$1" "$copy"
  strip "$copy" 2>/dev/null || true
  stat -c %s "$copy"
}
SIZE_TLS=$(stripped_size "$BIN")
SIZE_NO_TLS=$(stripped_size "$BIN_NO_TLS")

# Crates in the normal (non-build, non-dev) dependency tree, partfetch aside.
crate_count() {
  cargo tree -e normal --prefix none "$@" | awk 'NF { print $1, $2 }' | sort -u |
    grep -cv '^partfetch ' || true
}
CRATES=$(crate_count)
CRATES_NO_TLS=$(crate_count --no-default-features)

# ---------------------------------------------------------------- serving

mkdir -p "$WORK/www"
note "generating a $SIZE file (a random 16 MiB block, repeated)"
head -c 16M /dev/urandom >"$WORK/block"
case $SIZE in
  1G) blocks=64 ;;
  256M) blocks=16 ;;
esac
for _ in $(seq "$blocks"); do cat "$WORK/block"; done >"$WORK/www/data.bin"
rm "$WORK/block"
BYTES=$(stat -c %s "$WORK/www/data.bin")

bench_make_pki "$WORK/pki"
HTTP_PORT=$(free_port)
HTTPS_PORT=$(free_port)
while [ "$HTTPS_PORT" = "$HTTP_PORT" ]; do HTTPS_PORT=$(free_port); done
nginx_start "$WORK/nginx" "$(nginx_server "$HTTP_PORT" "$WORK/www")
$(nginx_server "$HTTPS_PORT" "$WORK/www" "$WORK/pki/server.pem" "$WORK/pki/server.key")"
HTTP_URL=http://127.0.0.1:$HTTP_PORT/data.bin
HTTPS_URL=https://127.0.0.1:$HTTPS_PORT/data.bin
CA=$WORK/pki/ca.pem
note "nginx on $HTTP_URL and $HTTPS_URL"

# No proxy from the environment may come between the tools and nginx.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# ---------------------------------------------------------------- correctness

# Once per protocol, untimed: partfetch's output must be the file, byte for
# byte (this also warms the page cache for both tools).
for url in "$HTTP_URL" "$HTTPS_URL"; do
  note "checking partfetch's output for $url"
  if ! "$BIN" -q --cacert "$CA" "$url" - | cmp -s - "$WORK/www/data.bin"; then
    die "partfetch's output for $url differs from the file served"
  fi
  curl -s -o /dev/null --cacert "$CA" "$url" || die "curl failed for $url"
done

# ---------------------------------------------------------------- timing

# nginx's worker CPU (user + sys, clock ticks): when it is busy for the
# whole transfer, the server is what bounds the wall time, for either tool.
NGINX_WORKER=$(pgrep -P "$(cat "$WORK/nginx/nginx.pid")" | head -n 1)
TICKS=$(getconf CLK_TCK)
worker_ticks() {
  awk '{ print $14 + $15 }' "/proc/$NGINX_WORKER/stat"
}

# time_run, plus nginx's CPU seconds for the run appended to FILE.server.
time_served() {
  local out=$1 before
  shift
  before=$(worker_ticks)
  time_run "$out" "$@"
  awk -v a="$before" -v b="$(worker_ticks)" -v t="$TICKS" 'BEGIN { printf "%.2f\n", (b - a) / t }' >>"$out.server"
}

# Times both tools on URL, RUNS times each, alternating which goes first;
# results in $WORK/<label>-partfetch and $WORK/<label>-curl.
time_both() {
  local label=$1 url=$2 i
  local pf=("$BIN" -q)
  local cu=(curl -s -o /dev/null)
  if [ "$label" = https ]; then
    pf+=(--cacert "$CA")
    cu+=(--cacert "$CA")
  fi
  : >"$WORK/$label-partfetch"
  : >"$WORK/$label-curl"
  : >"$WORK/$label-partfetch.server"
  : >"$WORK/$label-curl.server"
  for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then
      time_served "$WORK/$label-partfetch" "${pf[@]}" "$url" -
      time_served "$WORK/$label-curl" "${cu[@]}" "$url"
    else
      time_served "$WORK/$label-curl" "${cu[@]}" "$url"
      time_served "$WORK/$label-partfetch" "${pf[@]}" "$url" -
    fi
    note "$label run $i/$RUNS: partfetch $(tail -n 1 "$WORK/$label-partfetch") nginx $(tail -n 1 "$WORK/$label-partfetch.server"), curl $(tail -n 1 "$WORK/$label-curl") nginx $(tail -n 1 "$WORK/$label-curl.server") (wall s, cpu s, rss KiB; nginx cpu s)"
  done
}
time_both http "$HTTP_URL"
time_both https "$HTTPS_URL"

# What TLS each tool negotiated, from nginx's access log.
tls_of() {
  grep "\"$1/[^\"]*\"\$" "$WORK/nginx/access.log" | awk '$6 != "-" { print $6, $7 }' | tail -n 1
}
TLS_PF=$(tls_of partfetch)
TLS_CURL=$(tls_of curl)
nginx_stop "$WORK/nginx"

# ---------------------------------------------------------------- report

CORES=$(nproc)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(git --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  COMMIT="$COMMIT + uncommitted changes"
fi
CURL_VERSION=$(curl --version | awk 'NR == 1 { print $2 }')
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')
MIB=$((BYTES / 1048576))

# Prints one table row for PROTO (http, https): the medians of column COL
# (1 wall, 2 CPU, 3 RSS) for both tools, their ratio, the target, and
# whether it is met.
#   row PROTO WHAT COL
row() {
  local proto=$1 what=$2 col=$3 pf cu r
  pf=$(median "$WORK/$proto-partfetch" "$col")
  cu=$(median "$WORK/$proto-curl" "$col")
  r=$(ratio "$pf" "$cu")
  case $col in
    1 | 2) echo "| ${proto^^} $what | $pf | $cu | $r | ≤ 0.90 × curl | $(meets "$r" 0.9) |" ;;
    3) echo "| ${proto^^} $what | $pf | $cu | $r | ≤ 8192 KiB | $(meets "$pf" 8192) |" ;;
  esac
}

# The row of nginx's own CPU while serving each tool.
server_row() {
  local proto=$1 pf cu
  pf=$(median "$WORK/$proto-partfetch.server" 1)
  cu=$(median "$WORK/$proto-curl.server" 1)
  echo "| ${proto^^} nginx worker CPU while serving (s) | $pf | $cu | $(ratio "$pf" "$cu") | | |"
}

mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1e6 }'; }

cat <<EOF

## partfetch against curl, $MIB MiB from nginx on 127.0.0.1

$(date -u +%Y-%m-%d), $CORES cores ($CPU_MODEL), $(uname -sr). partfetch $COMMIT;
curl $CURL_VERSION; nginx $NGINX_VERSION (1 worker, sendfile on). Both tools write to
/dev/null; medians of $RUNS runs each, alternating which tool goes first.
Wall and CPU (user + sys) in seconds, peak RSS in KiB, from \`/usr/bin/time\`.
TLS negotiated: partfetch ${TLS_PF:-?}, curl ${TLS_CURL:-?}.

| measurement | partfetch | curl | partfetch / curl | target | met |
| --- | ---: | ---: | ---: | --- | --- |
$(row http "wall (s)" 1)
$(row http "CPU (s)" 2)
$(row http "peak RSS (KiB)" 3)
$(server_row http)
$(row https "wall (s)" 1)
$(row https "CPU (s)" 2)
$(row https "peak RSS (KiB)" 3)
$(server_row https)
| binary, stripped, with TLS | $SIZE_TLS B ($(mb "$SIZE_TLS")) | | | ≤ 1.80 MB | $(meets "$SIZE_TLS" 1800000) |
| binary, stripped, no TLS (\`--no-default-features\`) | $SIZE_NO_TLS B ($(mb "$SIZE_NO_TLS")) | | | ≤ 0.50 MB | $(meets "$SIZE_NO_TLS" 500000) |
| crates besides partfetch, default features | $CRATES | | | ≤ 13 | $(meets "$CRATES" 13) |
| crates besides partfetch, no TLS | $CRATES_NO_TLS | | | | |
EOF
