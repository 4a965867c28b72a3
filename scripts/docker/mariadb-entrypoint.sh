#!/bin/bash
# Entry point of the imbus mariadb image (Dockerfile, stage `mariadb`).
#   imbus-mariadb          first start: create the data directory and the imbus user
#                          from the environment; then run mariadbd on port 3306
#   imbus-mariadb health   exit 0 when the server answers as the imbus user (and, as
#                          a Galera node, is Synced: wsrep_ready ON, local state 4)
# Env: MARIADB_USER (imbus), MARIADB_PASSWORD (required), MARIADB_DATABASE (imbus),
#      MARIADB_BUFFER_POOL (256M).
# Galera (compose.galera.yaml): GALERA_CLUSTER_ADDRESS (gcomm://a,b,c; unset: a single
#      server), GALERA_NODE_NAME, GALERA_BOOTSTRAP=1 on the one node that makes the
#      cluster (it bootstraps when its data directory is new or its grastate.dat says
#      safe_to_bootstrap: 1; otherwise it joins like the others), GALERA_SST_PASSWORD
#      (the local `sst` user mariabackup state transfers use; default MARIADB_PASSWORD),
#      GALERA_PROVIDER_OPTIONS (extra wsrep_provider_options).
set -euo pipefail

user=${MARIADB_USER:-imbus}
database=${MARIADB_DATABASE:-imbus}
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock

