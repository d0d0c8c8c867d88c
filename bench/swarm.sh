#!/usr/bin/env bash
# partfetch as a BitTorrent leecher against aria2c, libtorrent and rqbit, on
# the swarm test bed (tests/swarm/bed.sh: a tracker and seeders in network
# namespaces on a bridge). Every leecher downloads the same torrent, 256
# MiB of random data in 1 MiB pieces, from the same seeders in the same
# run, in turn. Prints one Markdown table per set of seeders for
# BENCHMARKS.md. Run as root (namespaces, a bridge).
#
#   bench/swarm.sh                    # 256 MiB, 3 runs of each leecher per row
#   RUNS=5 bench/swarm.sh             # more runs
#   bench/swarm.sh --quick            # 32 MiB, 1 run: checks that it works
#   PARTFETCH=path/to/partfetch bench/swarm.sh  # that binary (default:
#                                     # target/release/partfetch, built first)
#   LEECHERS="aria2c libtorrent" bench/swarm.sh # only some leechers
#   ROWS=transmission bench/swarm.sh  # only some seeder sets (both, transmission)
#
# Seeder sets: "aria2c + Transmission" (both) and "Transmission alone".
# Each leecher run gets a fresh namespace and address on the bridge (bed.sh
# leecher-ns) and a fresh empty output directory in a tmpfs; its output is
# compared with the seeded file (cmp). A run that fails or differs is
# reported with its reason and not timed; a leecher that fails does not
# stop the others. The libtorrent leecher is bench/swarm-libtorrent.py
# (python3-libtorrent, /usr/bin/python3); rqbit is `cargo install rqbit`
# ($RQBIT, else on PATH, else ~/.cargo/bin/rqbit). A missing one is
# skipped, with a line saying so. Runs longer than LIMIT seconds (default
# 300) are killed and count as failed.
#
# Owns: the bed (bed.sh up/down, with its data in a work directory under
# /tmp), output directories under /dev/shm, and the leechers it starts.
# All of it is removed on exit, Ctrl-C included.
set -euo pipefail

usage() {
  sed -n '2,31s/^# \{0,1\}//p' "$0"
}

QUICK=0
RUNS=${RUNS:-3}
LIMIT=${LIMIT:-300}
LEECHERS=${LEECHERS:-partfetch aria2c libtorrent rqbit}
ROWS=${ROWS:-both transmission}
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 RUNS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then SIZE_MIB=32; else SIZE_MIB=256; fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive
BED=$REPO/tests/swarm/bed.sh

# ---------------------------------------------------------------- checks

[ "$(id -u)" = 0 ] || die "run as root: network namespaces and a bridge need it"
for tool in ip cmp aria2c mktorrent opentracker transmission-daemon transmission-remote \
  transmission-show curl python3; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool is missing (apt-get install aria2 mktorrent opentracker transmission-daemon transmission-cli curl python3)"
done
need_gnu_time
if ip link show pfsw-br >/dev/null 2>&1; then
  die "a swarm bed is up already (bridge pfsw-br, for $(cat /sys/class/net/pfsw-br/ifalias 2>/dev/null)): another run, or a killed one: bash tests/swarm/bed.sh down"
fi

SKIPPED=()
RQBIT=${RQBIT:-$(command -v rqbit || echo "$HOME/.cargo/bin/rqbit")}
LT_PYTHON=/usr/bin/python3
wanted=()
for leecher in $LEECHERS; do
  case $leecher in
    partfetch | aria2c) wanted+=("$leecher") ;;
    libtorrent)
      if "$LT_PYTHON" -c 'import libtorrent' 2>/dev/null; then
        wanted+=(libtorrent)
      else
        SKIPPED+=("libtorrent: $LT_PYTHON cannot import libtorrent (apt-get install python3-libtorrent)")
      fi
      ;;
    rqbit)
      if [ -x "$RQBIT" ]; then
        wanted+=(rqbit)
      else
        SKIPPED+=("rqbit: not found (cargo install rqbit, or RQBIT=path)")
      fi
      ;;
    *) die "unknown leecher '$leecher' (partfetch, aria2c, libtorrent, rqbit)" ;;
  esac
done
LEECHERS=("${wanted[@]}")
for s in "${SKIPPED[@]}"; do note "SKIPPED $s"; done
[ "${#LEECHERS[@]}" -gt 0 ] || die "no leecher to run"

# ---------------------------------------------------------------- build

if [ -z "${PARTFETCH:-}" ] && [[ " ${LEECHERS[*]} " = *" partfetch "* ]]; then
  build_release
  PARTFETCH=$BIN
