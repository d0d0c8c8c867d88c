#!/usr/bin/env bash
# The library's download API as an embedder uses it (examples/download.rs),
# against aria2c and axel: a file from nginx on 127.0.0.1 that caps each
# request at 20 MiB/s (`limit_rate 20m`), over 4 connections. Prints a
# Markdown table for BENCHMARKS.md.
#
#   bench/download.sh            # 256 MiB, 3 runs of each tool
#   RUNS=5 bench/download.sh     # more runs
#   bench/download.sh --quick    # 64 MiB, 1 run: checks that it works
#
# 1. Whole: each tool saves the file, 4 connections, to a file on disk.
# 2. Killed and resumed: each tool is killed (SIGKILL) after 60 % of the
#    time its whole run took, then run again (aria2c saves its control
#    file every second here, `--auto-save-interval=1`, not every minute); the second run's wall time, the bytes nginx
#    sent it, and for the example the bytes it says it continued from and
#    the most pieces it fetched at once. Every file is compared with the
#    one served, and the example then reads the URL through std::io::Read
#    and compares it with the file (`--read`).
#
# Everything lives in one directory under /tmp, removed on exit; the nginx
# it starts is stopped on exit, Ctrl-C included.
set -euo pipefail

SIZE_MIB=256
RUNS=${RUNS:-3}
for arg in "$@"; do
  case $arg in
    --quick) SIZE_MIB=64 RUNS=1 ;;
    -h | --help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) sed -n '2,20s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive
need_gnu_time
need_tools aria2c:aria2 axel:axel
note "building: cargo build --release --example download"
cargo build --release --quiet --example download
EXAMPLE=$REPO/target/release/examples/download

bench_workdir
mkdir -p "$WORK/www" "$WORK/out"
bench_data "$WORK/www/data.bin" "$SIZE_MIB"
BYTES=$(stat -c %s "$WORK/www/data.bin")
PORT=$(free_port)
nginx_start "$WORK/nginx" "$(nginx_server "$PORT" "$WORK/www" "" "" "limit_rate 20m;")"
URL=http://127.0.0.1:$PORT/data.bin
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
IDEAL=$(awk -v m="$SIZE_MIB" 'BEGIN { printf "%.2f", m / 80 }')

# Sets CMD to TOOL's command that saves URL into the file OUT.
command_of() {
  local tool=$1 out=$2
  case $tool in
    example) CMD=(env CONNECTIONS=4 "$EXAMPLE" "$URL" "$out") ;;
    aria2c) CMD=(aria2c -q -c -x 4 -s 4 -k 1M --auto-save-interval=1 --allow-overwrite=false -d "$(dirname "$out")" -o "$(basename "$out")" "$URL") ;;
    axel) CMD=(axel -q -n 4 -o "$out" "$URL") ;;
  esac
}

check_file() {
  cmp -s "$1" "$WORK/www/data.bin" || die "$2: the file saved differs from the one served"
}

# Bytes nginx sent since line FROM of its access log.
sent_since() {
  tail -n +"$(($1 + 1))" "$WORK/nginx/access.log" | awk '{ s += $5 } END { print s + 0 }'
}

