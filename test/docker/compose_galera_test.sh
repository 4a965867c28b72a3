#!/usr/bin/env bash
# The stack in containers on a three-node Galera cluster (compose.yaml +
# compose.galera.yaml), end to end:
#  1. a Docker engine (as compose_test.sh: started or installed when missing) and the
#     images (built, or reused with IMBUS_DOCKER_REUSE_IMAGES=1);
#  2. up under a project name of its own; all three database nodes healthy (Synced);
#  3. under a running send load (two senders retrying each cmid until acknowledged):
#     docker kill the writer node (`mariadb`, the first of IMBUS_DB_HOSTS); the load
#     goes on through `mariadb2`; `docker start mariadb` and it rejoins (IST);
#  4. on every node: each acknowledged message stored once with its seq, no
#     duplicates, gap-free seqs;
#  5. tears down its containers, networks and volumes.
# Usage: compose_galera_test.sh BIN_DIR. Exit 77 (skipped) only where no Docker
# engine can run at all.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:?usage: compose_galera_test.sh BIN_DIR}" && pwd)
source "$ROOT/scripts/lib/common.sh"
cd "$ROOT"

WORK=$(mktemp -d /tmp/imbus-compose-galera.XXXXXX)
PROJECT=imbusgalera$$
DOCKERD_PID=
LOAD_PIDS=()
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
fail() { printf '\033[1;31mFAIL:\033[0m %s\n' "$*" >&2; exit 1; }
skip() { printf '\n\033[1;33m!!!!!!!! SKIPPED: %s !!!!!!!!\033[0m\n\n' "$*" >&2; exit 77; }

# --- 1. engine and images -------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || skip "no Docker engine answers and this user cannot start one (needs root)"
  ensure_packages docker.io docker-compose
  if ! docker info >/dev/null 2>&1; then
    dockerd >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || skip "dockerd cannot run on this machine"
  fi
fi
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else
  command -v docker-compose >/dev/null || ensure_packages docker-compose
  COMPOSE=(docker-compose)
fi
free_port() {
  local p
  for p in $(shuf -i 20000-30000 -n 50); do
    ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return 0; }
  done
  fail "no free port"
}
export IMBUS_EDGE1_PORT IMBUS_EDGE2_PORT
IMBUS_EDGE1_PORT=$(free_port)
IMBUS_EDGE2_PORT=$((IMBUS_EDGE1_PORT + 1))
export IMBUS_PUBLISH_IP=127.0.0.1 IMBUS_PUBLIC_HOST=127.0.0.1
export IMBUS_DB_PASSWORD="test-$RANDOM-pw" IMBUS_GALERA_SST_PASSWORD="sst-$RANDOM-pw"
export IMBUS_PWHASH_OPS=1 IMBUS_PWHASH_MEM=8192
E1=127.0.0.1:$IMBUS_EDGE1_PORT

dc() { "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/compose.yaml" -f "$ROOT/compose.galera.yaml" "$@"; }
cleanup() {
  local rc=$?
  set +e
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then dc logs --no-color --tail 30 >&2 2>&1; fi
  dc down -v --remove-orphans >/dev/null 2>&1
  if [ -n "$DOCKERD_PID" ]; then kill "$DOCKERD_PID"; wait "$DOCKERD_PID" 2>/dev/null; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

step "images"
scripts/base-image
if [ -n "${IMBUS_DOCKER_REUSE_IMAGES:-}" ] && docker image inspect "imbus:${IMBUS_TAG:-latest}" "imbus-mariadb:${IMBUS_TAG:-latest}" >/dev/null 2>&1; then
  log "IMBUS_DOCKER_REUSE_IMAGES: using the images already built"
else
  ensure_web_deps  # the web stage takes web/node_modules from here (Dockerfile)
  dc build >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; fail "image build failed"; }
  # untagged imbus stage images older rebuilds left behind (docs/deploy.md, "Disk after rebuilds")
  docker image prune -f --filter label=org.imbus.image --filter until=2h >/dev/null 2>&1 || true
fi

# --- 2. up ------------------------------------------------------------------------------
step "bringing the stack up on three Galera nodes"
t0=$SECONDS
dc up -d >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "compose up failed"; }
wait_healthy() {
  local s id deadline=$((SECONDS + 300))
  for s in "$@"; do
    for id in $(dc ps -q "$s"); do
      until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]; do
        [ $SECONDS -lt $deadline ] || fail "$s ($id) not healthy in time"
        sleep 1
      done
    done
  done
}
wait_healthy mariadb mariadb2 mariadb3 broker-a broker-b edge1
imbus() { "$BIN/imbus" --timeout-ms 8000 "$@"; }
deadline=$((SECONDS + 120))
until imbus --server "$E1" register probe --password probe-pw >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || fail "auth never answered"
  sleep 1
