#!/usr/bin/env bash
# make bench: the end-to-end benchmark of issue 7, on loopback only.
#
# Starts the sandbox providers, a gateway on PostgreSQL + Redis quotas and one
# on the embedded defaults (SQLite), creates enterprise workspaces in each, and
# runs `pushgate bench` five times at the same concurrency:
#   1 direct            straight to the sandbox with the gateway's provider clients, at saturation
#   2 gateway-sqlite    through the embedded gateway, at saturation
#   3 gateway-redis     through the gateway with Redis quotas, at saturation
#   3b gateway-redis-nolog  the same through a second gateway on the same database
#                       and Redis with the delivery log off (delivery_log: off):
#                       what the log costs the push path
#   4 gateway-redis-half  the same at a fixed rate of half of run 3's figure
#   5 direct-half       direct at that fixed rate; 4 minus 5 is the added latency
# then prints one summary (`pushgate bench -summary`). With BENCH_SOAK set, a
# sixth run follows, with its own section below that summary:
#   6 gateway-redis-soak  run 4 for BENCH_SOAK instead of BENCH_DURATION, with the
#                       gateway's RSS over the run and Redis's memory and keys
#                       before and after: does anything grow with pushes?
# Results, logs and the summary go to bench-results/. Everything it starts is
# stopped on exit, its database dropped and its Redis database flushed.
#
# Settings (environment): BENCH_CONCURRENCY (64), BENCH_DURATION (20s),
# BENCH_WARMUP (3s), BENCH_WORKSPACES (50), BENCH_REDIS_DB (9, flushed at start
# and end: use a number nothing else uses), BENCH_OUT (bench-results),
# BENCH_QUIET_WAIT (60: seconds in all to wait for a quiet machine before runs),
# BENCH_SOAK (unset: no soak; a Go duration such as 300s or 5m runs the soak),
# BENCH_PROFILE (unset; 1: the gateways serve pprof on loopback, and each
# gateway run but the soak saves a CPU profile of its gateway's measured window and its
# allocation profile as bench-results/<run>.cpu.pprof and .allocs.pprof, to read
# with `go tool pprof bin/pushgate FILE`).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin/pushgate
OUT=${BENCH_OUT:-$ROOT/bench-results}
CONC=${BENCH_CONCURRENCY:-64}
DURATION=${BENCH_DURATION:-20s}
WARMUP=${BENCH_WARMUP:-3s}
WORKSPACES=${BENCH_WORKSPACES:-50}
REDIS_DB=${BENCH_REDIS_DB:-9}
SOAK=${BENCH_SOAK:-}
PROFILE=${BENCH_PROFILE:-}
REDIS_PORT=6379
PG_PORT=5432
PG_USER=$(id -un)
PG_DB=pushgate_bench_$$
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/$REDIS_DB

began=$(date +%s)
say() { printf 'bench [+%ss]: %s\n' "$(($(date +%s) - began))" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# Checked now rather than by pushgate bench after the other runs' minutes.
if [ -n "$SOAK" ] && ! { [[ $SOAK =~ ^([0-9]+(\.[0-9]*)?(h|m|s|ms))+$ ]] && [[ $SOAK =~ [1-9] ]]; }; then
  die "BENCH_SOAK=$SOAK: use a positive duration such as 300s or 5m"
fi

# Settings of the caller's shell must not leak into the processes under test.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^PUSHGATE_' || true)

# Two benchmarks at once would measure each other.
exec 9>/tmp/pushgate-bench.lock
flock -n 9 || die "another make bench is running (lock /tmp/pushgate-bench.lock)"

WORK=$(mktemp -d /tmp/pushgate-bench.XXXXXX)
pids=()
running=
db_created=
redis_used=

cleanup() {
  local rc=$?
  set +e
  if [ -n "$running" ]; then kill -TERM "$running" 2>/dev/null; wait "$running" 2>/dev/null; fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ -n "$redis_used" ]; then redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n "$REDIS_DB" FLUSHDB >/dev/null; fi
  if [ -n "$db_created" ]; then dropdb -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" --if-exists "$PG_DB"; fi
  rm -rf "$WORK"
  if [ "$rc" != 0 ]; then say "exit $rc; logs of the processes it started are in $OUT/logs"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port picks an unused loopback port below the kernel's ephemeral range:
# a port in that range can be the local end of an outgoing connection (to
# Redis, say), which no connect probe sees but which makes bind fail. Each
# listener is up before the next port is picked, so two picks cannot collide;
# a process that took the port in between makes the listener fail, which
# wait_until reports.
free_port() {
  local p low=32768 high
  read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$low" -gt 11000 ] || die "the ephemeral port range starts at $low: no room below it for the bench's listeners"
  for _ in $(seq 1 100); do
    p=$((10000 + RANDOM % (low - 10000)))
    if ! port_open "$p"; then echo "$p"; return; fi
  done
  die "no free loopback port"
}

# wait_until NAME PID SECONDS COMMAND...: until COMMAND succeeds, while PID lives.
wait_until() {
  local name=$1 pid=$2 secs=$3; shift 3
  for _ in $(seq 1 $((secs * 10))); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || die "$name exited while starting; see $OUT/logs/$name.log: $(tail -n 3 "$OUT/logs/$name.log")"
    sleep 0.1
  done
  die "$name not ready after ${secs}s; see $OUT/logs/$name.log"
}

ready() { # PORT: GET /readyz answers 200
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
    read -r -t 2 status <&3 && [[ $status == HTTP/1.?" 200 "* ]]) 2>/dev/null
}

