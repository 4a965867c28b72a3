#!/usr/bin/env bash
# The stack in containers, end to end (compose.yaml, Dockerfile, docs/deploy.md):
#  1. makes sure a Docker engine runs (installs docker.io + docker-compose and starts
#     dockerd when missing) and that debian:bookworm-slim exists (scripts/base-image);
#  2. builds the images and brings the stack up under a project name of its own;
#  3. from the host: register, login, friends, 1:1 and group messages across the two
#     edges, a live push from one edge to the other;
#     checks the bus runs CURVE: an edge without the key is refused, never listed;
#  4. scales msg to 3 and shows the broker spreading SENDs over all three containers;
#     Prometheus's API reports up == 1 for all 10 imbus containers; imbus-ctl status
#     works inside a broker container;
#  5. under a running send load: docker kill one msg container, then the active broker
#     (broker-a): broker-b takes over and the load goes on; broker-a, started again,
#     stands by (passive); every message a sender saw acknowledged is in MariaDB
#     exactly once;
#  6. tears down the containers, networks and volumes it made.
# Usage: compose_test.sh BIN_DIR (the host's imbus client, e.g. build/bin).
# IMBUS_DOCKER_REUSE_IMAGES=1 skips `compose build` when the images exist (development).
# Exit 77 (ctest: skipped) only where no Docker engine can run at all.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:?usage: compose_test.sh BIN_DIR}" && pwd)
source "$ROOT/scripts/lib/common.sh"
cd "$ROOT"

WORK=$(mktemp -d /tmp/imbus-compose.XXXXXX)
PROJECT=imbustest$$
DOCKERD_PID=
LOAD_PIDS=()
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
fail() { printf '\033[1;31mFAIL:\033[0m %s\n' "$*" >&2; exit 1; }

skip() {
  printf '\n\033[1;33m!!!!!!!! SKIPPED: %s !!!!!!!!\033[0m\n\n' "$*" >&2
  exit 77
}

# --- 1. engine --------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    command -v docker >/dev/null || skip "no docker and not root to install docker.io"
    skip "no Docker engine answers and this user cannot start one (needs root)"
  fi
  ensure_packages docker.io docker-compose
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $WORK/dockerd.log)"
    dockerd >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 ||
      skip "dockerd cannot run on this machine: $(tail -3 "$WORK/dockerd.log" | tr '\n' ' ')"
  fi
fi
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
else
  [ "$(id -u)" -eq 0 ] || fail "docker-compose is missing (apt-get install docker-compose)"
  ensure_packages docker-compose
  COMPOSE=(docker-compose)
fi
log "engine: $(docker version -f '{{.Server.Version}}'), compose: ${COMPOSE[*]}"

# Below the kernel's ephemeral range (32768+ by default), so no outgoing
# connection of another test can hold the port when docker-proxy binds it
# (CI once lost a run to that); and no socket of any state may use it.
free_port() {
  local p lo
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$lo" -gt 21000 ] || lo=61000
  for p in $(shuf -i 20000-$((lo - 1)) -n 50); do
    ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return 0; }
  done
  fail "no free port"
}
export IMBUS_EDGE1_PORT IMBUS_EDGE2_PORT IMBUS_WEB1_PORT IMBUS_WEB2_PORT IMBUS_PROMETHEUS_PORT
IMBUS_EDGE1_PORT=$(free_port)
IMBUS_EDGE2_PORT=$(free_port)
[ "$IMBUS_EDGE1_PORT" != "$IMBUS_EDGE2_PORT" ] || IMBUS_EDGE2_PORT=$((IMBUS_EDGE1_PORT + 1))
IMBUS_WEB1_PORT=$(free_port)
IMBUS_WEB2_PORT=$(free_port)
while [ "$IMBUS_WEB1_PORT" = "$IMBUS_WEB2_PORT" ] || [ "$IMBUS_WEB1_PORT" = "$IMBUS_EDGE1_PORT" ] ||
      [ "$IMBUS_WEB1_PORT" = "$IMBUS_EDGE2_PORT" ] || [ "$IMBUS_WEB2_PORT" = "$IMBUS_EDGE1_PORT" ] ||
      [ "$IMBUS_WEB2_PORT" = "$IMBUS_EDGE2_PORT" ]; do
  IMBUS_WEB1_PORT=$(free_port)
  IMBUS_WEB2_PORT=$(free_port)