done
log "serving after $((SECONDS - t0)) s"
sql() {  # NODE SQL: as the imbus user on that node
  dc exec -T "$1" mariadb --no-defaults -S /run/mysqld/mysqld.sock -uimbus \
    -p"$IMBUS_DB_PASSWORD" imbus -N -B -e "$2"
}
[ "$(sql mariadb2 "SHOW STATUS LIKE 'wsrep_cluster_size'" | cut -f2)" = 3 ] || fail "not a cluster of 3"

# --- 3. kill the writer under load ------------------------------------------------------
as() { local user=$1; shift; XDG_CONFIG_HOME="$WORK/$user" imbus --server "$E1" "$@"; }
for u in alice bob; do
  imbus --server "$E1" register "$u" --password "pw-$u-123" >/dev/null
  as "$u" login "$u" --password "pw-$u-123" --save >/dev/null
done
STOP=$WORK/stop
sender() {  # USER TO: sends until $STOP, each cmid retried until acknowledged
  local user=$1 to=$2 i=0 out start
  while [ ! -e "$STOP" ]; do
    i=$((i + 1))
    start=$SECONDS
    until out=$(as "$user" send "$to" "load $user $i" --cmid "load-$user-$i" 2>&1); do
      [ $((SECONDS - start)) -lt 120 ] || { echo "GAVE UP load-$user-$i: $out"; return 1; }
      sleep 0.2
    done
    awk -v c="load-$user-$i" '{ sub("#", "", $3); print c, $2, $3 }' <<<"$out"
  done
}
sender alice bob >"$WORK/acked.alice" &
LOAD_PIDS+=($!)
sender bob alice >"$WORK/acked.bob" &
LOAD_PIDS+=($!)
acked() { cat "$WORK"/acked.* | wc -l; }
wait_more_acks() {
  local target=$(($(acked) + $1)) deadline=$((SECONDS + 120))
  until [ "$(acked)" -ge $target ]; do
    [ $SECONDS -lt $deadline ] || fail "load stalled at $(acked) acknowledged"
    sleep 0.5
  done
}
wait_more_acks 20
writes() { sql "$1" "SHOW STATUS LIKE 'wsrep_local_commits'" | cut -f2; }
w2=$(writes mariadb2)
wait_more_acks 10
[ "$(writes mariadb2)" = "$w2" ] || fail "mariadb2 took writes while mariadb (first of the list) was up"
node1=$(dc ps -q mariadb)
log "docker kill mariadb (the writer) at $(acked) acknowledged"
t_kill=$(date +%s%N)
docker kill "$node1" >/dev/null
wait_more_acks 4
log "acknowledged again $((($(date +%s%N) - t_kill) / 1000000)) ms after the kill"
wait_more_acks 20
[ "$(writes mariadb2)" -gt "$w2" ] || fail "the actors did not move to mariadb2"
log "the actors write through mariadb2: $(acked) acknowledged"
docker start "$node1" >/dev/null
wait_healthy mariadb
log "mariadb rejoined (Synced)"
wait_more_acks 10
touch "$STOP"
for p in "${LOAD_PIDS[@]}"; do wait "$p" || fail "a sender gave up: $(grep -h GAVE "$WORK"/acked.* || true)"; done
LOAD_PIDS=()

# --- 4. every node has everything ----------------------------------------------------------
step "checking every acknowledged message on every node"
cat "$WORK"/acked.* | sort >"$WORK/acked.all"
n_acked=$(wc -l <"$WORK/acked.all")
[ "$n_acked" -ge 50 ] || fail "too little load to show anything ($n_acked)"
for node in mariadb mariadb2 mariadb3; do
  sql "$node" "SET SESSION wsrep_sync_wait = 1; SELECT CAST(cmid AS CHAR), conv, seq FROM messages WHERE cmid LIKE 'load-%'" |
    tr "\t" " " | sort >"$WORK/stored.$node"
  missing=$(comm -23 "$WORK/acked.all" "$WORK/stored.$node" | wc -l)
  dups=$(cut -d' ' -f1 "$WORK/stored.$node" | uniq -d | wc -l)
  gaps=$(sql "$node" "SET SESSION wsrep_sync_wait = 1; SELECT conv FROM messages GROUP BY conv HAVING MAX(seq) <> COUNT(*)")
  echo "$node: acknowledged $n_acked, stored $(wc -l <"$WORK/stored.$node"), missing or moved $missing, duplicated $dups, gaps in: ${gaps:-none}" >&2
  [ "$missing" -eq 0 ] || fail "$node: acknowledged messages lost"
  [ "$dups" -eq 0 ] || fail "$node: duplicates"
  [ -z "$gaps" ] || fail "$node: seq gaps"
done

step "tearing down"
dc down -v --remove-orphans >/dev/null 2>&1
echo "PASS: the stack on three Galera nodes lost nothing when the writer node was killed" >&2
