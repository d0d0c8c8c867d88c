#!/usr/bin/env bash
# partfetch make-torrent against mktorrent (and transmission-create when
# installed): a .torrent of one 1 GiB file in the page cache, 1 MiB pieces
# for every tool. Prints a Markdown table for BENCHMARKS.md with the ratio
# partfetch / mktorrent (goal: <= 1.0).
#
#   bench/make-torrent.sh            # 1 GiB, 5 runs per tool
#   RUNS=9 bench/make-torrent.sh     # more runs
#   bench/make-torrent.sh --quick    # 256 MiB, 1 run: checks that everything works
#   PARTFETCH=path/to/partfetch bench/make-torrent.sh   # a binary built elsewhere
#
# The file is made once (a random 16 MiB block, repeated) and read whole
# before the runs, so every run reads it from the page cache: the figures
# are hashing and copying, not the disk. Each tool writes its .torrent to
# a fresh path; the order of the tools rotates from run to run. Before the
# runs, untimed: the info-hash partfetch prints must be that of
# mktorrent's torrent (the same name, piece length and no private flag
# make the same `info`), and transmission-create's is shown beside them.
# How busy the machine was besides (the load average, and the CPU time
# the tools did not use) is printed: other work shows in the wall times.
# Everything lives in one directory under /tmp, removed on exit. Needs
# bash 5 (EPOCHREALTIME), GNU time, mktorrent.
set -euo pipefail

usage() {
  sed -n '2,22s/^# \{0,1\}//p' "$0"
}

MIB=1024
RUNS=${RUNS:-5}
for arg in "$@"; do
  case $arg in
    --quick) MIB=256; RUNS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive
need_gnu_time
need_tools mktorrent:mktorrent
HAVE_TC=0
command -v transmission-create >/dev/null 2>&1 && HAVE_TC=1

if [ -z "${PARTFETCH:-}" ]; then
  build_release
  PARTFETCH=$BIN
fi

bench_workdir
ANNOUNCE=http://tracker.invalid/announce
FILE=$WORK/data.bin
note "generating a $MIB MiB file (a random 16 MiB block, repeated)"
bench_data "$FILE" "$MIB"
cat "$FILE" >/dev/null
cat "$FILE" >/dev/null

# The info-hash of a .torrent, as transmission-show or aria2c -S says it.
info_hash() {
  if command -v transmission-show >/dev/null 2>&1; then
    transmission-show "$1" | awk '$1 == "Hash:" { print $2; exit }'
  elif command -v aria2c >/dev/null 2>&1; then
    aria2c -S "$1" | awk '/^Info Hash:/ { print $3; exit }'
  else
    echo "(neither transmission-show nor aria2c to read it)"
  fi
}

# Each tool's command; the .torrent's path is added last (mktorrent
# and transmission-create take it with -o, before the file).
PARTFETCH_CMD=("$PARTFETCH" make-torrent "$FILE" --announce "$ANNOUNCE" --piece-length 1M -o)
MKTORRENT_CMD=(mktorrent -l 20 -a "$ANNOUNCE" "$FILE" -o)
TC_CMD=(transmission-create -s 1024 -t "$ANNOUNCE" "$FILE" -o)

# timed FILE COMMAND...: runs COMMAND (output to /dev/null) and appends
# "WALL CPU RSS_KB" to FILE: the wall time in milliseconds' precision
# (GNU time's %e has hundredths, too coarse for 0.4 s), CPU (user + sys)
# and peak RSS from GNU time.
timed() {
  local out=$1 t start end
  shift
  t=$(mktemp "$WORK/time.XXXXXX")
  start=$EPOCHREALTIME
  /usr/bin/time -f '%U %S %M' -o "$t" "$@" >/dev/null 2>&1 || die "failed: $*"
  end=$EPOCHREALTIME
  tail -n 1 "$t" | awk -v s="$start" -v e="$end" '{ printf "%.3f %.2f %s\n", e - s, $1 + $2, $3 }' >>"$out"
  rm -f "$t"
}

# Untimed: the info-hashes.
OURS=$("${PARTFETCH_CMD[@]}" "$WORK/check-p.torrent" | awk '{ print $1 }')
"${MKTORRENT_CMD[@]}" "$WORK/check-m.torrent" >/dev/null
THEIRS=$(info_hash "$WORK/check-m.torrent")
SHOWN_OURS=$(info_hash "$WORK/check-p.torrent")
[ "$OURS" = "$THEIRS" ] || die "partfetch's info-hash $OURS is not mktorrent's $THEIRS"
case $SHOWN_OURS in
  "$OURS" | "(neither"*) ;;
  *) die "partfetch printed $OURS, its torrent says $SHOWN_OURS" ;;
