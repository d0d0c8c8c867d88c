#!/usr/bin/env bash
# partfetch against aria2c and axel on the cap download sites use: nginx's
# `limit_rate 20m` on 127.0.0.1, which paces each request, 256 MiB saved
# with 4, 8 and 16 connections; and, as a check that the one-stream path
# stays fast, 1 GiB from the same nginx without a cap streamed to
# /dev/null against curl. Prints Markdown tables for BENCHMARKS.md.
#
#   bench/limit-rate.sh            # 5 runs of each tool and count
#   RUNS=9 bench/limit-rate.sh     # more runs
#   bench/limit-rate.sh --quick    # 1 run: checks that everything works
#   BASELINE=OLD/partfetch bench/limit-rate.sh   # also time another build
#                                  # of partfetch, in the same runs
#
# The capped files are saved to a directory in /dev/shm (tmpfs) when there
# is one, so that the disk takes no part; each is compared with the one
# served, then removed. Each run starts with another tool.
#
# How nginx 1.22 paces a request (ngx_http_write_filter): it sends at most
# sendfile_max_chunk (2 MiB) at a time and, after each send, waits the
# time the cap allows for what it sent. A request of B MiB (B >= 2) thus
# takes ceil((B - 2) / 2) x 0.1 s at 20 MiB/s, measured here with curl
# (3 MiB 0.11 s, 8 MiB 0.31 s, 40 MiB 1.95 s); its "rate x (seconds since
# the request began + 1)" never binds before the pacing. A client with one
# request per connection over N connections takes at best
# (S/N - 2 MiB) / 20 MiB/s: the ideal below. A request of 2 MiB or less is
# not slowed at all.
set -euo pipefail

usage() {
  sed -n '2,12s/^# \{0,1\}//p' "$0"
}

CAPPED_MIB=256
FREE_MIB=1024
RUNS=${RUNS:-5}
COUNTS=(4 8 16)
for arg in "$@"; do
  case $arg in
    --quick) RUNS=1 ;;
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
need_gnu_time
BASELINE=${BASELINE:-}
[ -z "$BASELINE" ] || baseline_must_run
need_tools aria2c:aria2 axel:axel curl:curl
build_release
COMMIT=$(bench_commit)

bench_workdir
OUT=
# The files saved go to tmpfs when there is one; removed on exit too.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  OUT=$(mktemp -d /dev/shm/partfetch-limit-rate.XXXXXX)
else
  OUT=$WORK/out
  mkdir -p "$OUT"
fi
cleanup() {
  rm -rf -- "$OUT"
  bench_cleanup
}
trap cleanup EXIT

mkdir -p "$WORK/www"
bench_data "$WORK/www/capped.bin" "$CAPPED_MIB"
bench_data "$WORK/www/free.bin" "$FREE_MIB"
CAPPED_PORT=$(free_port)
FREE_PORT=$(free_port)
[ "$CAPPED_PORT" != "$FREE_PORT" ] || FREE_PORT=$(free_port)
nginx_start "$WORK/nginx" "$(nginx_server "$CAPPED_PORT" "$WORK/www" "" "" "limit_rate 20m;")
$(nginx_server "$FREE_PORT" "$WORK/www")"
CAPPED_URL=http://127.0.0.1:$CAPPED_PORT/capped.bin
FREE_URL=http://127.0.0.1:$FREE_PORT/free.bin
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

TOOLS=(partfetch aria2c axel)
[ -n "$BASELINE" ] && TOOLS+=(baseline)

# Sets CMD to TOOL's command that saves URL into $OUT/TOOL.bin over N
# connections.
command_of() {
  local tool=$1 n=$2 url=$3
  case $tool in
    partfetch) CMD=("$BIN" -q -n "$n" "$url" "$OUT/$tool.bin") ;;
    baseline) CMD=("$BASELINE" -q -n "$n" "$url" "$OUT/$tool.bin") ;;
    aria2c) CMD=(aria2c -q --file-allocation=none --allow-overwrite=true
      --auto-file-renaming=false -d "$OUT" -o "$tool.bin" -x "$n" -s "$n" -k 1M
      --min-split-size=1M "$url") ;;
    axel) CMD=(axel -q -n "$n" -o "$OUT/$tool.bin" "$url") ;;
  esac
}

# Prints a command with the paths of this run made generic.
shown() {
  echo "$*" | sed -e "s|$OUT/|OUTDIR/|g" -e "s|$OUT|OUTDIR|g" -e "s|$BIN|partfetch|g" \
    -e "s|http://127.0.0.1:[0-9]*/|http://127.0.0.1:PORT/|g" \
    ${BASELINE:+-e "s|$BASELINE|baseline|g"}
}

# ---------------------------------------------------------------- capped

