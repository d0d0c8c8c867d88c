#!/usr/bin/env bash
# Resume and integrity: what an interruption costs, and what a checksum costs.
# Prints a Markdown table for BENCHMARKS.md.
#
#   bench/resume.sh            # 1 GiB file; checksum timing 5 runs each
#   bench/resume.sh --quick    # 256 MiB, 1 run
#
# 1. Resume overhead: partfetch downloads FILE from nginx (capped at
#    200 MiB/s so the transfer lasts long enough to be cut); at half the
#    file, nginx is stopped (the network is gone: partfetch saves its
#    control file and exits), then started again and the same command run.
#    nginx's access log gives the bytes the second run transferred.
# 2. Checksum cost: the same file streamed to /dev/null with and without
#    --checksum sha256=…, alternating, medians: from the uncapped server
#    (loopback is faster than SHA-256 itself, so this shows the hashing
#    cost whole) and from the one capped at 200 MiB/s (a fast network,
#    where the hashing overlaps the waiting).
#
# Everything lives in one directory under /tmp, removed on exit; the nginx
# it starts is stopped on exit, Ctrl-C included.
set -euo pipefail

SIZE_MIB=1024
RUNS=${RUNS:-5}
for arg in "$@"; do
  case $arg in
    --quick) SIZE_MIB=256 RUNS=1 ;;
    -h | --help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) sed -n '2,17s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
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
mkdir -p "$WORK/www" "$WORK/out"
note "writing a $SIZE_MIB MiB file"
head -c "${SIZE_MIB}M" /dev/urandom >"$WORK/www/data.bin"
BYTES=$(stat -c %s "$WORK/www/data.bin")
DIGEST=$(sha256sum "$WORK/www/data.bin" | awk '{ print $1 }')
CAPPED=$(free_port)
FAST=$(free_port)
while [ "$FAST" = "$CAPPED" ]; do FAST=$(free_port); done
servers() {
  nginx_server "$CAPPED" "$WORK/www" "" "" "limit_rate 200m;"
  nginx_server "$FAST" "$WORK/www"
}
nginx_start "$WORK/nginx" "$(servers)"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# ---------------------------------------------------------------- resume

OUT=$WORK/out/data.bin
"$BIN" -q -n 1 "http://127.0.0.1:$CAPPED/data.bin" "$OUT" 2>"$WORK/first.err" &
first=$!
for _ in $(seq 3000); do
  size=$(stat -c %s "$OUT.partfetch" 2>/dev/null || echo 0)
  [ "$size" -ge $((BYTES / 2)) ] && break
  sleep 0.01
done
nginx_stop "$WORK/nginx"
wait "$first" && die "the first run should have failed when the server went away"
# The cut is what the first run had when it ended, read once nginx and the
# run have stopped (read before, it missed what arrived meanwhile): the
# bytes its control file counts as safely on disk, where the second run
# starts.
CUT_AT=$(awk '$1 == "done" { print $2 }' "$OUT.partfetch.state")
[ -n "$CUT_AT" ] || die "no 'done' line in the control file: $(cat "$OUT.partfetch.state")"
note "first run cut at $CUT_AT bytes: $(tr '\n' ' ' <"$WORK/first.err")"
: >"$WORK/nginx/access.log"
nginx_start "$WORK/nginx" "$(servers)"
time_run "$WORK/second" "$BIN" -q -n 1 --checksum "sha256=$DIGEST" "http://127.0.0.1:$CAPPED/data.bin" "$OUT"
cmp -s "$OUT" "$WORK/www/data.bin" || die "the resumed file differs from the original"
SECOND_BYTES=$(awk '{ sum += $5 } END { print sum + 0 }' "$WORK/nginx/access.log")
RESUME_RATIO=$(ratio "$SECOND_BYTES" "$BYTES")
# The two runs together fetched at least the file; more is what the resume
# fetched again.
[ $((CUT_AT + SECOND_BYTES)) -ge "$BYTES" ] ||
  die "cut at $CUT_AT + $SECOND_BYTES fetched by the second run < $BYTES: a figure is wrong"
REFETCHED=$((CUT_AT + SECOND_BYTES - BYTES))

# ---------------------------------------------------------------- checksum

# checksum_cost LABEL URL: times both ways, RUNS times each, alternating.
checksum_cost() {
  local label=$1 url=$2 i
  : >"$WORK/$label-plain"
  : >"$WORK/$label-checked"
  for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then
      time_run "$WORK/$label-plain" "$BIN" -q -n 1 "$url" -
      time_run "$WORK/$label-checked" "$BIN" -q -n 1 --checksum "sha256=$DIGEST" "$url" -
    else
      time_run "$WORK/$label-checked" "$BIN" -q -n 1 --checksum "sha256=$DIGEST" "$url" -
      time_run "$WORK/$label-plain" "$BIN" -q -n 1 "$url" -
    fi
    note "$label run $i/$RUNS: plain $(tail -n 1 "$WORK/$label-plain"), with --checksum $(tail -n 1 "$WORK/$label-checked")"
  done
}
checksum_cost fast "http://127.0.0.1:$FAST/data.bin"
checksum_cost capped "http://127.0.0.1:$CAPPED/data.bin"
nginx_stop "$WORK/nginx"
row() {
  local label=$1 what=$2 plain checked r
  plain=$(median "$WORK/$label-plain" 1)
  checked=$(median "$WORK/$label-checked" 1)
  r=$(ratio "$checked" "$plain")
  echo "| checksum cost, $what: wall without → with (s, median of $RUNS) | $plain → $checked (× $r) | ≤ 1.10 | $(meets "$r" 1.10) |"
}

cat <<EOT

## Resume and checksum, $SIZE_MIB MiB from nginx on 127.0.0.1

$(date -u +%Y-%m-%d), $(nproc) cores, load $LOAD_BEFORE before and $(cut -d' ' -f1-3 /proc/loadavg) after, partfetch $(bench_commit). \`bench/resume.sh\`.

| measurement | value | target | met |
| --- | ---: | --- | --- |
| first run cut at (bytes on disk when it ended) | $CUT_AT of $BYTES | ~50 % | |
| bytes the second run transferred / file size | $RESUME_RATIO ($SECOND_BYTES bytes) | ≤ 0.51 | $(meets "$RESUME_RATIO" 0.51) |
| fetched twice (cut + second run − file, bytes) | $REFETCHED | | |
$(row fast "loopback, uncapped")
$(row capped "loopback at 200 MiB/s")
EOT