fi

# ---------------------------------------------------------------- cleanup

bench_workdir
OUT_ROOT=$(mktemp -d /dev/shm/partfetch-swarm.XXXXXX)
BED_UP=0
swarm_cleanup() {
  if [ "$BED_UP" = 1 ]; then
    bash "$BED" down "$WORK/bed" >/dev/null 2>&1 || true
  fi
  rm -rf -- "$OUT_ROOT"
  bench_cleanup
}
trap swarm_cleanup EXIT
note "work directory: $WORK; output directories under $OUT_ROOT"

# The binary is copied so that a rebuild by someone else cannot change it
# between runs.
if [[ " ${LEECHERS[*]} " = *" partfetch "* ]]; then
  [ -x "$PARTFETCH" ] || die "PARTFETCH=$PARTFETCH is not an executable"
  cp "$PARTFETCH" "$WORK/partfetch"
  PARTFETCH=$WORK/partfetch
fi

# ---------------------------------------------------------------- the bed

note "bringing the bed up: ${SIZE_MIB} MiB of random data, torrents, tracker, seeders"
BED_UP=1
BED_ENV=$(BED_SIZE_MIB=$SIZE_MIB BED_SMALL_MIB=0 bash "$BED" up "$WORK/bed" both)
TORRENT=$(sed -n 's/^SINGLE_TORRENT=//p' <<<"$BED_ENV")
DATA=$(sed -n 's/^SINGLE_DATA=//p' <<<"$BED_ENV")
NAME=$(sed -n 's/^SINGLE_NAME=//p' <<<"$BED_ENV")

# ---------------------------------------------------------------- leechers

# The command of LEECHER saving into DIR, as words on one line each.
leecher_cmd() {
  local dir=$2
  case $1 in
    partfetch) printf '%s\n' "$PARTFETCH" "$TORRENT" "$dir" ;;
    aria2c) printf '%s\n' aria2c -q --seed-time=0 --enable-dht=false --enable-dht6=false \
      --bt-enable-lpd=false --enable-peer-exchange=false --file-allocation=none \
      -d "$dir" "$TORRENT" ;;
    libtorrent) printf '%s\n' "$LT_PYTHON" "$REPO/bench/swarm-libtorrent.py" "$TORRENT" "$dir" ;;
    rqbit) printf '%s\n' "$RQBIT" --disable-dht --disable-dht-persistence download \
      --disable-http-api --overwrite -e -o "$dir" "$TORRENT" ;;
  esac
}

# The command line for the table, with the paths shortened.
shown_cmd() {
  local words
  mapfile -t words < <(leecher_cmd "$1" OUT)
  printf '%s ' "${words[@]}" | sed "s|$WORK/partfetch|partfetch|; s|$TORRENT|FILE.torrent|;
    s|$REPO/||; s|$RQBIT|rqbit|; s| $||"
}

# One run of LEECHER for row ROW: a fresh namespace and output directory,
# the command under GNU time and `timeout`, then the check. Appends
# "WALL CPU RSS_KIB" to $WORK/ROW-LEECHER, or a line to $WORK/ROW-LEECHER.fail.
#   leech ROW LEECHER
leech() {
  local row=$1 leecher=$2 ns dir t log status=0 why="" words
  ns=$(bash "$BED" leecher-ns "$WORK/bed" | sed -n 's/^LEECHER_NS=//p')
  dir=$(mktemp -d "$OUT_ROOT/$leecher.XXXXXX")
  t=$WORK/time.txt
  log=$WORK/run.log
  mapfile -t words < <(leecher_cmd "$leecher" "$dir")
  /usr/bin/time -f '%e %U %S %M' -o "$t" \
    timeout --kill-after=5 "$LIMIT" ip netns exec "$ns" "${words[@]}" \
    </dev/null >"$log" 2>&1 || status=$?
  cat "$log" >>"$WORK/$row-$leecher.log"
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    why="killed after ${LIMIT}s"
  elif [ "$status" != 0 ]; then
    why="exit status $status: $(tail -n 1 "$log" | sed "s|$TORRENT|FILE.torrent|g; s|$dir|OUT|g")"
  elif [ ! -f "$dir/$NAME" ]; then
    why="no output file $NAME"
  elif ! cmp -s "$dir/$NAME" "$DATA"; then
    why="output differs from the seeded file"
  fi
  bash "$BED" leecher-del "$WORK/bed" "$ns"
  rm -rf -- "$dir"
  if [ -n "$why" ]; then
    echo "$why" >>"$WORK/$row-$leecher.fail"
    note "$row $leecher: FAILED: $why"
    return 0
  fi
  tail -n 1 "$t" | awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' >>"$WORK/$row-$leecher"
  note "$row $leecher: $(tail -n 1 "$WORK/$row-$leecher") (wall s, cpu s, rss KiB)"
}

