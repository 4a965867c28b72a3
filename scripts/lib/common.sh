# Shared by scripts/up and scripts/test. Sourced, not run.

IMBUS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages needed to build and run imbus and its tests.
IMBUS_PACKAGES=(
  build-essential cmake pkg-config
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libboost-dev
  libmariadb-dev mariadb-server mariadb-client libsodium-dev
  libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  iproute2 iptables  # test/p2p: network namespaces and NAT
  clang libclang-rt-14-dev  # test/fuzz: libFuzzer (scripts/test's fuzz stage)
  libssl-dev openssl  # TLS for clients (edge --tls-listen, imbus --tls); certificates
  clang-format  # scripts/check-format (ctest format_check_test)
  galera-4 mariadb-backup socat  # Galera clusters: the drills_galera_test, compose's galera profile
  ccache  # rebuilds (the three builds of scripts/test, clones, worktrees) reuse objects
  libwslay-dev  # WebSocket framing (edge --ws-listen, imbus-bench --ws)
  libcurl4-openssl-dev  # the push service's HTTP POSTs to the push gateway
  chromium chromium-driver python3-selenium  # test/ws/browser_test.py (ctest label browser)
  curl  # test/docker: the web app served by the edges
  libedit-dev  # `imbus chat`: the line editor (history, editing, messages above the line)
  tmux  # test/actors/msg: `imbus chat` driven in a real terminal
  prometheus-cpp-dev  # metrics/: --metrics-listen (prometheus-cpp with its exposer)
  prometheus  # promtool (integration_metrics_test); the compose prometheus service
  libjemalloc-dev  # the servers' malloc (CMake option IMBUS_JEMALLOC)
  libjpeg-turbo-progs  # test/actors/file: cjpeg makes the JPEGs the image-size parser is tested on
)