TOOLS=(example aria2c axel)
for tool in "${TOOLS[@]}"; do : >"$WORK/whole-$tool"; : >"$WORK/resumed-$tool"; : >"$WORK/sent-$tool"; done
: >"$WORK/example-report"
for i in $(seq "$RUNS"); do
  for j in "${!TOOLS[@]}"; do
    tool=${TOOLS[$(((i + j) % ${#TOOLS[@]}))]}
    out=$WORK/out/$tool.bin
    rm -rf "$WORK/out" && mkdir -p "$WORK/out"
    command_of "$tool" "$out"
    time_run "$WORK/whole-$tool" "${CMD[@]}"
    check_file "$out" "$tool"

    # Killed 60 % of the way through (of its own whole run's time), then
    # resumed. Not earlier: partfetch records what is on disk every 2 s
    # (aria2c, with the setting below, every second), and a kill loses at
    # most that much.
    rm -rf "$WORK/out" && mkdir -p "$WORK/out"
    "${CMD[@]}" >/dev/null 2>&1 &
    pid=$!
    sleep "$(tail -n 1 "$WORK/whole-$tool" | awk '{ print $1 * 0.6 }')"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    lines=$(wc -l <"$WORK/nginx/access.log")
    if [ "$tool" = example ]; then
      /usr/bin/time -f '%e %U %S %M' -o "$WORK/t" "${CMD[@]}" >"$WORK/report" 2>/dev/null ||
        die "the example failed to resume"
      tail -n 1 "$WORK/t" | awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' >>"$WORK/resumed-$tool"
      cat "$WORK/report" >>"$WORK/example-report"
    else
      time_run "$WORK/resumed-$tool" "${CMD[@]}"
    fi
    sent_since "$lines" >>"$WORK/sent-$tool"
    check_file "$out" "$tool (resumed)"
    note "run $i/$RUNS $tool: whole $(tail -n 1 "$WORK/whole-$tool"), resumed $(tail -n 1 "$WORK/resumed-$tool"), sent $(tail -n 1 "$WORK/sent-$tool") B"
  done
done
# The same URL through std::io::Read, compared with a saved file.
command_of example "$WORK/out/read.bin"
"${CMD[@]}" >/dev/null 2>&1
READ=$("$EXAMPLE" --read "$URL" "$WORK/out/read.bin") || die "the stream read through std::io::Read differs"
nginx_stop "$WORK/nginx"

RESUMED_FROM=$(awk '/^saved/ { gsub(/\(/, ""); print $4 }' "$WORK/example-report" | sort -g | head -n 1)
MOST=$(awk '/^saved/ { print $(NF - 3) }' "$WORK/example-report" | sort -g | head -n 1)
COMMIT=$(git --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
med() { median "$WORK/$1" "$2"; }
cat <<EOF

## \`bench/download.sh\`: the download API, $SIZE_MIB MiB, 4 connections, nginx \`limit_rate 20m\`

$(date -u +%Y-%m-%d), $(nproc) cores, partfetch $COMMIT (\`examples/download.rs\`);
$(aria2c --version | head -n 1); $(axel --version | head -n 1). Medians of $RUNS runs,
each run started by another tool; every file compared with the one served.
Ideal for 4 connections at 20 MiB/s: $IDEAL s.

| measurement | example (library) | aria2c -x 4 -s 4 | axel -n 4 | example / aria2c | example / axel |
| --- | ---: | ---: | ---: | ---: | ---: |
| whole file, wall (s) | $(med whole-example 1) | $(med whole-aria2c 1) | $(med whole-axel 1) | $(ratio "$(med whole-example 1)" "$(med whole-aria2c 1)") | $(ratio "$(med whole-example 1)" "$(med whole-axel 1)") |
| whole file, peak RSS (KiB) | $(med whole-example 3) | $(med whole-aria2c 3) | $(med whole-axel 3) | | |
| after a kill at 60 %: second run, wall (s) | $(med resumed-example 1) | $(med resumed-aria2c 1) | $(med resumed-axel 1) | $(ratio "$(med resumed-example 1)" "$(med resumed-aria2c 1)") | $(ratio "$(med resumed-example 1)" "$(med resumed-axel 1)") |
| after a kill at 60 %: bytes sent to the second run / file | $(ratio "$(med sent-example 1)" "$BYTES") | $(ratio "$(med sent-aria2c 1)" "$BYTES") | $(ratio "$(med sent-axel 1)" "$BYTES") | | |

The example's second runs continued from at least $RESUMED_FROM bytes
(\`Saved::resumed_from\`) with up to $MOST pieces at once at the least;
then: $READ.
EOF
