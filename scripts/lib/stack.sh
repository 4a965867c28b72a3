# The bench stack: broker, one actor with every service (low password cost) and one
# edge with 2 threads, all on loopback against MARIADB_SOCKET (mariadb_start in
# common.sh). Shared by scripts/bench and scripts/bench-compare. Sourced, not run.

# stack_start BIN WORK DBNAME: starts broker, actor and edge from BIN (a build's bin/
# directory) with logs in WORK, on fresh random ports. Sets STACK_BIN, STACK_WORK,
# PORT, BUS, SERVICES, ACTOR_ARGS, EDGE_ARGS, BROKER_PID, ACTOR_PID, EDGE_PID and
# appends the pids to PIDS (the caller kills them). Environment: BENCH_ACTOR_THREADS,
# STACK_DB_HOSTS (a --db-hosts list instead of MARIADB_SOCKET: scripts/bench-galera).
stack_start() {
  STACK_BIN=$1
  STACK_WORK=$2
  local db=$3
  PORT=$((20000 + RANDOM % 20000))
  BUS=tcp://127.0.0.1:$((PORT + 1))
  SERVICES=$("$STACK_BIN/imbus-actor" --list-services | paste -sd,)
  local threads=${BENCH_ACTOR_THREADS:-2}  # the default; more only adds contention on 2 cores
  local db_args=(--db-socket "$MARIADB_SOCKET")
  [ -n "${STACK_DB_HOSTS:-}" ] && db_args=(--db-hosts "$STACK_DB_HOSTS")  # a Galera cluster
  ACTOR_ARGS=(--services "$SERVICES" --broker "$BUS" "${db_args[@]}" --db-name "$db"
              --threads "$threads" --pwhash-ops 1 --pwhash-mem 8192 --log-level warn)
  # An actor from before the file service (scripts/bench-compare of an old revision)
  # knows no --file-dir.
  local actor_help
  actor_help=$("$STACK_BIN/imbus-actor" --help 2>/dev/null || true)
  [[ $actor_help == *--file-dir* ]] && ACTOR_ARGS+=(--file-dir "$STACK_WORK/files")
  EDGE_ARGS=(--listen "127.0.0.1:$PORT" --broker "$BUS" --threads 2 --log-level warn)
  "$STACK_BIN/imbus-broker" --bind "$BUS" --log-level warn ${BENCH_BROKER_ARGS:-} 2>"$STACK_WORK/broker.log" &
  BROKER_PID=$!
  PIDS+=($BROKER_PID)
  "$STACK_BIN/imbus-actor" "${ACTOR_ARGS[@]}" 2>"$STACK_WORK/actor.log" &
  ACTOR_PID=$!
  PIDS+=($ACTOR_PID)
  EDGE_PID=
  start_edge
}

# wait_edge PORT: until the edge on PORT answers through the broker.
wait_edge() {
  for _ in $(seq 1 150); do
    "$STACK_BIN/imbus" --server "127.0.0.1:$1" route >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "the stack did not come up on port $1; see $STACK_WORK"
}

# start_edge: (re)starts the edge of the last stack_start and waits until it answers.
start_edge() {
  if [ -n "${EDGE_PID:-}" ]; then
    kill "$EDGE_PID" 2>/dev/null || true
    wait "$EDGE_PID" 2>/dev/null || true
  fi
  "$STACK_BIN/imbus-edge" "${EDGE_ARGS[@]}" 2>>"$STACK_WORK/edge.log" &
  EDGE_PID=$!
  PIDS+=($EDGE_PID)
  wait_edge "$PORT"
}

# cpu_pid_args: imbus-bench --cpu-pid options for the last stack and MariaDB.
cpu_pid_args() {
  echo --cpu-pid "broker=$BROKER_PID" --cpu-pid "edge=$EDGE_PID" --cpu-pid "actor=$ACTOR_PID" \
    --cpu-pid "mysqld=$MARIADB_PID"
}
