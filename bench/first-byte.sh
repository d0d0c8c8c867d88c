#!/usr/bin/env bash
# Time to first byte: how long each tool takes, from the command's start,
# to fetch a small file (start-up, connect, TLS handshake, request, answer,
# exit), and to hand on the first byte of a large one. partfetch against
# curl, wget and aria2c, all fetching from one nginx on 127.0.0.1, timed
# by hyperfine. Prints a Markdown table for BENCHMARKS.md.
#
#   bench/first-byte.sh           # 200 runs of each command
#   RUNS=500 bench/first-byte.sh  # more runs
#   bench/first-byte.sh --quick   # 10 runs: checks that everything works
#
# The small file goes to /dev/null (aria2c cannot write there: it writes
# into the work directory, which it is told to overwrite). The first byte
# of the large file goes through a pipe to `head -c 1`, which closes it,
# and on to `cmp` against the file's first byte, so that a run that brings
# no byte, or a wrong one, fails; the time ends when all three have
# exited. Every command timed is run first as it will be timed, and must
# succeed: no run is allowed to fail (hyperfine without
# --ignore-failure), so a failure cannot count as a fast run. Tools that
# are missing are left out of the table. Everything lives in one directory
# under /tmp, removed on exit; nginx is stopped on exit, Ctrl-C included.
set -euo pipefail

usage() {
  sed -n '2,21s/^# \{0,1\}//p' "$0"
}

RUNS=${RUNS:-200}
for arg in "$@"; do
  case $arg in
    --quick) RUNS=10 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive

need_tools curl hyperfine jq cargo
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"

build_release
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_workdir
note "work directory: $WORK"

mkdir -p "$WORK/www" "$WORK/aria2"
head -c 4096 /dev/urandom >"$WORK/www/small.bin"
note "generating a 1 GiB file"
bench_data "$WORK/www/large.bin" 1024

bench_make_pki "$WORK/pki"
CA=$WORK/pki/ca.pem
HTTP_PORT=$(free_port)
HTTPS_PORT=$(free_port)
while [ "$HTTPS_PORT" = "$HTTP_PORT" ]; do HTTPS_PORT=$(free_port); done
nginx_start "$WORK/nginx" "$(nginx_server "$HTTP_PORT" "$WORK/www")
$(nginx_server "$HTTPS_PORT" "$WORK/www" "$WORK/pki/server.pem" "$WORK/pki/server.key")"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

TOOLS=(partfetch curl)
command -v wget >/dev/null 2>&1 && TOOLS+=(wget)
command -v aria2c >/dev/null 2>&1 && TOOLS+=(aria2c)

# Prints TOOL's command line that fetches URL: to /dev/null, or (with
# "pipe") to standard output. The arguments are quoted for a shell.
#   command_line TOOL URL [pipe]
command_line() {
  local tool=$1 url=$2 pipe=${3:-}
  local out=/dev/null
  [ -n "$pipe" ] && out=-
  case $tool in
    partfetch) printf '%q -q --cacert %q %q %q' "$BIN" "$CA" "$url" "$out" ;;
    curl) printf 'curl -s --cacert %q -o %q %q' "$CA" "$out" "$url" ;;
    wget) printf 'wget -q --ca-certificate=%q -O %q %q' "$CA" "$out" "$url" ;;
    aria2c) printf 'aria2c -q --ca-certificate=%q --allow-overwrite=true -d %q -o small.bin %q' \
      "$CA" "$WORK/aria2" "$url" ;;
  esac
}

head -c 1 "$WORK/www/large.bin" >"$WORK/first.byte"

# The pipeline timed for the first byte of the large file: it succeeds only
# when the byte that reaches `head -c 1` is the file's first.
first_byte_pipeline() {
  printf '%s | head -c 1 | cmp -s - %q' "$(command_line "$1" "https://127.0.0.1:$HTTPS_PORT/large.bin" pipe)" \
    "$WORK/first.byte"
}

# Each command must work before it is timed, as it is timed. The small file
# goes to /dev/null, a device that partfetch writes in place, as it writes
# a named pipe: the command timed must exit 0 and print nothing, and the
# same command with a named pipe for /dev/null must deliver the file whole.
# (This path once broke while a check through standard output passed.) The
# large file's first byte is checked by the timed pipeline itself.
mkfifo "$WORK/fifo"
for tool in "${TOOLS[@]}"; do
  for url in "http://127.0.0.1:$HTTP_PORT/small.bin" "https://127.0.0.1:$HTTPS_PORT/small.bin"; do
    if [ "$tool" = aria2c ]; then
      rm -f "$WORK/aria2/small.bin"
      eval "$(command_line aria2c "$url")" || die "aria2c failed on $url"
      cmp -s "$WORK/aria2/small.bin" "$WORK/www/small.bin" || die "aria2c's copy of $url differs"
      continue
    fi
    timed=$(command_line "$tool" "$url")
    eval "$timed" >"$WORK/check.out" 2>&1 || die "$tool failed on $url: $(cat "$WORK/check.out")"
    [ -s "$WORK/check.out" ] && die "$tool printed on $url: $(cat "$WORK/check.out")"
    cmp -s "$WORK/fifo" "$WORK/www/small.bin" &
    reader=$!
    if ! eval "${timed//\/dev\/null/$WORK/fifo}"; then
      kill "$reader" 2>/dev/null
      die "$tool failed on $url into a named pipe"
    fi
    wait "$reader" || die "$tool's copy of $url through a named pipe differs"
  done
  if [ "$tool" != aria2c ]; then
    sh -c "$(first_byte_pipeline "$tool")" || die "$tool: the first byte of the large file is wrong or missing"
  fi
