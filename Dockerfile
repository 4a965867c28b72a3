# imbus images, all on debian:bookworm-slim (scripts/base-image makes it locally when
# no registry can be reached). Stages:
#   mariadb  Debian's mariadb-server (+ galera-4, mariadb-backup for a cluster: see
#            compose.galera.yaml), configured from env (compose service `mariadb`)
#   prometheus  Debian's prometheus with deploy/prometheus/ (compose service
#            `prometheus`: scrapes every imbus container's metrics)
#   build    compilers and -dev packages; builds the binaries (not shipped)
#   web      the web app (web/) with its npm package (web/node_modules from the host
#            when present, else npm ci; not shipped)
#   runtime  the imbus binaries with only their runtime libraries, as a non-root user,
#            and the web app in /usr/share/imbus/web (imbus-edge --web-root)
# The mariadb and prometheus stages come first so the classic builder (docker-compose v1) does not
# build the compilers for it. Each stage ends with an org.imbus.image label, so the stage
# images a rebuild leaves untagged can be pruned. See docs/deploy.md.

FROM debian:bookworm-slim AS mariadb
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      mariadb-server mariadb-client galera-4 mariadb-backup socat \
 && rm -rf /var/lib/apt/lists/* /var/lib/mysql/* \
 && mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld /var/lib/mysql
COPY scripts/docker/mariadb-entrypoint.sh /usr/local/bin/imbus-mariadb
USER mysql
VOLUME /var/lib/mysql
EXPOSE 3306
HEALTHCHECK --interval=2s --timeout=5s --start-period=60s --retries=30 \
  CMD ["imbus-mariadb", "health"]
ENTRYPOINT ["imbus-mariadb"]
LABEL org.imbus.image=mariadb

FROM debian:bookworm-slim AS prometheus
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
COPY deploy/prometheus/prometheus.yml deploy/prometheus/rules.yml /etc/prometheus/
USER prometheus
EXPOSE 9090
ENTRYPOINT ["prometheus", "--config.file=/etc/prometheus/prometheus.yml", \
            "--storage.tsdb.path=/prometheus", "--web.listen-address=0.0.0.0:9090"]
LABEL org.imbus.image=prometheus

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ make cmake pkg-config libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libboost-dev \
      libmariadb-dev libsodium-dev libcli11-dev libspdlog-dev libfmt-dev libssl-dev \
      libwslay-dev libcurl4-openssl-dev libedit-dev prometheus-cpp-dev libjemalloc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Sources only, so a docs change does not rebuild.
COPY CMakeLists.txt ./
COPY cmake cmake
COPY codec codec
COPY net net
COPY metrics metrics
COPY bus bus
COPY broker broker
COPY edge edge
COPY actors actors
COPY client client
COPY bench bench
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMBUS_WERROR=ON \
      -DIMBUS_BUILD_TESTS=OFF -DIMBUS_BUILD_BENCH=OFF >/dev/null \
 && cmake --build build -j"$(nproc)" \
 && strip build/bin/*
LABEL org.imbus.image=build

FROM debian:bookworm-slim AS web
WORKDIR /web
COPY web/ ./
# web/node_modules from the build context when it is there (scripts/up and
# scripts/test install it on the host with `npm ci`, through the host's proxy and
# certificate settings, which a build container does not have); npm ci here otherwise.
RUN if [ ! -d node_modules/@msgpack/msgpack ]; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm \
      && npm ci --omit=dev --no-audit --no-fund \
      && rm -rf /var/lib/apt/lists/*; \
    fi
LABEL org.imbus.image=web

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libzmq5 libmariadb3 libsodium23 libspdlog1.10 libfmt9 libssl3 libwslay1 libcurl4 libedit2 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libjemalloc2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin imbus \
 && mkdir /keys && chown imbus:imbus /keys && chmod 0700 /keys \
 && mkdir -p /var/lib/imbus/files && chown imbus:imbus /var/lib/imbus/files
COPY --from=build /src/build/bin/ /usr/local/bin/
COPY --from=web /web/ /usr/share/imbus/web/
# The bus's CURVE keys (compose service `keys` writes them into a volume here);
# /var/lib/imbus/files: uploaded files (the `files` volume of the file actors; owned
# by imbus so a new named volume starts writable).
USER imbus
# Each compose service names its program; this default just lists them.
CMD ["sh", "-c", "ls /usr/local/bin"]
LABEL org.imbus.image=runtime
