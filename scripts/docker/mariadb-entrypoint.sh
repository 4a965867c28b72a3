#!/bin/bash
# Entry point of the imbus mariadb image (Dockerfile, stage `mariadb`).
#   imbus-mariadb          first start: create the data directory and the imbus user
#                          from the environment; then run mariadbd on port 3306
#   imbus-mariadb health   exit 0 when the server answers as the imbus user
# Env: MARIADB_USER (imbus), MARIADB_PASSWORD (required), MARIADB_DATABASE (imbus),
#      MARIADB_BUFFER_POOL (256M).
set -euo pipefail

user=${MARIADB_USER:-imbus}
database=${MARIADB_DATABASE:-imbus}
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock

if [ "${1:-}" = health ]; then
  exec mariadb-admin --no-defaults -S "$socket" -u"$user" -p"${MARIADB_PASSWORD:-}" \
    --connect-timeout=3 status >/dev/null 2>&1
fi

: "${MARIADB_PASSWORD:?set MARIADB_PASSWORD (compose.yaml takes it from IMBUS_DB_PASSWORD)}"
sql_quote() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\\\'}"; }

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
ALTER USER root@localhost IDENTIFIED VIA unix_socket;
FLUSH PRIVILEGES;
SQL
  kill "$pid"
  wait "$pid" || true
  touch "$datadir/.imbus-ready"
  echo "imbus-mariadb: user $user may use database $database" >&2
fi

exec mariadbd --no-defaults --datadir="$datadir" --socket="$socket" \
  --bind-address=0.0.0.0 --port=3306 --skip-name-resolve \
  --innodb-buffer-pool-size="${MARIADB_BUFFER_POOL:-256M}" \
  --innodb-flush-log-at-trx-commit=1 --max-connections=1000 \
  --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
