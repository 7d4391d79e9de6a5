#!/usr/bin/env bash
# Starts a single-node Apache Kafka (KRaft) on 127.0.0.1:9092 from jars gathered off Maven Central.
# Idempotent: does nothing when the broker already answers. State lives in $OFFSHOOT_CACHE (outside the repo).
# `--fresh` starts from empty storage when it has to start the broker: the test suite creates a topic per
# test, and a broker that died uncleanly (a session ending) recovers every one of those partitions at its
# next start, which on 2 cores took longer than any sane wait.
set -euo pipefail
fresh=0; [ "${1:-}" = "--fresh" ] && fresh=1
here="$(cd "$(dirname "$0")" && pwd)"
cache="${OFFSHOOT_CACHE:-$HOME/.cache/offshoot}"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
libs="$cache/kafka-$version/libs"
data="$cache/kafka-data"
log="$cache/kafka.log"
port=9092

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

if listening; then echo "kafka: already up on 127.0.0.1:$port"; exit 0; fi

mkdir -p "$cache"
if [ ! -f "$libs/.complete" ]; then
  echo "kafka: gathering Kafka $version jars from Maven Central into $libs"
  rm -rf "$libs"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs"
  touch "$libs/.complete"
fi

props="$cache/kafka-server.properties"
cp "$here/server.properties" "$props"
echo "log.dirs=$data" >> "$props"

if [ "$fresh" = 1 ] && [ -d "$data" ]; then
  echo "kafka: --fresh: discarding the previous broker's storage in $data"
  rm -rf "$data"
fi

java_opts=(-Xms256m -Xmx512m -XX:+UseG1GC "-Dlog4j2.configurationFile=$here/log4j2.properties" -cp "$libs/*")
if [ ! -f "$data/meta.properties" ]; then
  echo "kafka: formatting storage in $data"
  java "${java_opts[@]}" kafka.tools.StorageTool format -t offshoot-kraft-cluster0001 -c "$props" >/dev/null
fi

echo "kafka: starting (log: $log)"
nohup java "${java_opts[@]}" kafka.Kafka "$props" >"$log" 2>&1 &
echo $! > "$cache/kafka.pid"

for _ in $(seq 1 360); do
  if listening; then echo "kafka: up on 127.0.0.1:$port"; exit 0; fi
  if ! kill -0 "$(cat "$cache/kafka.pid")" 2>/dev/null; then
    echo "kafka: broker exited during start; last lines of $log:" >&2; tail -n 30 "$log" >&2; exit 1
  fi
  sleep 0.5
done
echo "kafka: not listening after 180 s; last lines of $log:" >&2
tail -n 40 "$log" >&2
exit 1