done
IMBUS_PROMETHEUS_PORT=$(free_port)
while [ "$IMBUS_PROMETHEUS_PORT" = "$IMBUS_EDGE1_PORT" ] || [ "$IMBUS_PROMETHEUS_PORT" = "$IMBUS_EDGE2_PORT" ] ||
      [ "$IMBUS_PROMETHEUS_PORT" = "$IMBUS_WEB1_PORT" ] || [ "$IMBUS_PROMETHEUS_PORT" = "$IMBUS_WEB2_PORT" ]; do
  IMBUS_PROMETHEUS_PORT=$(free_port)
done
export IMBUS_PUBLISH_IP=127.0.0.1 IMBUS_PUBLIC_HOST=127.0.0.1
export IMBUS_DB_PASSWORD="test-$RANDOM-pw"
# Low Argon2 cost: the test logs in often; production keeps the default.
export IMBUS_PWHASH_OPS=1 IMBUS_PWHASH_MEM=8192
E1=127.0.0.1:$IMBUS_EDGE1_PORT
E2=127.0.0.1:$IMBUS_EDGE2_PORT

dc() { "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/compose.yaml" "$@"; }

cleanup() {
  local rc=$?
  set +e
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    echo "--- container logs (last 30 lines each) ---" >&2
    dc logs --no-color --tail 30 >&2 2>&1
  fi
  dc down -v --remove-orphans >/dev/null 2>&1
  local left
  left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"; docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"; docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")
  [ -z "$left" ] || echo "warning: left behind: $left" >&2
  if [ -n "$DOCKERD_PID" ]; then kill "$DOCKERD_PID"; wait "$DOCKERD_PID" 2>/dev/null; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

# --- 2. images and stack ----------------------------------------------------------------
step "base image"
scripts/base-image
step "building images"
ensure_web_deps  # the web stage takes web/node_modules from here (Dockerfile)
t0=$SECONDS
if [ -n "${IMBUS_DOCKER_REUSE_IMAGES:-}" ] && docker image inspect "imbus:${IMBUS_TAG:-latest}" "imbus-mariadb:${IMBUS_TAG:-latest}" "imbus-prometheus:${IMBUS_TAG:-latest}" >/dev/null 2>&1; then
  log "IMBUS_DOCKER_REUSE_IMAGES: using the images already built"
else
  dc build >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; fail "image build failed"; }
  # untagged imbus stage images older rebuilds left behind (docs/deploy.md, "Disk after rebuilds")
  docker image prune -f --filter label=org.imbus.image --filter until=2h >/dev/null 2>&1 || true
  log "images built in $((SECONDS - t0)) s"
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^imbus(-mariadb|-prometheus)?:' >&2
if docker run --rm --entrypoint sh "imbus:${IMBUS_TAG:-latest}" -c 'command -v g++ cc c++ cmake' >/dev/null 2>&1; then
  fail "the runtime image contains a compiler"
fi
[ "$(docker run --rm "imbus:${IMBUS_TAG:-latest}" id -u)" != 0 ] || fail "the runtime image runs as root"

step "bringing the stack up"
t0=$SECONDS
dc up -d >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "compose up failed"; }
wait_healthy() {  # SERVICE...: every container of these services reports healthy
  local s id deadline=$((SECONDS + 180))
  for s in "$@"; do
    for id in $(dc ps -q "$s"); do
      until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]; do
        [ $SECONDS -lt $deadline ] || fail "$s ($id) not healthy in time"
        sleep 1
      done
    done
  done
}
wait_healthy mariadb broker-a broker-b edge1 edge2
imbus() { "$BIN/imbus" --timeout-ms 8000 "$@"; }
# The edges are healthy; wait until the actors are serving (auth answers).
deadline=$((SECONDS + 120))
until imbus --server "$E1" register probe --password probe-pw >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || fail "auth never answered through edge1"
  sleep 1
done
log "stack serving after $((SECONDS - t0)) s"
dc ps >&2
# The web app ships in the image and each edge serves it, with its msgpack module.
for port in "$IMBUS_WEB1_PORT" "$IMBUS_WEB2_PORT"; do
  grep -q '<title>imbus chat</title>' <<<"$(curl -fsS "http://127.0.0.1:$port/")" ||
    fail "no web app on port $port"
  curl -fsS -o /dev/null "http://127.0.0.1:$port/node_modules/@msgpack/msgpack/dist.esm/index.mjs" ||
    fail "the web app's msgpack module is not served on port $port"
done
log "web app served on $IMBUS_WEB1_PORT and $IMBUS_WEB2_PORT"