# ---------------------------------------------------------------- rows

row_title() {
  case $1 in
    both) echo "aria2c + Transmission" ;;
    transmission) echo "Transmission alone" ;;
    *) die "unknown row '$1' (both, transmission)" ;;
  esac
}

mib_of_kib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ok_runs() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

REPORT=$WORK/report.md
: >"$REPORT"
n=${#LEECHERS[@]}
for row in $ROWS; do
  title=$(row_title "$row")
  note "seeders: $title"
  bash "$BED" seeders "$WORK/bed" "$row" >/dev/null
  for leecher in "${LEECHERS[@]}"; do
    : >"$WORK/$row-$leecher"
  done
  for run in $(seq "$RUNS"); do
    for i in $(seq 0 $((n - 1))); do
      leech "$row" "${LEECHERS[$(((i + run - 1) % n))]}"
    done
  done
  {
    echo
    echo "### Seeders: $title; ${SIZE_MIB} MiB, 1 MiB pieces"
    echo
    echo "| leecher | command | runs ok | wall (s) | CPU (s) | peak RSS (MiB) | wall / fastest other |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    for leecher in "${LEECHERS[@]}"; do
      file=$WORK/$row-$leecher
      ok=$(ok_runs "$file")
      if [ "$ok" = 0 ]; then
        echo "| $leecher | \`$(shown_cmd "$leecher")\` | 0/$RUNS | failed (below) | | | |"
        continue
      fi
      wall=$(median "$file" 1)
      best=""
      for other in "${LEECHERS[@]}"; do
        [ "$other" = "$leecher" ] && continue
        [ "$(ok_runs "$WORK/$row-$other")" = 0 ] && continue
        w=$(median "$WORK/$row-$other" 1)
        if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN { exit !(a < b) }'; then
          best=$w
        fi
      done
      echo "| $leecher | \`$(shown_cmd "$leecher")\` | $ok/$RUNS | $wall | $(median "$file" 2) | $(mib_of_kib "$(median "$file" 3)") | $(if [ -n "$best" ]; then ratio "$wall" "$best"; else echo n/a; fi) |"
    done
    for leecher in "${LEECHERS[@]}"; do
      if [ -f "$WORK/$row-$leecher.fail" ]; then
        echo
        echo "$leecher failed $(wc -l <"$WORK/$row-$leecher.fail") of $RUNS run(s): $(sort "$WORK/$row-$leecher.fail" | uniq -c | sed 's/^ *\([0-9]*\) /\1 × /' | paste -sd ';' -)."
      fi
    done
  } >>"$REPORT"
done

# ---------------------------------------------------------------- report

COMMIT=$(git --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  COMMIT="$COMMIT + uncommitted changes"
fi
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mode="full"
[ "$QUICK" = 1 ] && mode="quick"
versions="$(aria2c --version | head -n 1); $(transmission-daemon --version 2>&1 | head -n 1)"
if [[ " ${LEECHERS[*]} " = *" libtorrent "* ]]; then
  versions="$versions; libtorrent $("$LT_PYTHON" -c 'import libtorrent; print(libtorrent.__version__)')"
fi
if [[ " ${LEECHERS[*]} " = *" rqbit "* ]]; then
  versions="$versions; $("$RQBIT" --version)"
fi
cat <<EOF

## BitTorrent leechers on the swarm bed (\`bench/swarm.sh\`, $mode)

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL), $(uname -sr). partfetch $COMMIT;
$versions; opentracker (Debian).
One bridge; the tracker, each seeder and each leecher run in network
namespaces of their own on it, each leecher run on a fresh address (bed.sh:
Transmission keys peers by address). The seeders: aria2c and
transmission-daemon, µTP, encryption, DHT, LPD and PEX off. Every leecher
writes into a fresh directory in a tmpfs; its file is compared with the
seeded one after each run. Medians of $RUNS run(s), rotating which leecher
goes first; wall and CPU (user + sys) in seconds and peak RSS from
\`/usr/bin/time\`. "wall / fastest other": against the fastest of the other
leechers in the same table.
EOF
for s in "${SKIPPED[@]}"; do echo; echo "Skipped: $s."; done
cat "$REPORT"
