#!/usr/bin/env bash
# partfetch against curl: one large file from nginx on 127.0.0.1, over HTTP
# and HTTPS, streamed to /dev/null; plus binary sizes and the crate count.
# partfetch runs as a user runs it, with its default of up to 4 connections
# (-n 4), and with -n 1, curl's one connection; the table counts the
# connections each run opened, from nginx's access log.
# The small build (scripts/build-small.sh) is timed and sized too when this
# machine has what it needs. Prints a Markdown table for BENCHMARKS.md.
#
#   bench/bench.sh            # 1 GiB, 5 runs of each tool per protocol
#   RUNS=9 bench/bench.sh     # more runs
#   NGINX_WORKERS=2 bench/bench.sh   # nginx with 2 workers (default 1)
#   bench/bench.sh --quick    # 256 MiB, 1 run: checks that everything works
#   BASELINE=OLD/partfetch bench/bench.sh   # also time another build of
#                             # partfetch, as "baseline", in the same runs
#
# Run from anywhere; it builds with the repository's own target/ directory
# (the plain-HTTP build goes to target/no-tls/ so neither clobbers the other).
# Everything it makes lives in one directory under /tmp, removed on exit, and
# the nginx it starts is stopped on exit, Ctrl-C included.
set -euo pipefail

usage() {
  sed -n '2,17s/^# \{0,1\}//p' "$0"
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

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive
BASELINE=${BASELINE:-}
[ -z "$BASELINE" ] || baseline_must_run

# ---------------------------------------------------------------- tools

if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "installing openssl"
    apt-get install -y openssl >/dev/null || { apt-get update >/dev/null && apt-get install -y openssl >/dev/null; }
  else
    die "openssl is missing (apt-get install openssl)"
  fi
fi
need_tools curl cargo
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"
need_gnu_time

# ---------------------------------------------------------------- build

build_release
note "building: cargo build --release --no-default-features --target-dir target/no-tls"
cargo build --release --quiet --no-default-features --target-dir target/no-tls
BIN_NO_TLS=$REPO/target/no-tls/release/partfetch

# The small build (scripts/build-small.sh), when this machine has a compiler
# with its standard library's source; timed as a third tool.
BIN_SMALL=
BIN_SMALL_NO_TLS=
note "building: scripts/build-small.sh (with and without TLS)"
if BIN_SMALL=$(CARGO_TARGET_DIR=target/small scripts/build-small.sh --quiet 2>"$REPO/target/build-small.log") &&
  BIN_SMALL_NO_TLS=$(CARGO_TARGET_DIR=target/small-no-tls scripts/build-small.sh --quiet --no-default-features 2>>"$REPO/target/build-small.log"); then
  BIN_SMALL=$REPO/$BIN_SMALL
  BIN_SMALL_NO_TLS=$REPO/$BIN_SMALL_NO_TLS
else
  BIN_SMALL=
  BIN_SMALL_NO_TLS=
  note "no small build: $(tail -n 1 "$REPO/target/build-small.log")"
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_workdir
note "work directory: $WORK"

# Sizes of stripped copies (the release profile strips already; this makes
# sure a profile change cannot inflate the figure unnoticed).
stripped_size() {
  local copy
  copy=$(mktemp "$WORK/size.XXXXXX")
  cp "$1" "$copy"
  strip "$copy" 2>/dev/null || true
  stat -c %s "$copy"
  rm -f "$copy"
}
SIZE_TLS=$(stripped_size "$BIN")
SIZE_NO_TLS=$(stripped_size "$BIN_NO_TLS")
if [ -n "$BIN_SMALL" ]; then
  SIZE_SMALL=$(stripped_size "$BIN_SMALL")
  SIZE_SMALL_NO_TLS=$(stripped_size "$BIN_SMALL_NO_TLS")
fi

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
case $SIZE in
  1G) mib=1024 ;;
  256M) mib=256 ;;
esac
bench_data "$WORK/www/data.bin" "$mib"
BYTES=$(stat -c %s "$WORK/www/data.bin")