done

# Runs hyperfine on the given command lines and writes its JSON to FILE;
# SHELL_OR_NOT is "shell" for pipelines, else "none" (no shell start-up in
# the figures). A run that fails stops the benchmark: in a pipeline only
# the last command's status counts (a tool whose output pipe closes may
# exit non-zero: curl says "failed writing body"), and that command is the
# `cmp` of the first byte.
#   time_commands FILE SHELL_OR_NOT COMMAND...
time_commands() {
  local file=$1 shell=$2
  shift 2
  local args=()
  [ "$shell" = none ] && args+=(--shell=none)
  if ! hyperfine --style none --warmup 10 --runs "$RUNS" "${args[@]}" \
    --export-json "$file" "$@" >"$file.log" 2>&1; then
    cat "$file.log" >&2
    die "hyperfine failed"
  fi
}

declare -A KIND_TITLE=(
  [http]="4 KiB file over HTTP, whole command (ms)"
  [https]="4 KiB file over HTTPS, whole command (ms)"
  [first]="first byte of a 1 GiB file over HTTPS, to \`head -c 1\` and \`cmp\` (ms)"
)
KINDS=(http https first)
for kind in "${KINDS[@]}"; do
  # Each command is named after its tool (hyperfine's -n), which is how the
  # table finds its median.
  commands=()
  for tool in "${TOOLS[@]}"; do
    case $kind in
      http) commands+=(-n "$tool" "$(command_line "$tool" "http://127.0.0.1:$HTTP_PORT/small.bin")") ;;
      https) commands+=(-n "$tool" "$(command_line "$tool" "https://127.0.0.1:$HTTPS_PORT/small.bin")") ;;
      first)
        [ "$tool" = aria2c ] && continue
        commands+=(-n "$tool" "$(first_byte_pipeline "$tool")")
        ;;
    esac
  done
  note "timing: ${KIND_TITLE[$kind]}, $RUNS runs each"
  if [ "$kind" = first ]; then
    time_commands "$WORK/$kind.json" shell "${commands[@]}"
  else
    time_commands "$WORK/$kind.json" none "${commands[@]}"
  fi
done
nginx_stop "$WORK/nginx"

# Prints the median of TOOL's command for KIND in milliseconds, or nothing
# when that tool was not timed for KIND.
median_ms() {
  local kind=$1 tool=$2
  jq -r --arg t "$tool" '.results[] | select(.command == $t) | .median' "$WORK/$kind.json" |
    awk 'NF { printf "%.2f\n", $1 * 1000 }'
}

COMMIT=$(bench_commit)
versions="curl $(curl --version | awk 'NR == 1 { print $2 }')"
for tool in wget aria2c; do
  case " ${TOOLS[*]} " in
    *" $tool "*) versions+=", $tool $("$tool" --version | awk 'NR == 1 { print $3 }')" ;;
  esac
done

header="| measurement |"
rule="| --- |"
for tool in "${TOOLS[@]}"; do
  header+=" $tool |"
  rule+=" ---: |"
done
for tool in "${TOOLS[@]:1}"; do
  header+=" partfetch / $tool |"
  rule+=" ---: |"
done

cat <<EOF

## Time to first byte

$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -sr), load $LOAD_BEFORE before and $(cut -d' ' -f1-3 /proc/loadavg) after. partfetch $COMMIT; $versions;
nginx $("$NGINX" -v 2>&1 | sed 's|.*nginx/||') on 127.0.0.1. Medians of $RUNS runs of each command
(hyperfine, 10 warm-up runs; no shell but for the pipeline), in milliseconds.

$header
$rule
EOF
for kind in "${KINDS[@]}"; do
  line="| ${KIND_TITLE[$kind]} |"
  ratios=
  ours=$(median_ms "$kind" partfetch)
  for tool in "${TOOLS[@]}"; do
    theirs=$(median_ms "$kind" "$tool")
    line+=" ${theirs:-–} |"
    if [ "$tool" != partfetch ]; then
      if [ -n "$theirs" ]; then ratios+=" $(ratio "$ours" "$theirs") |"; else ratios+=" – |"; fi
    fi
  done
  echo "$line$ratios"
done
