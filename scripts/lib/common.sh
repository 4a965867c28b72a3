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
  ccache  # rebuilds (the three builds of scripts/test, clones, worktrees) reuse objects
  libwslay-dev  # WebSocket framing (edge --ws-listen, imbus-bench --ws)
  chromium chromium-driver python3-selenium  # test/ws/browser_test.py (ctest label browser)
  curl  # test/docker: the web app served by the edges
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
  mariadbd --no-defaults --datadir="$dir/data" --socket="$MARIADB_SOCKET" --skip-networking \
    --pid-file="$dir/mysqld.pid" --log-error="$dir/mariadb.log" "${user_args[@]}" \
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