if [ "${1:-}" = health ]; then
  if [ -z "${GALERA_CLUSTER_ADDRESS:-}" ]; then
    exec mariadb-admin --no-defaults -S "$socket" -u"$user" -p"${MARIADB_PASSWORD:-}" \
      --connect-timeout=3 status >/dev/null 2>&1
  fi
  state=$(mariadb --no-defaults -S "$socket" -u"$user" -p"${MARIADB_PASSWORD:-}" \
    --connect-timeout=3 -N -B -e "SHOW GLOBAL STATUS WHERE Variable_name IN
    ('wsrep_ready', 'wsrep_local_state')" 2>/dev/null | LC_ALL=C sort | cut -f2 | tr '\n' ' ')
  [ "$state" = "4 ON " ]
  exit
fi

: "${MARIADB_PASSWORD:?set MARIADB_PASSWORD (compose.yaml takes it from IMBUS_DB_PASSWORD)}"
sql_quote() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\\\'}"; }

# The server's settings. A Galera node gets them from a defaults file rather than the
# command line: its state transfer script hands the command line to mariadb-backup,
# which refuses server options there ("unknown variable"), but reads the [mysqld]
# group of a defaults file, skipping what it does not know.
server_args=(--datadir="$datadir" --socket="$socket" --bind-address=0.0.0.0 --port=3306
  --skip-name-resolve --innodb-buffer-pool-size="${MARIADB_BUFFER_POOL:-256M}"
  --innodb-flush-log-at-trx-commit=1 --max-connections=1000
  --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci)
run_server() {  # EXTRA-ARGS...: exec mariadbd
  if [ -z "${GALERA_CLUSTER_ADDRESS:-}" ]; then
    exec mariadbd --no-defaults "${server_args[@]}" "$@"
  fi
  local cnf=/run/mysqld/imbus-galera.cnf a
  {
    echo "[mysqld]"
    for a in "${server_args[@]}"; do echo "${a#--}"; done
    echo "wsrep-on=ON"
    echo "wsrep-provider=/usr/lib/galera/libgalera_smm.so"
    echo "wsrep-cluster-name=imbus"
    echo "wsrep-cluster-address=$GALERA_CLUSTER_ADDRESS"
    echo "wsrep-node-name=${GALERA_NODE_NAME:-$(hostname)}"
    echo "binlog-format=ROW"
    echo "innodb-autoinc-lock-mode=2"
    # The schema's triggers (user_blocks) are created by the imbus user, which has no
    # SUPER: allowed with Galera's binary log on only with this.
    echo "log-bin-trust-function-creators=1"
    echo "wsrep-sst-method=mariabackup"
    echo "wsrep-sst-auth=sst:${GALERA_SST_PASSWORD:-$MARIADB_PASSWORD}"
    echo "wsrep-provider-options=gcache.size=128M;evs.keepalive_period=PT0.3S;evs.suspect_timeout=PT1.5S;evs.inactive_timeout=PT3S${GALERA_PROVIDER_OPTIONS:+;$GALERA_PROVIDER_OPTIONS}"
    echo "[sst]"
    echo "sst-syslog=-1"  # the state transfer's errors into this container's log
  } >"$cnf"
  chmod 600 "$cnf"
  exec mariadbd --defaults-file="$cnf" "$@"
}

if [ -n "${GALERA_CLUSTER_ADDRESS:-}" ] && [ "${GALERA_BOOTSTRAP:-0}" != 1 ] &&
  [ ! -e "$datadir/.imbus-ready" ]; then
  # A joiner's first start: its data comes from a donor by state transfer (SST),
  # users included; nothing to set up here.
  echo "imbus-mariadb: joining $GALERA_CLUSTER_ADDRESS (first start: full state transfer)" >&2
  touch "$datadir/.imbus-ready"
  run_server
fi

# First start (or one that died half-way): make the data directory, then create the
# database and the user on a private bootstrap server (own socket, no network), so
# the health check sees the server only once the user exists. The marker file
# says it is done.
if [ ! -e "$datadir/.imbus-ready" ]; then
  echo "imbus-mariadb: first start, setting up $datadir" >&2
  if [ ! -d "$datadir/mysql" ]; then
    # root@localhost without a password, reachable only on the bootstrap socket;
    # locked to unix_socket (OS user root, which this image never runs as) below.
    mariadb-install-db --no-defaults --datadir="$datadir" --skip-test-db \
      --auth-root-authentication-method=normal >/dev/null
  fi
  boot=/run/mysqld/bootstrap.sock
  mariadbd --no-defaults --datadir="$datadir" --socket="$boot" --skip-networking &
  pid=$!
  for _ in $(seq 1 300); do
    mariadb-admin --no-defaults -S "$boot" -uroot ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb --no-defaults -S "$boot" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`$database\`;
CREATE USER IF NOT EXISTS $(sql_quote "$user")@'%' IDENTIFIED BY $(sql_quote "$MARIADB_PASSWORD");
GRANT ALL PRIVILEGES ON \`$database\`.* TO $(sql_quote "$user")@'%';
CREATE USER IF NOT EXISTS $(sql_quote "$user")@'localhost' IDENTIFIED BY $(sql_quote "$MARIADB_PASSWORD");
GRANT ALL PRIVILEGES ON \`$database\`.* TO $(sql_quote "$user")@'localhost';
CREATE USER IF NOT EXISTS 'sst'@'localhost' IDENTIFIED BY $(sql_quote "${GALERA_SST_PASSWORD:-$MARIADB_PASSWORD}");
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, REPLICA MONITOR ON *.* TO 'sst'@'localhost';
ALTER USER root@localhost IDENTIFIED VIA unix_socket;
FLUSH PRIVILEGES;
SQL
  kill "$pid"
  wait "$pid" || true
  touch "$datadir/.imbus-ready"
  echo "imbus-mariadb: user $user may use database $database" >&2
fi

# The node that makes the cluster bootstraps it on a new data directory, or when
# Galera says it is safe (it stopped last, cleanly); otherwise it joins the others.
if [ -n "${GALERA_CLUSTER_ADDRESS:-}" ] && [ "${GALERA_BOOTSTRAP:-0}" = 1 ]; then
  if [ ! -e "$datadir/grastate.dat" ] || grep -q '^safe_to_bootstrap: *1' "$datadir/grastate.dat"; then
    echo "imbus-mariadb: bootstrapping a new Galera cluster" >&2
    run_server --wsrep-new-cluster
  fi
fi
run_server