log() { printf '\033[1m[imbus]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[imbus] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Installs the packages of IMBUS_PACKAGES (and any given as arguments) that are
# missing. As root it runs apt-get; otherwise it says what to run.
ensure_packages() {
  local missing=() p
  for p in "${IMBUS_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]} — run: sudo apt-get install -y ${missing[*]}"
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  # policy-rc.d keeps the packaged mariadb service from starting: imbus runs its own.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install failed"
  [ "$created_policy" = 1 ] && rm -f "$policy"
  return 0
}

# build DIR [cmake args...]: configures and builds imbus with warnings as errors,
# through ccache when it is installed. Paths are hashed relative to the checkout, so
# another clone or worktree of the same sources hits the same cache.
# ensure_web_deps: installs the web app's npm packages (web/package-lock.json: the
# msgpack codec the browser imports) into web/node_modules when missing or older than
# the lock file. Uses the machine's npm; without one, Debian's (as root).
ensure_web_deps() {
  local web=$IMBUS_ROOT/web
  if [ -d "$web/node_modules/@msgpack/msgpack" ] &&
     [ ! "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
    return 0
  fi
  command -v npm >/dev/null || ensure_packages npm
  log "installing the web app's npm packages into $web/node_modules"
  (cd "$web" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null) ||
    die "npm ci in $web failed"
}

build_imbus() {
  local dir=$1
  shift
  local launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR=$IMBUS_ROOT CCACHE_NOHASHDIR=1
  fi
  cmake -S "$IMBUS_ROOT" -B "$dir" -DIMBUS_WERROR=ON "${launcher[@]}" "$@" >/dev/null ||
    die "cmake configure failed"
  cmake --build "$dir" -j "$(nproc)" || die "build failed"
}

# mariadb_start DIR: starts a private MariaDB whose data, socket and logs live in
# DIR (created on first use). No system database is touched and no TCP port is
# opened. Sets MARIADB_SOCKET and MARIADB_PID.
mariadb_start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local user_args=()
  [ "$(id -u)" -eq 0 ] && user_args=(--user=root)
  if [ ! -d "$dir/data/mysql" ]; then
    log "initialising a private MariaDB in $dir/data"
    mariadb-install-db --no-defaults --datadir="$dir/data" "${user_args[@]}" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
      die "mariadb-install-db failed; see $dir/install.log"
  fi
  MARIADB_SOCKET=$dir/mysqld.sock
  if [ -S "$MARIADB_SOCKET" ] && mariadb-admin --no-defaults -S "$MARIADB_SOCKET" -uroot ping >/dev/null 2>&1; then
    die "a MariaDB already runs on $MARIADB_SOCKET (another scripts/up?)"
  fi
  rm -f "$MARIADB_SOCKET"
  # A tmpdir of its own: a starting mariadbd deletes every #sql* file in its tmpdir
  # (left-over temporary tables), including those of servers running beside it.
  mkdir -p "$dir/tmp"
  mariadbd --no-defaults --datadir="$dir/data" --socket="$MARIADB_SOCKET" --skip-networking \
    --pid-file="$dir/mysqld.pid" --log-error="$dir/mariadb.log" --tmpdir="$dir/tmp" "${user_args[@]}" \
    --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=1 \
    --max-connections=1000 >/dev/null 2>&1 &
  MARIADB_PID=$!
  local i
  for i in $(seq 1 300); do
    if mariadb-admin --no-defaults -S "$MARIADB_SOCKET" -uroot ping >/dev/null 2>&1; then
      log "MariaDB up (pid $MARIADB_PID, socket $MARIADB_SOCKET)"
      return 0
    fi
    kill -0 "$MARIADB_PID" 2>/dev/null || die "MariaDB exited; see $dir/mariadb.log"
    sleep 0.1
  done
  die "MariaDB did not start within 30 s; see $dir/mariadb.log"
}

mariadb_stop() {
  [ -n "${MARIADB_PID:-}" ] || return 0
  kill "$MARIADB_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do kill -0 "$MARIADB_PID" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$MARIADB_PID" 2>/dev/null || true
}

# galera_start DIR [N]: a Galera cluster of N (default 3) mariadbd on loopback, each
# with its data, socket and log in DIR/nodeI (ports: gcomm, IST, SST and SQL from a
# random base). Node 0 bootstraps a fresh cluster, is stopped, its data directory
# seeds the others (so they join by IST, not a full SST), then it bootstraps again
# and the others join one at a time (as test/support/galera.cc does for ctest).
# Sets GALERA_SOCKETS (comma-separated: --db-hosts), GALERA_PIDS (node order) and
# GALERA_DIR. Stop with galera_stop.
galera_start() {
  GALERA_DIR=$1
  local n=${2:-3} i
  mkdir -p "$GALERA_DIR"
  GALERA_DIR=$(cd "$GALERA_DIR" && pwd)
  GALERA_BASE=$((30000 + RANDOM % 20000))
  GALERA_N=$n
  GALERA_PIDS=()
  GALERA_SOCKETS=
  local peers=
  for i in $(seq 0 $((n - 1))); do
    peers+="${peers:+,}127.0.0.1:$((GALERA_BASE + 10 * i))"
    GALERA_SOCKETS+="${GALERA_SOCKETS:+,}$GALERA_DIR/node$i/mysqld.sock"
  done
  GALERA_PEERS=$peers
  local user_args=()
  [ "$(id -u)" -eq 0 ] && user_args=(--user=root)
  mkdir -p "$GALERA_DIR/node0"
  mariadb-install-db --no-defaults --datadir="$GALERA_DIR/node0/data" "${user_args[@]}" \
    --auth-root-authentication-method=normal --skip-test-db >"$GALERA_DIR/install.log" 2>&1 ||
    die "mariadb-install-db failed; see $GALERA_DIR/install.log"
  _galera_launch 0 --wsrep-new-cluster
  _galera_wait_synced 0 1
  kill "${GALERA_PIDS[0]}"
  wait "${GALERA_PIDS[0]}" 2>/dev/null || true
  for i in $(seq 1 $((n - 1))); do
    mkdir -p "$GALERA_DIR/node$i"
    cp -a "$GALERA_DIR/node0/data" "$GALERA_DIR/node$i/data"
    rm -f "$GALERA_DIR/node$i/data/gvwstate.dat"
  done
  _galera_launch 0 --wsrep-new-cluster
  _galera_wait_synced 0 1
  for i in $(seq 1 $((n - 1))); do
    _galera_launch "$i"
    _galera_wait_synced "$i" $((i + 1))
  done
  log "Galera cluster of $n up (pids ${GALERA_PIDS[*]}; sockets $GALERA_SOCKETS)"
}

# _galera_launch I [ARGS...]: starts node I in the background.
_galera_launch() {
  local i=$1 d=$GALERA_DIR/node$1
  shift
  local port=$((GALERA_BASE + 10 * i))
  local user_args=()
  [ "$(id -u)" -eq 0 ] && user_args=(--user=root)
  rm -f "$d/mysqld.sock"
  mariadbd --no-defaults --datadir="$d/data" --socket="$d/mysqld.sock" --port=$((port + 3)) \
    --bind-address=127.0.0.1 --pid-file="$d/mysqld.pid" --log-error="$d/mariadb.log" \
    "${user_args[@]}" --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=1 \
    --max-connections=1000 --binlog-format=ROW --innodb-autoinc-lock-mode=2 \
    --wsrep-on=ON --wsrep-provider=/usr/lib/galera/libgalera_smm.so \
    --wsrep-cluster-name=imbus_local --wsrep-cluster-address="gcomm://$GALERA_PEERS" \
    --wsrep-node-address="127.0.0.1:$port" --wsrep-node-name="node$i" \
    --wsrep-node-incoming-address="127.0.0.1:$((port + 3))" \
    --wsrep-sst-method=mariabackup --wsrep-sst-auth=root: \
    --wsrep-sst-receive-address="127.0.0.1:$((port + 2))" \
    --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$port;ist.recv_addr=127.0.0.1:$((port + 1));gcache.size=64M;evs.keepalive_period=PT0.3S;evs.suspect_timeout=PT1.5S;evs.inactive_timeout=PT3S" \
    "$@" >/dev/null 2>&1 &
  GALERA_PIDS[i]=$!
}

# _galera_wait_synced I SIZE: until node I is Synced in a primary component of SIZE.
_galera_wait_synced() {
  local i=$1 size=$2 s=$GALERA_DIR/node$1/mysqld.sock state _
  for _ in $(seq 1 600); do
    state=$(mariadb --no-defaults -S "$s" -uroot -N -B -e "SHOW GLOBAL STATUS WHERE Variable_name IN
      ('wsrep_cluster_size', 'wsrep_cluster_status', 'wsrep_local_state', 'wsrep_ready')" \
      2>/dev/null | LC_ALL=C sort | cut -f2 | tr '\n' ' ') || true
    [ "$state" = "$size Primary 4 ON " ] && return 0
    kill -0 "${GALERA_PIDS[i]}" 2>/dev/null || die "Galera node $i exited; see $GALERA_DIR/node$i/mariadb.log"
    sleep 0.1
  done
  die "Galera node $i not Synced within 60 s; see $GALERA_DIR/node$i/mariadb.log"
}

galera_stop() {
  local p
  for p in "${GALERA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${GALERA_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  GALERA_PIDS=()
}
