#!/usr/bin/env bash
# A real download with no internet: serves a sample directory on 127.0.0.1
# with Python's web server, then fetches a manifest whose parts include a
# dead mirror, a cached part used twice, and a nested manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/partfetch
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

mkdir -p "$work/www"
head -c 3000000 /dev/urandom > "$work/www/part1"
head -c 2000000 /dev/urandom > "$work/www/part2"
printf 'chorus\n' > "$work/www/chorus.txt"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/www/inner.parts" <<PARTS
part2
PARTS
cat > "$work/www/song.parts" <<PARTS
# part 1 is on a dead mirror first, then on the live one
http://127.0.0.1:$dead/part1
http://127.0.0.1:$port/part1
--
(*)
chorus.txt
--
inner.parts
--
(*)
chorus.txt
PARTS
(cd "$work/www" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
server=$!
for _ in $(seq 50); do python3 -c "import urllib.request as u; u.urlopen(\"http://127.0.0.1:$port/\")" 2>/dev/null && break; sleep 0.1; done

echo "serving $work/www on http://127.0.0.1:$port/"
echo "\$ partfetch --progress http://127.0.0.1:$port/song.parts song"
(cd "$work" && "$bin" --progress "http://127.0.0.1:$port/song.parts" song)
cat "$work/www/part1" "$work/www/chorus.txt" "$work/www/part2" "$work/www/chorus.txt" > "$work/expected"
if cmp -s "$work/song" "$work/expected"; then
  echo "ok: song is the $(stat -c %s "$work/song") bytes of part1 + chorus + part2 + chorus"
else
  echo "MISMATCH: song differs from the parts" >&2
  exit 1
fi
