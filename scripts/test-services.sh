#!/usr/bin/env bash
# Makes sure the services the integration tests talk to are up on loopback:
#   Redis       127.0.0.1:6379
#   a Redis Cluster of three masters on 127.0.0.1:7001-7003 (no persistence,
#               its node files under /tmp/pushgate-test-redis-cluster)
#   PostgreSQL  127.0.0.1:5432, trust auth, a role for the current user, database "test"
#   Chromium    (no service: the binary the dashboard's browser test drives)
# If one is not reachable it is started, and its Debian package is installed
# first when missing (apt-get; needs root or sudo). It never skips: when a
# service cannot be had it exits non-zero saying which and why.
set -euo pipefail

REDIS_PORT=6379
CLUSTER_PORTS=(7001 7002 7003)
CLUSTER_DIR=/tmp/pushgate-test-redis-cluster
PG_PORT=5432
PG_DB=test

say() { printf 'test-services: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root or sudo to run: $*"; fi
}

apt_updated=
apt_install() {
  say "installing Debian package(s): $*"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq >/dev/null || die "apt-get update failed"; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds
  for _ in $(seq 1 $(( $2 * 10 ))); do port_open "$1" && return 0; sleep 0.1; done
  return 1
}

ensure_redis() {
  if port_open "$REDIS_PORT"; then return; fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  say "starting redis-server on 127.0.0.1:$REDIS_PORT (no persistence)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp --logfile /tmp/pushgate-test-redis.log || die "redis-server did not start (see /tmp/pushgate-test-redis.log)"
  wait_port "$REDIS_PORT" 10 || die "redis-server is not answering on 127.0.0.1:$REDIS_PORT"
}

cluster_info() { redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r'; }

# ensure_redis_cluster starts the cluster's nodes that are not running and
# joins them into one cluster when they are not yet; a running cluster is left alone.
ensure_redis_cluster() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
  local p
  for p in "${CLUSTER_PORTS[@]}"; do
    port_open "$p" && continue
    say "starting Redis Cluster node on 127.0.0.1:$p (no persistence)"
    mkdir -p "$CLUSTER_DIR/$p"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
      --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 5000 --save "" --appendonly no \
      --dir "$CLUSTER_DIR/$p" --logfile "$CLUSTER_DIR/$p/redis.log" ||
      die "Redis Cluster node $p did not start (see $CLUSTER_DIR/$p/redis.log)"
    wait_port "$p" 10 || die "Redis Cluster node is not answering on 127.0.0.1:$p"
  done
  for p in "${CLUSTER_PORTS[@]}"; do
    cluster_info "$p" | grep -q '^cluster_enabled:1' && continue
    cluster_info "$p" | grep -q '^cluster_state:' ||
      die "127.0.0.1:$p is not a Redis Cluster node; free ports ${CLUSTER_PORTS[*]} for the test cluster"
  done
  if ! cluster_info "${CLUSTER_PORTS[0]}" | grep -q '^cluster_state:ok'; then
    if cluster_info "${CLUSTER_PORTS[0]}" | grep -q '^cluster_slots_assigned:0'; then
      say "creating a Redis Cluster of ${CLUSTER_PORTS[*]}"
      local addrs=()
      for p in "${CLUSTER_PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
      redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >/dev/null ||
        die "redis-cli --cluster create failed"
    fi
    for _ in $(seq 1 100); do
      cluster_info "${CLUSTER_PORTS[0]}" | grep -q '^cluster_state:ok' && break
      sleep 0.1
    done
  fi
  for p in "${CLUSTER_PORTS[@]}"; do
    cluster_info "$p" | grep -q '^cluster_state:ok' || die "the Redis Cluster node on 127.0.0.1:$p is not ok: $(cluster_info "$p" | head -n 3 | tr '\n' ' ')"
  done
}

pg_cluster_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

ensure_postgres() {
  if ! port_open "$PG_PORT"; then
    command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
    local v; v=$(pg_cluster_version)
    if [ -z "$v" ] || [ ! -d "/etc/postgresql/$v/main" ]; then
      v=${v:-$(ls /usr/lib/postgresql | sort -V | tail -n 1)}
      say "creating PostgreSQL $v cluster 'main'"
      as_root pg_createcluster "$v" main -p "$PG_PORT" >/dev/null || die "pg_createcluster failed"
    fi
    local hba="/etc/postgresql/$v/main/pg_hba.conf"
    if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      say "allowing trust auth from 127.0.0.1 in $hba (a test-only cluster)"
      as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    say "starting PostgreSQL $v on 127.0.0.1:$PG_PORT"
    as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start || die "PostgreSQL did not start"
    wait_port "$PG_PORT" 30 || die "PostgreSQL is not answering on 127.0.0.1:$PG_PORT"
  fi
  local user; user=$(id -un)
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U "$user" -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    say "creating PostgreSQL superuser role $user"
    as_root su postgres -c "psql -p $PG_PORT -qc 'CREATE ROLE \"$user\" SUPERUSER LOGIN'" >/dev/null ||
      die "cannot create role $user; tests connect as postgres://$user@127.0.0.1:$PG_PORT/$PG_DB with trust auth"
  fi
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U "$user" -d postgres -Atc "select 1 from pg_database where datname='$PG_DB'" | grep -q 1; then
    say "creating database $PG_DB"
    createdb -h 127.0.0.1 -p "$PG_PORT" -U "$user" "$PG_DB" || die "cannot create database $PG_DB"
  fi
  psql -h 127.0.0.1 -p "$PG_PORT" -U "$user" -d "$PG_DB" -Atc 'select 1' >/dev/null ||
    die "cannot connect to postgres://$user@127.0.0.1:$PG_PORT/$PG_DB with trust auth"
}

# The dashboard's browser test drives a headless Chromium.
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || apt_install chromium
}

ensure_redis
ensure_redis_cluster
ensure_postgres
ensure_chromium
say "redis 127.0.0.1:$REDIS_PORT, redis cluster 127.0.0.1:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[2]} and postgres 127.0.0.1:$PG_PORT/$PG_DB are up"
