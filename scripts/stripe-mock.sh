#!/usr/bin/env bash
# Makes sure stripe-mock, Stripe's own local stand-in for its API, answers on
# 127.0.0.1:12111 for the billing tests (PUSHGATE_TEST_STRIPE_MOCK_URL points
# tests elsewhere). When nothing answers there it is started, after building
# it with `go install` (pinned version) if it is missing. Tests never reach a
# real Stripe host. It never skips: when stripe-mock cannot be had it exits
# non-zero saying why.
set -euo pipefail

VERSION=v0.203.0
PORT=${STRIPE_MOCK_PORT:-12111}
LOG=/tmp/pushgate-test-stripe-mock.log

say() { printf 'stripe-mock: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if port_open "$PORT"; then
  exit 0
fi

GO=${GO:-go}
bin=$(command -v stripe-mock || true)
if [ -z "$bin" ]; then
  gobin=$("$GO" env GOBIN)
  [ -n "$gobin" ] || gobin="$("$GO" env GOPATH)/bin"
  bin=$gobin/stripe-mock
fi
if [ ! -x "$bin" ]; then
  say "installing github.com/stripe/stripe-mock@$VERSION"
  "$GO" install "github.com/stripe/stripe-mock@$VERSION" || die "go install github.com/stripe/stripe-mock@$VERSION failed"
fi

say "starting $bin on 127.0.0.1:$PORT (log $LOG)"
nohup "$bin" -http-addr "127.0.0.1:$PORT" >"$LOG" 2>&1 &
for _ in $(seq 1 100); do
  port_open "$PORT" && exit 0
  kill -0 $! 2>/dev/null || die "stripe-mock exited while starting: $(tail -n 3 "$LOG")"
  sleep 0.1
done
die "stripe-mock is not answering on 127.0.0.1:$PORT after 10s (see $LOG)"