# --- 3. client scenario across the two edges ----------------------------------------
step "client scenario"
as() {  # as USER EDGE imbus-args...: one user's token lives in its own config dir
  local user=$1 edge=$2
  shift 2
  XDG_CONFIG_HOME="$WORK/$user" imbus --server "$edge" "$@"
}
for u in alice bob carol; do imbus --server "$E1" register "$u" --password "pw-$u-123" >/dev/null; done
as alice "$E1" login alice --password pw-alice-123 --save >/dev/null
as bob "$E2" login bob --password pw-bob-123 --save >/dev/null
as carol "$E1" login carol --password pw-carol-123 --save >/dev/null
routes=$(imbus --server "$E1" route)
grep -q "$E1" <<<"$routes" && grep -q "$E2" <<<"$routes" || fail "route does not list both edges: $routes"
as alice "$E1" friends add bob >/dev/null
grep -q alice <<<"$(as bob "$E2" friends requests)" || fail "bob does not see alice's friend request"
as bob "$E2" friends accept alice >/dev/null
grep -q alice <<<"$(as bob "$E2" friends)" || fail "bob's friends lack alice"

# A live push from edge1 to a chat on edge2.
(sleep 20 | XDG_CONFIG_HOME="$WORK/bob" "$BIN/imbus" --server "$E2" chat --to alice >"$WORK/bob-chat.out" 2>&1) &
chat_pid=$!
for _ in $(seq 1 100); do grep -q "logged in" "$WORK/bob-chat.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^sent d:' <<<"$(as alice "$E1" send bob "hello across edges")" || fail "1:1 send failed"
for _ in $(seq 1 100); do grep -q "hello across edges" "$WORK/bob-chat.out" && break; sleep 0.1; done
grep -q "hello across edges" "$WORK/bob-chat.out" || { cat "$WORK/bob-chat.out" >&2; fail "bob (edge2) did not get alice's message (edge1) live"; }
pkill -P "$chat_pid" 2>/dev/null || true
kill "$chat_pid" 2>/dev/null || true
log "1:1 live push edge1 -> edge2: ok"

gid=$(as alice "$E1" groups create lunch | sed -n 's/.*(gid \([0-9]*\)).*/\1/p')
[ -n "$gid" ] || fail "groups create printed no gid"
as bob "$E2" groups join "$gid" >/dev/null
as carol "$E1" groups join "$gid" >/dev/null
grep -q "^sent g:$gid " <<<"$(as carol "$E1" send --group "$gid" "group hello")" || fail "group send failed"
grep -q "group hello" <<<"$(as bob "$E2" sync)" || fail "bob (edge2) did not get the group message"
grep -q "group hello" <<<"$(as alice "$E1" sync)" || fail "alice (edge1) did not get the group message"
log "group message edge1 -> both edges: ok"