esac
TC_HASH="(not installed)"
if [ "$HAVE_TC" = 1 ]; then
  "${TC_CMD[@]}" "$WORK/check-t.torrent" >/dev/null 2>&1
  TC_HASH=$(info_hash "$WORK/check-t.torrent")
fi

TOOLS=(partfetch mktorrent)
[ "$HAVE_TC" = 1 ] && TOOLS+=(tc)
for tool in "${TOOLS[@]}"; do : >"$WORK/$tool.times"; done
# CPU time of the whole machine, in clock ticks: what the tools did not
# use of it during the runs is other work, the noise in the wall times.
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_BEFORE=$(busy_ticks)
LOOP_START=$EPOCHREALTIME
for i in $(seq "$RUNS"); do
  n=${#TOOLS[@]}
  for j in $(seq 0 $((n - 1))); do
    tool=${TOOLS[$(((i + j) % n))]}
    out=$WORK/$tool-$i.torrent
    case $tool in
      partfetch) timed "$WORK/$tool.times" "${PARTFETCH_CMD[@]}" "$out" ;;
      mktorrent) timed "$WORK/$tool.times" "${MKTORRENT_CMD[@]}" "$out" ;;
      tc) timed "$WORK/$tool.times" "${TC_CMD[@]}" "$out" ;;
    esac
    rm -f "$out"
  done
  line="run $i/$RUNS:"
  for tool in "${TOOLS[@]}"; do line="$line $tool $(tail -n 1 "$WORK/$tool.times")"; done
  note "$line (wall s, cpu s, rss KiB)"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_AFTER=$(busy_ticks)
LOOP_END=$EPOCHREALTIME
TOOLS_CPU=$(cat "$WORK"/*.times | awk '{ s += $2 } END { print s + 0 }')
OTHER=$(awk -v b="$BUSY_BEFORE" -v a="$BUSY_AFTER" -v hz="$(getconf CLK_TCK)" -v t="$TOOLS_CPU" \
  -v s="$LOOP_START" -v e="$LOOP_END" -v n="$(nproc)" 'BEGIN {
    other = (a - b) / hz - t; if (other < 0) other = 0
    printf "%.1f CPU-seconds of other work in %.1f s (%.0f %% of the cores)", other, e - s, 100 * other / ((e - s) * n)
  }')

row() {
  local tool=$1 label=$2 wall cpu rss
  wall=$(median "$WORK/$tool.times" 1)
  cpu=$(median "$WORK/$tool.times" 2)
  rss=$(awk -v k="$(median "$WORK/$tool.times" 3)" 'BEGIN { printf "%.0f", k / 1024 }')
  echo "| $label | $wall | $cpu | $rss | $(ratio "$wall" "$(median "$WORK/mktorrent.times" 1)") |"
}
P_WALL=$(median "$WORK/partfetch.times" 1)
M_WALL=$(median "$WORK/mktorrent.times" 1)
CORES=$(nproc)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(git --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  COMMIT="$COMMIT + uncommitted changes"
fi
MK_VERSION=$(mktorrent -h 2>&1 | awk 'NR == 1 { print $2 }')

cat <<EOF2
### make-torrent: $MIB MiB in the page cache, 1 MiB pieces

| tool | median wall (s) | median CPU (s) | peak RSS (MiB) | wall vs mktorrent |
| --- | ---: | ---: | ---: | ---: |
$(row partfetch "partfetch make-torrent --piece-length 1M")
$(row mktorrent "mktorrent $MK_VERSION -l 20")
$([ "$HAVE_TC" = 1 ] && row tc "transmission-create -s 1024 (one hashing thread; polls every 0.5 s)")

Goal partfetch / mktorrent ≤ 1.0: $(meets "$P_WALL" "$M_WALL") ($(ratio "$P_WALL" "$M_WALL")).
Info-hashes: partfetch $OURS, mktorrent $THEIRS (equal), transmission-create
$TC_HASH (its \`info\` has \`private 0\`: another info-hash).
$RUNS runs each, the order rotating; load average $LOAD_BEFORE before, $LOAD_AFTER after (the
runs' own threads count in it); $OTHER.
$CORES cores ($CPU_MODEL), commit $COMMIT, $(date -u +%Y-%m-%d).
EOF2