# How fast this machine's kernel copies right now: the file, already in the
# page cache, read to /dev/null. Every tool's figures scale with it, and on
# a shared machine it moves between runs; the report prints it.
cat "$WORK/www/data.bin" >/dev/null
copy_seconds=$( { /usr/bin/time -f '%e' cat "$WORK/www/data.bin" >/dev/null; } 2>&1 | tail -n 1)
COPY_RATE=$(awk -v b="$BYTES" -v s="$copy_seconds" 'BEGIN { if (s > 0) printf "%.1f GB/s", b / s / 1e9; else print "over 10 GB/s" }')
note "reading the file from the page cache: $COPY_RATE"

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
  for binary in "$BIN" ${BIN_SMALL:+"$BIN_SMALL"}; do
    for n in 4 1; do
      note "checking $binary -n $n's output for $url"
      if ! "$binary" -q -n "$n" --cacert "$CA" "$url" - | cmp -s - "$WORK/www/data.bin"; then
        die "$binary -n $n's output for $url differs from the file served"
      fi
    done
  done
  curl -s -o /dev/null --cacert "$CA" "$url" || die "curl failed for $url"
done

# ---------------------------------------------------------------- timing

# nginx's worker CPU, all workers together (user + sys, clock ticks;
# NGINX_WORKERS=N runs N of them): when it is busy for the whole transfer,
# the server is what bounds the wall time, for either tool.
mapfile -t NGINX_WORKER_PIDS < <(pgrep -P "$(cat "$WORK/nginx/nginx.pid")")
TICKS=$(getconf CLK_TCK)
worker_ticks() {
  local pid
  for pid in "${NGINX_WORKER_PIDS[@]}"; do
    cat "/proc/$pid/stat"
  done | awk '{ ticks += $14 + $15 } END { print ticks }'
}

# time_run, plus nginx's CPU seconds for the run appended to FILE.server
# and the connections the run opened (distinct $connection numbers in the
# access log's new lines) to FILE.conns.
time_served() {
  local out=$1 before lines
  shift
  before=$(worker_ticks)
  lines=$(wc -l <"$WORK/nginx/access.log")
  time_run "$out" "$@"
  awk -v a="$before" -v b="$(worker_ticks)" -v t="$TICKS" 'BEGIN { printf "%.2f\n", (b - a) / t }' >>"$out.server"
  tail -n +"$((lines + 1))" "$WORK/nginx/access.log" | awk '{ print $1 }' | sort -u | wc -l >>"$out.conns"
}

# The tools timed: partfetch (its default -n 4), partfetch -n 1 ("single"),
# curl, the small build when there is one, and the baseline build when one
# is given.
TOOLS=(partfetch single curl)
[ -n "$BIN_SMALL" ] && TOOLS+=(small)
[ -n "$BASELINE" ] && TOOLS+=(baseline)

# Sets CMD to TOOL's command line that fetches URL to /dev/null.
#   command_of TOOL LABEL URL
command_of() {
  local tool=$1 label=$2 url=$3
  case $tool in
    partfetch) CMD=("$BIN" -q) ;;
    single) CMD=("$BIN" -q -n 1) ;;
    small) CMD=("$BIN_SMALL" -q) ;;
    baseline) CMD=("$BASELINE" -q) ;;
    curl) CMD=(curl -s -o /dev/null) ;;
  esac
  if [ "$label" = https ]; then
    CMD+=(--cacert "$CA")
  fi
  if [ "$tool" = curl ]; then
    CMD+=("$url")
  else
    CMD+=("$url" -)
  fi
}