# --- 3b. the broker pair; the bus runs CURVE: a peer without the key cannot join ----
ACTIVE=broker-a  # the broker that serves: stats() asks it
stats() { dc exec -T "$ACTIVE" imbus-broker --stats tcp://127.0.0.1:5555; }
broker_state() {  # SERVICE: the pair state on the second line of its STATS
  dc exec -T "$1" imbus-broker --stats tcp://127.0.0.1:5555 2>/dev/null | awk '$1 == "broker" { print $2 }'
}
wait_state() {  # SERVICE STATE SECONDS
  local deadline=$((SECONDS + $3))
  until [ "$(broker_state "$1")" = "$2" ]; do
    [ $SECONDS -lt $deadline ] || { dc exec -T "$1" imbus-broker --stats tcp://127.0.0.1:5555 >&2; fail "$1 is not $2 after $3 s"; }
    sleep 0.5
  done
}
step "broker pair"
wait_state broker-a active 20
wait_state broker-b passive 20
log "broker-a active, broker-b passive"
step "CURVE on the bus"
for b in broker-a broker-b; do
  # grep -c reads to the end: grep -q would quit early and the SIGPIPE fail the pipeline
  dc logs "$b" 2>&1 | grep -c "CURVE public key" >/dev/null || fail "$b did not turn CURVE on"
done
rogue=$(docker run -d --network "${PROJECT}_default" "imbus:${IMBUS_TAG:-latest}" \
  imbus-edge --name rogue --listen 0.0.0.0:7999 --broker tcp://broker-a:5555)
deadline=$((SECONDS + 30))
until stats | grep -c "refused_peers [1-9]" >/dev/null; do
  [ $SECONDS -lt $deadline ] || { stats >&2; docker rm -f "$rogue" >/dev/null; fail "the broker never refused the keyless edge"; }
  sleep 1
done
stats | grep -c "rogue" >/dev/null && { docker rm -f "$rogue" >/dev/null; fail "a keyless edge joined the bus"; }
docker rm -f "$rogue" >/dev/null
log "a peer without the CURVE key was refused ($(stats | grep -o 'refused_peers [0-9]*')) and never listed"

# --- 4. scale msg to 3 --------------------------------------------------------------
msg_hosts() { stats | awk '$1 == "worker" && $3 == "msg" { split($2, a, "/"); print a[1] }' | sort -u; }
served_by_host() {  # host served-total, for msg workers
  stats | awk '$1 == "worker" && $3 == "msg" { split($2, a, "/"); s[a[1]] += $7 } END { for (h in s) print h, s[h] }' | sort
}
step "scaling msg to 3"
dc up -d --scale msg=3 --no-recreate >"$WORK/scale.log" 2>&1 || { cat "$WORK/scale.log" >&2; fail "scale failed"; }
deadline=$((SECONDS + 90))
until [ "$(msg_hosts | wc -l)" -ge 3 ]; do
  [ $SECONDS -lt $deadline ] || { stats >&2; fail "the broker never saw 3 msg containers"; }
  sleep 1
done
# The broker gives each conversation to one msg worker (docs/bus.md, "Conversation
# ownership"), so the sends go to 20 conversations (groups of alice's): 6 workers in
# 3 containers, each container misses all 20 with probability (2/3)^20 ~ 0.0003.
spread_gids=()
for i in $(seq 1 20); do
  spread_gids+=("$(as alice "$E1" groups create "spread$i" | sed -n 's/.*(gid \([0-9]*\)).*/\1/p')")
done
served_by_host >"$WORK/served.before"
for i in $(seq 1 60); do
  as alice "$E1" send --group "${spread_gids[$((i % 20))]}" "spread $i" --cmid "spread-$i" \
    >/dev/null || fail "send $i failed"
done
served_by_host >"$WORK/served.after"
echo "msg containers, SENDs served before -> after 60 sends to 20 conversations:" >&2
join "$WORK/served.before" "$WORK/served.after" >&2
busy=$(join "$WORK/served.before" "$WORK/served.after" | awk '$3 > $2' | wc -l)
[ "$busy" -ge 3 ] || fail "only $busy of the 3 msg containers served the 60 sends"
log "all 3 msg containers served requests"

# --- 4b. Prometheus scrapes every imbus container ---------------------------------------
step "prometheus: up == 1 for every imbus container"
# 2 brokers + 2 edges + auth, directory, presence + 3 msg = 10 targets (found by DNS).
PROM=http://127.0.0.1:$IMBUS_PROMETHEUS_PORT
prom_up() {  # prints "TARGETS UP" from the API's `up` series of the imbus jobs
  curl -fsS "$PROM/api/v1/query" --data-urlencode 'query=up{job=~"imbus-.*"}' 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(len(r), sum(1 for x in r if x["value"][1] == "1"))'
}
deadline=$((SECONDS + 90))
until [ "$(prom_up)" = "10 10" ]; do
  [ $SECONDS -lt $deadline ] || { curl -fsS "$PROM/api/v1/targets" >&2 || true; fail "prometheus: targets, up: $(prom_up)"; }
  sleep 2
done
log "prometheus: 10 targets, every one up"
# The figures are imbus's: the messages stored so far are counted by the msg containers.
stored=$(curl -fsS "$PROM/api/v1/query" --data-urlencode 'query=sum(imbus_msg_messages_stored_total)' |
  /usr/bin/python3 -c 'import json,sys; print(int(float(json.load(sys.stdin)["data"]["result"][0]["value"][1])))')
[ "$stored" -ge 60 ] || fail "prometheus: only $stored messages stored (60 sent)"
log "prometheus: imbus_msg_messages_stored_total = $stored"
# imbus-ctl inside a broker container (the broker's own key: an admin).
grep -q "^edge    edge1" <<<"$(dc exec -T broker-a imbus-ctl status)" || fail "imbus-ctl status in broker-a failed"
log "imbus-ctl status in broker-a: ok"

# --- 5. kill a msg container and the broker under load ------------------------------
step "kill under load"
STOP=$WORK/stop
sender() {  # sender USER EDGE TO-ARGS...: sends until $STOP, retrying each cmid until acked
  local user=$1 edge=$2
  shift 2
  local i=0 out start
  while [ ! -e "$STOP" ]; do
    i=$((i + 1))
    start=$SECONDS
    until out=$(as "$user" "$edge" send "$@" "load $user $i" --cmid "load-$user-$i" 2>&1); do
      [ $((SECONDS - start)) -lt 90 ] || { echo "GAVE UP load-$user-$i: $out"; return 1; }
      sleep 0.2
    done
    # "sent CONV #SEQ at ..." -> cmid conv seq
    awk -v c="load-$user-$i" '{ sub("#", "", $3); print c, $2, $3 }' <<<"$out"
  done
}
sender alice "$E1" bob >"$WORK/acked.alice" &
LOAD_PIDS+=($!)
sender bob "$E2" alice >"$WORK/acked.bob" &
LOAD_PIDS+=($!)
sender carol "$E1" --group "$gid" >"$WORK/acked.carol" &
LOAD_PIDS+=($!)
acked() { cat "$WORK"/acked.* | wc -l; }
wait_more_acks() {  # N: wait until N more messages are acknowledged
  local target=$(($(acked) + $1)) deadline=$((SECONDS + 120))
  until [ "$(acked)" -ge $target ]; do
    [ $SECONDS -lt $deadline ] || fail "load stalled at $(acked) acked messages"
    sleep 0.5
  done
}
wait_more_acks 20
victim=$(dc ps -q msg | sed -n 1p)  # sed reads it all: head would SIGPIPE dc (pipefail)
log "docker kill msg container ${victim:0:12} at $(acked) acked"
docker kill "$victim" >/dev/null
wait_more_acks 30
log "the two other msg containers carry on: $(acked) acked"
docker start "$victim" >/dev/null
wait_more_acks 10
broker=$(dc ps -q broker-a)
log "docker kill broker-a (active) at $(acked) acked"
t_kill=$(date +%s%N)
docker kill "$broker" >/dev/null
wait_more_acks 4  # 3 senders: at least one of these is a send begun after the kill
log "sends acknowledged again $((($(date +%s%N) - t_kill) / 1000000)) ms after the kill"
wait_state broker-b active 30
ACTIVE=broker-b
failover=$(dc logs broker-b 2>&1 | grep "passive -> active" | tail -1)
[ -n "$failover" ] || fail "broker-b logged no failover"
echo "$failover" >&2
wait_more_acks 30
log "served through broker-b: $(acked) acked"
docker start "$broker" >/dev/null
wait_state broker-a passive 30
dc logs broker-a 2>&1 | grep "primary -> passive" | tail -1 >&2
[ "$(broker_state broker-b)" = active ] || fail "broker-b stopped serving when broker-a came back"
wait_more_acks 10
log "broker-a back as the standby (passive), broker-b still serves: $(acked) acked"
touch "$STOP"
for p in "${LOAD_PIDS[@]}"; do wait "$p" || fail "a sender gave up: $(grep -h GAVE "$WORK"/acked.* || true)"; done
LOAD_PIDS=()

step "checking every acknowledged message"
cat "$WORK"/acked.* | grep -v '^GAVE' | sort >"$WORK/acked.all"
dc exec -T mariadb mariadb --no-defaults -S /run/mysqld/mysqld.sock -uimbus \
  -p"$IMBUS_DB_PASSWORD" imbus -N -B \
  -e "SELECT CAST(cmid AS CHAR), conv, seq FROM messages WHERE cmid LIKE 'load-%'" |
  tr "\t" " " | sort >"$WORK/stored.all"
n_acked=$(wc -l <"$WORK/acked.all")
n_stored=$(wc -l <"$WORK/stored.all")
missing=$(comm -23 "$WORK/acked.all" "$WORK/stored.all" | wc -l)
dups=$(cut -d' ' -f1 "$WORK/stored.all" | sort | uniq -d | wc -l)
echo "acknowledged $n_acked, stored $n_stored, acknowledged but missing or moved $missing, duplicated cmids $dups" >&2
[ "$missing" -eq 0 ] || { comm -23 "$WORK/acked.all" "$WORK/stored.all" | sed -n 1,10p >&2; fail "acknowledged messages lost"; }
[ "$dups" -eq 0 ] || fail "duplicate messages stored"
[ "$n_acked" -ge 90 ] || fail "too little load to show anything ($n_acked)"
# Gap-free seq per conversation.
gaps=$(dc exec -T mariadb mariadb --no-defaults -S /run/mysqld/mysqld.sock -uimbus \
  -p"$IMBUS_DB_PASSWORD" imbus -N -B \
  -e "SELECT conv FROM messages GROUP BY conv HAVING MAX(seq) <> COUNT(*)")
[ -z "$gaps" ] || fail "seq gaps in: $gaps"
log "no acknowledged message lost, none duplicated, seqs gap-free"

step "tearing down"
dc down -v --remove-orphans >/dev/null 2>&1
[ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ] || fail "containers left behind"
[ -z "$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")" ] || fail "volumes left behind"
echo "PASS: compose stack built, served across two edges, scaled, survived kills and a broker failover" >&2