for n in "${COUNTS[@]}"; do
  for tool in "${TOOLS[@]}"; do
    : >"$WORK/capped-$n-$tool"
  done
  for i in $(seq "$RUNS"); do
    line=
    for j in "${!TOOLS[@]}"; do
      tool=${TOOLS[$(((i + j) % ${#TOOLS[@]}))]}
      command_of "$tool" "$n" "$CAPPED_URL"
      time_run "$WORK/capped-$n-$tool" "${CMD[@]}"
      cmp -s "$OUT/$tool.bin" "$WORK/www/capped.bin" || die "$tool -n $n saved another file than the one served"
      rm -f "$OUT/$tool.bin" "$OUT/$tool.bin".*
      line+=" $tool $(tail -n 1 "$WORK/capped-$n-$tool" | cut -d' ' -f1) s,"
    done
    note "-n $n run $i:$line"
  done
done

# ---------------------------------------------------------------- uncapped

FREE_TOOLS=(partfetch curl)
[ -n "$BASELINE" ] && FREE_TOOLS+=(baseline)
free_command() {
  case $1 in
    partfetch) CMD=("$BIN" -q "$FREE_URL" -) ;;
    baseline) CMD=("$BASELINE" -q "$FREE_URL" -) ;;
    curl) CMD=(curl -s -o /dev/null "$FREE_URL") ;;
  esac
}
cat "$WORK/www/free.bin" >/dev/null
for tool in "${FREE_TOOLS[@]}"; do
  : >"$WORK/free-$tool"
done
for i in $(seq "$RUNS"); do
  line=
  for j in "${!FREE_TOOLS[@]}"; do
    tool=${FREE_TOOLS[$(((i + j) % ${#FREE_TOOLS[@]}))]}
    free_command "$tool"
    time_run "$WORK/free-$tool" "${CMD[@]}"
    line+=" $tool $(tail -n 1 "$WORK/free-$tool" | cut -d' ' -f1) s,"
  done
  note "uncapped run $i:$line"
done

# ---------------------------------------------------------------- report

cat <<EOF
### \`RUNS=$RUNS bench/limit-rate.sh\`: nginx \`limit_rate 20m\`, $CAPPED_MIB MiB, 4, 8 and 16 connections

$(date -u +%F), $(nproc) cores, partfetch $COMMIT; $(aria2c --version | head -n 1);
$(axel --version 2>/dev/null | head -n 1); $("$NGINX" -v 2>&1 | sed 's|.*/||;s|^|nginx |') (1 worker, sendfile on);
load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Medians of $RUNS runs, each run started
by another tool; files saved to $( [ "${OUT#/dev/shm}" != "$OUT" ] && echo "tmpfs" || echo "disk") and compared with the one served.
Ideal: (S/N - 2 MiB) / 20 MiB/s, one request a connection paced by nginx
after its first 2 MiB; S/(N x 20 MiB/s), the cap's plain share, beside it.

| connections | tool | command | wall (s) | CPU (s) | peak RSS (MiB) | wall / ideal | wall / (S/(N x 20 MiB/s)) |
| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |
EOF
for n in "${COUNTS[@]}"; do
  ideal=$(awk -v s="$CAPPED_MIB" -v n="$n" 'BEGIN { i = (s / n - 2) / 20; if (i < 0) i = 0; printf "%.3f", i }')
  share=$(awk -v s="$CAPPED_MIB" -v n="$n" 'BEGIN { printf "%.3f", s / n / 20 }')
  for tool in "${TOOLS[@]}"; do
    f=$WORK/capped-$n-$tool
    command_of "$tool" "$n" "$CAPPED_URL"
    wall=$(median "$f" 1)
    rss=$(awk -v k="$(median "$f" 3)" 'BEGIN { printf "%.1f", k / 1024 }')
    echo "| $n | $tool | \`$(shown "${CMD[@]}")\` | $wall | $(median "$f" 2) | $rss | $(ratio "$wall" "$ideal") | $(ratio "$wall" "$share") |"
  done
done
cat <<EOF

| target | measured | met |
| --- | --- | --- |
EOF
for n in "${COUNTS[@]}"; do
  ideal=$(awk -v s="$CAPPED_MIB" -v n="$n" 'BEGIN { i = (s / n - 2) / 20; if (i < 0) i = 0; printf "%.3f", i }')
  pf=$(median "$WORK/capped-$n-partfetch" 1)
  limit=$(awk -v i="$ideal" 'BEGIN { printf "%.3f", 1.05 * i }')
  echo "| -n $n: partfetch ≤ 1.05 × ideal ($ideal s) | $pf s ($(ratio "$pf" "$ideal") ×) | $(meets "$pf" "$limit") |"
  for other in aria2c axel; do
    o=$(median "$WORK/capped-$n-$other" 1)
    echo "| -n $n: partfetch ≤ $other ($o s) | $(ratio "$pf" "$o") × | $(meets "$pf" "$o") |"
  done
done
pf=$(median "$WORK/free-partfetch" 1)
curl_wall=$(median "$WORK/free-curl" 1)
limit=$(awk -v c="$curl_wall" 'BEGIN { printf "%.3f", 0.8 * c }')
cat <<EOF

Without the cap, $FREE_MIB MiB streamed to /dev/null (stdout redirected by
the script), partfetch with its default connections:

| tool | command | wall (s) | CPU (s) | peak RSS (MiB) |
| --- | --- | ---: | ---: | ---: |
EOF
for tool in "${FREE_TOOLS[@]}"; do
  f=$WORK/free-$tool
  free_command "$tool"
  rss=$(awk -v k="$(median "$f" 3)" 'BEGIN { printf "%.1f", k / 1024 }')
  echo "| $tool | \`$(shown "${CMD[@]}")\` | $(median "$f" 1) | $(median "$f" 2) | $rss |"
done
cat <<EOF

| target | measured | met |
| --- | --- | --- |
| partfetch ≤ 0.8 × curl ($curl_wall s) | $(ratio "$pf" "$curl_wall") × | $(meets "$pf" "$limit") |
EOF