# Times every tool on URL, RUNS times each, each run starting with another
# tool; results in $WORK/<label>-<tool> (and .server for nginx's CPU).
time_all() {
  local label=$1 url=$2 i j tool line
  for tool in "${TOOLS[@]}"; do
    : >"$WORK/$label-$tool"
    : >"$WORK/$label-$tool.server"
    : >"$WORK/$label-$tool.conns"
  done
  for i in $(seq "$RUNS"); do
    line=
    for j in "${!TOOLS[@]}"; do
      tool=${TOOLS[$(((i + j) % ${#TOOLS[@]}))]}
      command_of "$tool" "$label" "$url"
      time_served "$WORK/$label-$tool" "${CMD[@]}"
      line+=" $tool $(tail -n 1 "$WORK/$label-$tool") nginx $(tail -n 1 "$WORK/$label-$tool.server"),"
    done
    note "$label run $i/$RUNS:${line%,} (wall s, cpu s, rss KiB; nginx cpu s)"
  done
}
time_all http "$HTTP_URL"
time_all https "$HTTPS_URL"

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
COMMIT=$(bench_commit)
CURL_VERSION=$(curl --version | awk 'NR == 1 { print $2 }')
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')
MIB=$((BYTES / 1048576))
WORKERS_TEXT="${#NGINX_WORKER_PIDS[@]} worker"
[ "${#NGINX_WORKER_PIDS[@]}" = 1 ] || WORKERS_TEXT+=s

# Prints one table row for TOOL (partfetch, single, small) and PROTO (http, https):
# the medians of column COL (1 wall, 2 CPU, 3 RSS) for TOOL and curl, their
# ratio, the target, and whether it is met. Nothing for a tool not timed.
#   row TOOL PROTO WHAT COL
row() {
  local tool=$1 proto=$2 what=$3 col=$4 pf cu r name
  [ -s "$WORK/$proto-$tool" ] || return 0
  name="${proto^^} $what"
  [ "$tool" = partfetch ] && name="$name, -n 4 (the default)"
  [ "$tool" = single ] && name="$name, -n 1"
  [ "$tool" = small ] && name="$name, small build"
  [ "$tool" = baseline ] && name="$name, baseline"
  pf=$(median "$WORK/$proto-$tool" "$col")
  cu=$(median "$WORK/$proto-curl" "$col")
  r=$(ratio "$pf" "$cu")
  case $col in
    1 | 2) echo "| $name | $pf | $cu | $r | ≤ 0.90 × curl | $(meets "$r" 0.9) |" ;;
    3) echo "| $name | $pf | $cu | $r | ≤ 8192 KiB | $(meets "$pf" 8192) |" ;;
  esac
}

# The rows of every tool's wall, CPU and peak RSS for PROTO.
rows() {
  local proto=$1 tool
  for tool in partfetch single small baseline; do
    row "$tool" "$proto" "wall (s)" 1
    row "$tool" "$proto" "CPU (s)" 2
    row "$tool" "$proto" "peak RSS (KiB)" 3
  done
  echo "| ${proto^^} connections per run (median; -n 4, -n 1) | $(median "$WORK/$proto-partfetch.conns" 1), $(median "$WORK/$proto-single.conns" 1) | $(median "$WORK/$proto-curl.conns" 1) | | | |"
}

# The rows of the small build's sizes, or why there are none.
small_size_rows() {
  if [ -z "$BIN_SMALL" ]; then
    echo "| small build (\`scripts/build-small.sh\`) | not built: $(tail -n 1 "$REPO/target/build-small.log") | | | | |"
    return
  fi
  echo "| small build (\`scripts/build-small.sh\`), with TLS | $SIZE_SMALL B ($(mb "$SIZE_SMALL")) | | | ≤ 1.80 MB | $(meets "$SIZE_SMALL" 1800000) |"
  echo "| small build, no TLS (\`scripts/build-small.sh --no-default-features\`) | $SIZE_SMALL_NO_TLS B ($(mb "$SIZE_SMALL_NO_TLS")) | | | ≤ 0.50 MB | $(meets "$SIZE_SMALL_NO_TLS" 500000) |"
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

$(date -u +%Y-%m-%d), $CORES cores ($CPU_MODEL), $(uname -sr), load $LOAD_BEFORE before and
$(cut -d' ' -f1-3 /proc/loadavg) after. partfetch $COMMIT;
curl $CURL_VERSION; nginx $NGINX_VERSION ($WORKERS_TEXT, sendfile on). Every tool writes to
/dev/null; medians of $RUNS runs each, each run started by another tool.
partfetch runs with its default \`-n 4\` (up to 4 connections, pieces when the
first one is slower than 100 MiB/s) and, in the "-n 1" rows, with one
connection as curl has; the connections row says how many each run opened. The
"small build" rows are partfetch built by \`scripts/build-small.sh\`${BASELINE:+; the
"baseline" rows are \`$BASELINE\`, timed in the same runs}.
Wall and CPU (user + sys) in seconds, peak RSS in KiB, from \`/usr/bin/time\`.
TLS negotiated: partfetch ${TLS_PF:-?}, curl ${TLS_CURL:-?}. Reading the file from
the page cache with \`cat\` ran at $COPY_RATE (a yardstick for comparing runs).

| measurement | partfetch | curl | partfetch / curl | target | met |
| --- | ---: | ---: | ---: | --- | --- |
$(rows http)
$(server_row http)
$(rows https)
$(server_row https)
| binary, stripped, with TLS | $SIZE_TLS B ($(mb "$SIZE_TLS")) | | | ≤ 1.80 MB | $(meets "$SIZE_TLS" 1800000) |
| binary, stripped, no TLS (\`--no-default-features\`) | $SIZE_NO_TLS B ($(mb "$SIZE_NO_TLS")) | | | ≤ 0.50 MB | $(meets "$SIZE_NO_TLS" 500000) |
$(small_size_rows)
| crates besides partfetch, default features | $CRATES | | | ≤ 13 | $(meets "$CRATES" 13) |
| crates besides partfetch, no TLS | $CRATES_NO_TLS | | | | |
EOF