json_number() { # FILE KEY: a top-level number of a report (written indented, one key a line)
  sed -n "s/^  \"$2\": \\([0-9.eE+-]*\\),\\{0,1\\}\$/\\1/p" "$1"
}
# json_inner FILE KEY: the first number under KEY one level down. Ask only for
# keys of latency_ms and outcomes: those come before the sample maps, whose
# keys are messages.
json_inner() {
  sed -n "s/^    \"$2\": \\([0-9.eE+-]*\\),\\{0,1\\}\$/\\1/p" "$1" | head -n 1
}

# --- build, services, output ------------------------------------------------
make --no-print-directory build
# Without the lock's descriptor: services it starts outlive this run and must not hold the lock.
bash scripts/test-services.sh 9>&-

mkdir -p "$OUT"
rm -rf "$OUT/logs" "$OUT"/*.json "$OUT"/*.pprof "$OUT/summary.txt"
mkdir "$OUT/logs"

redis() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n "$REDIS_DB" "$@"; }
keys=$(redis DBSIZE) || die "redis-cli cannot reach 127.0.0.1:$REDIS_PORT"
if [ "$keys" != 0 ]; then say "Redis database $REDIS_DB held $keys keys (a bench left behind?); flushing it"; fi
redis_used=1
redis FLUSHDB >/dev/null

createdb -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DB" || die "createdb $PG_DB"
db_created=1

# --- sandbox providers --------------------------------------------------------
SB_PORT=$(free_port)
SB_DIR=$WORK/sandbox
APPS=$("$BIN" bench -init-sandbox-apps "$SB_DIR" -sandbox-url "https://127.0.0.1:$SB_PORT")
"$BIN" sandbox --listen "127.0.0.1:$SB_PORT" --ca-dir "$SB_DIR" --apps-file "$APPS" --history 0 \
  >"$OUT/logs/sandbox.log" 2>&1 &
pids+=($!)
wait_until sandbox "$!" 15 port_open "$SB_PORT"
say "sandbox providers at https://127.0.0.1:$SB_PORT"

# --- gateways -----------------------------------------------------------------
# start_gateway NAME DATABASE_URL REDIS_URL [ENV=VALUE…]: migrates, serves,
# creates the workspaces; sets GW_PID, GW_URL and GW_TOKENS.
# Every gateway and its CLI sign workspace tokens with one key made for this run.
TOKEN_KEY="bk:$(head -c 32 /dev/urandom | base64)"
start_gateway() {
  local name=$1 port; port=$(free_port)
  local -a env=(PUSHGATE_LISTEN="127.0.0.1:$port" PUSHGATE_PUBLIC_URL="http://127.0.0.1:$port" PUSHGATE_TOKEN_KEY="$TOKEN_KEY"
    PUSHGATE_DATABASE_URL="$2" PUSHGATE_REDIS_URL="$3" PUSHGATE_APPS_FILE="$APPS" PUSHGATE_LOG_LEVEL=warn "${@:4}")
  GW_PPROF=
  if [ -n "$PROFILE" ]; then
    GW_PPROF=127.0.0.1:$(free_port)
    env+=(PUSHGATE_PPROF_LISTEN="$GW_PPROF")
  fi
  env "${env[@]}" "$BIN" migrate >"$OUT/logs/$name-migrate.log" 2>&1 || die "$name: migrate: $(tail -n 3 "$OUT/logs/$name-migrate.log")"
  GW_TOKENS=$WORK/$name.tokens
  : >"$GW_TOKENS"
  local i ws
  for i in $(seq 1 "$WORKSPACES"); do
    ws=$(env "${env[@]}" "$BIN" workspace create --name "bench $i" --email "bench+$i@example.com" \
      --plan enterprise --accept-terms --json 2>>"$OUT/logs/$name-workspaces.log") ||
      die "$name: workspace create: $(tail -n 3 "$OUT/logs/$name-workspaces.log")"
    sed -n 's/^  "token": "\([^"]*\)",\{0,1\}$/\1/p' <<<"$ws" >>"$GW_TOKENS"
  done
  [ "$(wc -l <"$GW_TOKENS")" = "$WORKSPACES" ] || die "$name: expected $WORKSPACES tokens in the workspace create output"
  env "${env[@]}" "$BIN" serve >"$OUT/logs/$name.log" 2>&1 &
  GW_PID=$!
  pids+=("$GW_PID")
  wait_until "$name" "$GW_PID" 30 ready "$port"
  GW_URL=http://127.0.0.1:$port
  say "$name at $GW_URL (pid $GW_PID, $WORKSPACES enterprise workspaces)"
}

start_gateway gateway-sqlite "sqlite:$WORK/pushgate.db" ""
SQLITE_PID=$GW_PID SQLITE_URL=$GW_URL SQLITE_TOKENS=$GW_TOKENS SQLITE_PPROF=$GW_PPROF
start_gateway gateway-redis "postgres://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable" "$REDIS_URL"
REDIS_GW_PID=$GW_PID REDIS_GW_URL=$GW_URL REDIS_GW_TOKENS=$GW_TOKENS REDIS_GW_PPROF=$GW_PPROF
start_gateway gateway-redis-nolog "postgres://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable" "$REDIS_URL" PUSHGATE_DELIVERY_LOG=off
NOLOG_GW_PID=$GW_PID NOLOG_GW_URL=$GW_URL NOLOG_GW_TOKENS=$GW_TOKENS

# --- runs -----------------------------------------------------------------------
# The other processes on the machine are watched too, to show where the CPU went.
watch=sandbox=${pids[0]}
redis_pid=$(redis INFO server | tr -d '\r' | sed -n 's/^process_id://p')
if [ -n "$redis_pid" ] && [ -r "/proc/$redis_pid/stat" ]; then watch+=,redis=$redis_pid; fi

# The machine is shared: before each run, wait (up to BENCH_QUIET_WAIT seconds
# in all) until it is nearly idle, since what others use is not ours to measure.
quiet_budget=${BENCH_QUIET_WAIT:-60}
busy_cores() { # over one second
  local a b
  a=$(awk '/^cpu / { print $5 + $6 }' /proc/stat); sleep 1; b=$(awk '/^cpu / { print $5 + $6 }' /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$(nproc)" -v hz="$(getconf CLK_TCK)" 'BEGIN { c = n - (b - a) / hz; printf "%.2f", c < 0 ? 0 : c }'
}
wait_quiet() {
  local busy
  while busy=$(busy_cores); awk -v b="$busy" 'BEGIN { exit !(b > 0.25) }'; do
    if [ "$quiet_budget" -le 0 ]; then say "the machine is busy ($busy cores in use); running anyway, see 'other' in the summary"; return; fi
    say "the machine is busy ($busy cores in use by others); waiting"
    quiet_budget=$((quiet_budget - 2))
    sleep 1
  done
}

# bench LABEL FLAGS...: one run; its table goes to the terminal and logs/LABEL.txt.
bench() {
  local label=$1; shift
  wait_quiet
  say "run $label"
  # In the background, so that an interrupt ends the wait at once instead of after the run.
  "$BIN" bench -label "$label" -c "$CONC" -duration "$DURATION" -warmup "$WARMUP" -workspaces "$WORKSPACES" \
    -watch "$watch" -json "$OUT/$label.json" "$@" >"$OUT/logs/$label.txt" 2>&1 &
  running=$!
  local rc=0
  wait "$running" || rc=$?
  running=
  cat "$OUT/logs/$label.txt"
  [ "$rc" = 0 ] || die "run $label failed (see above)"
}

seconds() { # a Go duration of whole seconds or minutes (20s, 5m) in seconds
  case $1 in
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *) die "cannot profile with a duration of $1: use whole seconds or minutes" ;;
  esac
}

# profile_during LABEL ADDR: while run LABEL measures (after its warm-up), save
# the CPU and allocation profiles of the gateway whose pprof listens at ADDR.
profile_pid=
profile_during() {
  [ -n "$PROFILE" ] || return 0
  local label=$1 addr=$2 w d
  w=$(seconds "$WARMUP") d=$(($(seconds "$DURATION") - 2))
  [ "$d" -ge 1 ] || die "BENCH_PROFILE needs a BENCH_DURATION of 3s or more"
  (
    sleep "$w"
    curl -fsS -o "$OUT/$label.allocs.pprof" "http://$addr/debug/pprof/allocs?seconds=$d" &
    curl -fsS -o "$OUT/$label.cpu.pprof" "http://$addr/debug/pprof/profile?seconds=$d"
    wait
  ) >>"$OUT/logs/$label.pprof.log" 2>&1 &
  profile_pid=$!
}
profile_saved() { # LABEL
  [ -n "$profile_pid" ] || return 0
  wait "$profile_pid" || say "saving profiles failed; see $OUT/logs"
  profile_pid=
  say "profiles: $OUT/$1.cpu.pprof and $1.allocs.pprof (go tool pprof bin/pushgate FILE)"
}

redis_info() { redis INFO "$1" | tr -d '\r' | sed -n "s/^$2://p"; }
evalsha_calls() { redis INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0; }
pg_xacts() {
  psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -Atc \
    "select xact_commit + xact_rollback from pg_stat_database where datname = '$PG_DB'"
}

bench direct --direct -apps-file "$APPS"
profile_during gateway-sqlite "$SQLITE_PPROF"
bench gateway-sqlite -url "$SQLITE_URL" -tokens "$SQLITE_TOKENS" -pid "$SQLITE_PID"
profile_saved gateway-sqlite
# Per push, the design allows no database access and at most one Redis round
# trip. Redis counts commands and memory for the whole instance: other clients
# of 127.0.0.1:6379 (tests running meanwhile) blur these two figures.
cmds0=$(redis_info stats total_commands_processed) evals0=$(evalsha_calls) mem0=$(redis_info memory used_memory) xacts0=$(pg_xacts)
profile_during gateway-redis "$REDIS_GW_PPROF"
bench gateway-redis -url "$REDIS_GW_URL" -tokens "$REDIS_GW_TOKENS" -pid "$REDIS_GW_PID"
profile_saved gateway-redis
sleep 1 # PostgreSQL publishes its counters at most once a second
cmds1=$(redis_info stats total_commands_processed) evals1=$(evalsha_calls) mem1=$(redis_info memory used_memory) xacts1=$(pg_xacts)
redis_memory=$(redis_info memory used_memory_human)
redis_keys=$(redis DBSIZE)
pushes=$(($(json_number "$OUT/gateway-redis.json" requests) + $(json_number "$OUT/gateway-redis.json" warmup_requests)))
per_push() { awk -v a="$1" -v b="$2" -v n="$pushes" -v f="$3" 'BEGIN { printf f, (b - a) / n }'; }

sat=$(json_number "$OUT/gateway-redis.json" requests_per_s)
[ -n "$sat" ] || die "no requests_per_s in $OUT/gateway-redis.json"
bench gateway-redis-nolog -url "$NOLOG_GW_URL" -tokens "$NOLOG_GW_TOKENS" -pid "$NOLOG_GW_PID"
half=$(awk -v s="$sat" 'BEGIN { r = int(s / 2); if (r < 1) r = 1; print r }')
profile_during gateway-redis-half "$REDIS_GW_PPROF"
bench gateway-redis-half -url "$REDIS_GW_URL" -tokens "$REDIS_GW_TOKENS" -pid "$REDIS_GW_PID" -rate "$half"
profile_saved gateway-redis-half
bench direct-half --direct -apps-file "$APPS" -rate "$half"

# --- soak (BENCH_SOAK) ----------------------------------------------------------
# Hours of pushes through the same workspaces must not need more memory than
# minutes do. Redis figures cover the whole instance, as above.
if [ -n "$SOAK" ]; then
  soak_mem0=$(redis_info memory used_memory) soak_keys0=$(redis DBSIZE)
  # The later -duration wins over bench's own.
  bench gateway-redis-soak -url "$REDIS_GW_URL" -tokens "$REDIS_GW_TOKENS" -pid "$REDIS_GW_PID" -rate "$half" -duration "$SOAK"
  soak_mem1=$(redis_info memory used_memory) soak_keys1=$(redis DBSIZE)
fi

# soak_summary: the soak's section of the summary, from its JSON and its table
# (which alone prints the RSS timeline, and only for a run of 2 minutes or more).
soak_summary() {
  local f=$OUT/gateway-redis-soak.json log=$OUT/logs/gateway-redis-soak.txt pushes not_ok
  pushes=$(($(json_number "$f" requests) + $(json_number "$f" warmup_requests)))
  not_ok=$(($(json_inner "$f" fail) + $(json_inner "$f" other) + $(json_number "$f" errors)))
  echo "soak: gateway-redis at the fixed rate of $half/s for $SOAK after $WARMUP warm-up (BENCH_SOAK)"
  awk -v r="$(json_number "$f" requests_per_s)" -v p50="$(json_inner "$f" p50)" -v p99="$(json_inner "$f" p99)" \
    -v bad="$not_ok" -v n="$(json_number "$f" requests)" \
    'BEGIN { printf "  %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d of %d requests not ok\n", r, p50, p99, bad, n }'
  grep -E '^  (pid [0-9]+:|BEHIND SCHEDULE)' "$log" || true
  grep '^  rss over the run:' "$log" || echo "  rss over the run: not shown for a soak shorter than 2 minutes"
  awk -v a="$soak_mem0" -v b="$soak_mem1" -v n="$pushes" -v k0="$soak_keys0" -v k1="$soak_keys1" -v db="$REDIS_DB" \
    'BEGIN { printf "  redis used_memory %d → %d bytes (%+d, %+.3f per push over %d pushes, warm-up included); keys in db %d: %d → %d\n",
      a, b, b - a, (b - a) / (n > 0 ? n : 1), n, db, k0, k1 }'
}

# --- summary --------------------------------------------------------------------------
{
  echo "pushgate make bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git describe --tags --always --dirty 2>/dev/null || echo unknown)"
  echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory, $(uname -sr)"
  echo "runs: c=$CONC, $WARMUP warm-up then $DURATION each, $WORKSPACES enterprise workspaces per gateway, Mattermost protocol, half iOS/half Android; fixed rate = half of gateway-redis = $half/s"
  echo "gateway-redis, per push over its $pushes pushes (warm-up included): $(per_push "$evals0" "$evals1" %.2f) EVALSHA" \
    "($(per_push "$cmds0" "$cmds1" %.1f) Redis commands, those run by scripts included)," \
    "$(per_push "$xacts0" "$xacts1" %.4f) PostgreSQL transactions, $(per_push "$mem0" "$mem1" %+.0f) bytes of Redis used_memory;"
  echo "redis after gateway-redis: used_memory_human=$redis_memory, $redis_keys keys in db $REDIS_DB"
  awk -v on="$sat" -v off="$(json_number "$OUT/gateway-redis-nolog.json" requests_per_s)" -v d="$(json_number "$OUT/direct.json" requests_per_s)" \
    -v con="$(json_inner "$OUT/gateway-redis.json" cpu_s_per_1000)" -v coff="$(json_inner "$OUT/gateway-redis-nolog.json" cpu_s_per_1000)" \
    'BEGIN { printf "delivery log (target: within 3%%): on, gateway-redis %.0f req/s = %.3f of direct, %.3f cpu s/1k; off, gateway-redis-nolog %.0f req/s = %.3f of direct, %.3f cpu s/1k; on - off: %+.1f%% req/s, %+.1f%% cpu per push\n",
      on, on / d, con, off, off / d, coff, (on - off) / off * 100, (con - coff) / coff * 100 }'
  echo
  "$BIN" bench -summary "$OUT/direct.json" "$OUT/gateway-sqlite.json" "$OUT/gateway-redis.json" "$OUT/gateway-redis-nolog.json" \
    "$OUT/gateway-redis-half.json" "$OUT/direct-half.json"
  if [ -n "$SOAK" ]; then
    echo
    soak_summary
  fi
  echo
  echo "wall time of make bench: $(($(date +%s) - began)) s"
} >"$OUT/summary.txt"
echo
cat "$OUT/summary.txt"
