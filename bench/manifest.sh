#!/usr/bin/env bash
# Manifests: many small parts against curl, and an endless manifest's memory.
# Prints a Markdown table for BENCHMARKS.md.
#
#   bench/manifest.sh            # 10 000 parts, 5 runs each; 1 GiB endless
#   RUNS=9 bench/manifest.sh     # more runs
#   bench/manifest.sh --quick    # 1 000 parts, 1 run; 128 MiB endless
#
# 1. A manifest of N parts of 4 KiB, each its own file on one nginx on
#    127.0.0.1. partfetch streams the manifest to /dev/null, fetching each
#    part when due (`-j 1`) and with its default window (8 parts at once);
#    curl fetches the same N URLs in one invocation over one kept-alive
#    connection (`curl -K list`). Alternating, medians. nginx's access log
#    counts the connections each run opened.
# 2. An endless tail-recursive manifest (`block` then itself): partfetch
#    streams it into `head -c SIZE`; GNU time reports its peak RSS.
#
# Everything lives in one directory under /tmp, removed on exit; the nginx
# it starts is stopped on exit, Ctrl-C included.
set -euo pipefail

PARTS=10000
ENDLESS=1G
RUNS=${RUNS:-5}
for arg in "$@"; do
  case $arg in
    --quick) PARTS=1000 ENDLESS=128M RUNS=1 ;;
    -h | --help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) sed -n '2,18s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
need_gnu_time

build_release

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_workdir
mkdir -p "$WORK/www/p"
note "writing $PARTS parts of 4 KiB"
head -c 4096 /dev/urandom >"$WORK/part"
for i in $(seq 0 $((PARTS - 1))); do
  cp "$WORK/part" "$WORK/www/p/$i"
done
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
for i in $(seq 0 $((PARTS - 1))); do
  printf 'p/%s\n--\n' "$i"
done >"$WORK/www/many.parts"
for i in $(seq 0 $((PARTS - 1))); do
  printf 'url = "%s/p/%s"\noutput = "/dev/null"\n' "$BASE" "$i"
done >"$WORK/curl.list"
head -c 1M /dev/urandom >"$WORK/www/block"
printf 'block\n--\nendless.parts\n' >"$WORK/www/endless.parts"

nginx_start "$WORK/nginx" "$(nginx_server "$PORT" "$WORK/www" "" "" "keepalive_requests 100000;")"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# Correctness, untimed: the assembled stream is the parts in order.
expected=$((PARTS * 4096))
got=$("$BIN" -q "$BASE/many.parts" - | wc -c)
[ "$got" = "$expected" ] || die "partfetch gave $got bytes of the manifest, not $expected"

: >"$WORK/many-partfetch"
: >"$WORK/many-parallel"
: >"$WORK/many-curl"
CONNS_partfetch=0 CONNS_parallel=0 CONNS_curl=0
# Runs one of the three measurements and sets CONNS_<label> from the log.
measure() {
  local label=$1 from
  shift
  from=$(($(wc -l <"$WORK/nginx/access.log") + 1))
  time_run "$WORK/many-$label" "$@"
  printf -v "CONNS_$label" '%s' "$(tail -n +"$from" "$WORK/nginx/access.log" | awk '{ print $1 }' | sort -u | wc -l)"
}
for i in $(seq "$RUNS"); do
  if [ $((i % 2)) = 1 ]; then
    measure partfetch "$BIN" -q -j 1 "$BASE/many.parts" -
    measure parallel "$BIN" -q "$BASE/many.parts" -
    measure curl curl -s -K "$WORK/curl.list"
  else
    measure curl curl -s -K "$WORK/curl.list"
    measure parallel "$BIN" -q "$BASE/many.parts" -
    measure partfetch "$BIN" -q -j 1 "$BASE/many.parts" -
  fi
  note "run $i/$RUNS: partfetch -j1 $(tail -n 1 "$WORK/many-partfetch") ($CONNS_partfetch connections), -j8 $(tail -n 1 "$WORK/many-parallel") ($CONNS_parallel), curl $(tail -n 1 "$WORK/many-curl") ($CONNS_curl)"
done
PF_CONNS=$CONNS_partfetch
CURL_CONNS=$CONNS_curl

note "endless manifest: $ENDLESS through head -c"
# partfetch alone under GNU time, writing into a pipe whose reader stops
# after ENDLESS bytes (partfetch then ends on the broken pipe).
mkfifo "$WORK/fifo"
head -c "$ENDLESS" <"$WORK/fifo" | wc -c >"$WORK/endless-bytes" &
reader=$!
/usr/bin/time -f '%e %U %S %M' -o "$WORK/endless-pf" "$BIN" -q "$BASE/endless.parts" - >"$WORK/fifo" 2>/dev/null || true
wait "$reader" || true
ENDLESS_BYTES=$(cat "$WORK/endless-bytes")
ENDLESS_RSS=$(tail -n 1 "$WORK/endless-pf" | awk '{ print $4 }')
ENDLESS_WALL=$(tail -n 1 "$WORK/endless-pf" | awk '{ print $1 }')
nginx_stop "$WORK/nginx"

PF=$(median "$WORK/many-partfetch" 1)
CU=$(median "$WORK/many-curl" 1)
R=$(ratio "$PF" "$CU")
COMMIT=$(bench_commit)
cat <<EOT

## Manifests: $PARTS parts of 4 KiB, and an endless manifest

$(date -u +%Y-%m-%d), $(nproc) cores, load $LOAD_BEFORE before and $(cut -d' ' -f1-3 /proc/loadavg) after, partfetch $COMMIT, curl $(curl --version | awk 'NR == 1 { print $2 }'),
nginx on 127.0.0.1 (1 worker, \`keepalive_requests 100000\`). Medians of $RUNS runs,
alternating. \`bench/manifest.sh\`.

| measurement | partfetch | curl -K | partfetch / curl | target | met |
| --- | ---: | ---: | ---: | --- | --- |
| $PARTS parts, \`-j 1\`, wall (s) | $PF | $CU | $R | ≤ 1.00 × curl | $(meets "$R" 1.0) |
| $PARTS parts, \`-j 1\`, CPU (s) | $(median "$WORK/many-partfetch" 2) | $(median "$WORK/many-curl" 2) | $(ratio "$(median "$WORK/many-partfetch" 2)" "$(median "$WORK/many-curl" 2)") | | |
| $PARTS parts, \`-j 1\`, connections (last run) | $PF_CONNS | $CURL_CONNS | | partfetch: 1 | $(meets "$PF_CONNS" 1) |
| $PARTS parts, default window (8), wall (s) | $(median "$WORK/many-parallel" 1) | $CU | $(ratio "$(median "$WORK/many-parallel" 1)" "$CU") | | |
| $PARTS parts, default window (8), connections (last run) | $CONNS_parallel | | | | |
| endless manifest, $ENDLESS_BYTES bytes streamed: peak RSS (KiB) | $ENDLESS_RSS | | | ≤ 8192 KiB | $(meets "$ENDLESS_RSS" 8192) |
| endless manifest, wall (s) | $ENDLESS_WALL | | | | |
EOT
