// Package redisquota keeps monthly quotas, daily usage and duplicate
// suppression in Redis, so that every replica agrees: one Lua script, one
// round trip, per notification.
//
// Data model, per workspace ws (every key carries the hash tag {ws}, so one
// workspace's keys share a Redis Cluster slot):
//
//	<prefix>{ws}:m:2006-01   hash: "u" = units used that month; "DDs", "DDd",
//	                         "DDf", "DDa" = sent, dead tokens, failed, acked on
//	                         day DD; "g" = seeded from the database, "n" =
//	                         counted before the seed. Expires 35 days after
//	                         the month ends.
//	<prefix>{ws}:k:<n>       hash: the dedupe keys recorded in the n-th
//	                         10-minute bucket since the epoch; each value is
//	                         tag * 2^21 + the offset in the bucket (ms) * 2 +
//	                         state (see admitScript), and a settled outcome's
//	                         receipt beside its key. Expires 71 minutes after
//	                         the bucket opens.
//	<prefix>{ws}:r:<batch>   a reconciled batch's guard (24 h).
//
// Decisions follow the admission's At, never Redis's clock: Redis's own
// expiry only collects garbage, and it is set relative to At (a month hash
// lives until 35 days after its month as seen from At), so tests can use any
// time without sleeping. Callers pass the current time as At.
//
// When Redis fails or does not answer within Options.Timeout, Policy decides:
// FailClosed refuses admissions with CodeUnavailable; FailOpen (the default)
// admits against a local count per workspace and month, exact on this
// replica only, and Run writes what was counted locally into Redis once it
// answers again. Settle and RecordAck are buffered the same way under both
// policies, since they admit nothing. An admission whose answer was lost may
// have run in Redis; Run settles it once by its dedupe key, so the count
// ends equal to what was forwarded.
package redisquota

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/pushgate/pushgate/tenants"
)

var _ tenants.QuotaStore = (*Store)(nil)

const (
	window = tenants.DedupeWindow
	// bucketSpan is how much time one dedupe hash covers: small enough that an
	// entry outlives the window by at most this much, large enough that an
	// Admit reads few buckets.
	bucketSpan = 10 * time.Minute
	// bucketsChecked is how many buckets may hold an entry younger than the window.
	bucketsChecked = int((window+bucketSpan-1)/bucketSpan) + 1
	// clockGrace keeps keys a little longer than needed, for clock skew between replicas.
	clockGrace = time.Minute
	// monthGrace keeps a month's counts in Redis after it ends, for the usage
	// page and for the rollup into the database.
	monthGrace = 35 * 24 * time.Hour
	// breakerPause is how long calls skip Redis after it failed, so that an
	// outage costs one timeout per second instead of one per request.
	breakerPause = time.Second
	// maxKeyLen bounds a dedupe key: it is a short hash, never the payload.
	maxKeyLen = 64
)

// Policy says what Admit does when Redis is unreachable.
type Policy int

// The policies.
const (
	// FailOpen keeps admitting against a local count, exact per replica.
	FailOpen Policy = iota
	// FailClosed refuses admissions with CodeUnavailable until Redis answers.
	FailClosed
)

func (p Policy) String() string {
	if p == FailClosed {
		return "fail_closed"
	}
	return "fail_open"
}

// Options configure a Store; the zero value is usable.
type Options struct {
	// Prefix starts every key (default "pg:"); it must not contain braces.
	Prefix string
	Policy Policy
	// Timeout bounds each call to Redis (default 150ms).
	Timeout time.Duration
	Log     *slog.Logger
	// Registerer receives the store's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock of the outage breaker and the reconciler (default time.Now).
	Now func() time.Time
	// Archive, when set, seeds a month that Redis does not hold (it lost its
	// data, or the month is new) from the counts rolled up into the database.
	Archive tenants.ArchivedUsageReader
}

// Store is a tenants.QuotaStore in Redis. Start Run to reconcile what was
// counted locally during an outage.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	policy  Policy
	timeout time.Duration
	// deadlines is set when rdb's socket I/O follows context deadlines; otherwise
	// each call runs in a goroutine that the caller stops waiting for at the timeout.
	deadlines bool
	log       *slog.Logger
	now       func() time.Time
	metrics   *metrics

	// openUntil (unix ns) is when calls try Redis again after a failure; 0: closed.
	openUntil atomic.Int64
	// down is set from the first failure of an outage until Redis answers, so each outage is logged once.
	down atomic.Bool

	// pipe pipelines admissions on a connection of the store's own; nil for clients other than *redis.Client.
	pipe *admitPipe

	seen  seenCounts
	local local

	// archive is where a month that Redis lost is seeded from; nil: never seeded.
	archive  tenants.ArchivedUsageReader
	seeds    singleflight.Group
	archDown atomic.Int64 // unix ns until which the archive is not asked again

	instance string
	batches  atomic.Int64
	tags     atomic.Uint32
	flushMu  sync.Mutex
	kick     chan struct{}
}

// New returns a Store over rdb. With a *redis.Client, admissions go through
// a connection of the store's own (dialled like rdb's, released by Close),
// pipelined with each other; other clients, a *redis.ClusterClient among
// them, get one go-redis call each, which follows the cluster's slot map. For
// the other calls, with ContextTimeoutEnabled set in rdb's options,
// Options.Timeout reaches the socket; without it, go-redis waits for its own
// read timeout, so each call runs in a goroutine of its own (a little
// slower) to stay within Options.Timeout.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "pg:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 150 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	s := &Store{
		rdb: rdb, prefix: opts.Prefix, policy: opts.Policy, timeout: opts.Timeout,
		deadlines: followsDeadlines(rdb), log: opts.Log, now: opts.Now,
		metrics:  newMetrics(opts.Registerer, opts.Log),
		instance: hex.EncodeToString(id[:]),
		kick:     make(chan struct{}, 1),
		archive:  opts.Archive,
	}
	if c, ok := rdb.(*redis.Client); ok {
		s.pipe = newAdmitPipe(c.Options(), opts.Timeout, func(ctx context.Context) error { return admitScript.Load(ctx, rdb).Err() })
	}
	s.tags.Store(binary.BigEndian.Uint32(id[:]))
	s.seen.m = make(map[wsPeriod]*atomic.Int64)
	s.local.init()
	return s
}

// Admit decides one notification in one round trip to Redis; a second one,
// and one database read, only when the month's count must first be seeded.
func (s *Store) Admit(ctx context.Context, a tenants.Admission) (tenants.Verdict, error) {
	if err := checkAdmission(a); err != nil {
		return tenants.Verdict{}, err
	}
	if err := ctx.Err(); err != nil {
		return tenants.Verdict{}, err
	}
	at := a.At.UTC()
	p := tenants.PeriodOf(at)
	if s.breakerOpen() {
		return s.admitLocally(a, at, p, errBreakerOpen, 0)
	}
	if a.DedupeKey != "" && s.local.undos.Load() > 0 && s.local.hasUndo(a.WorkspaceID, a.DedupeKey) {
		// A failed attempt of this key may have counted in Redis: take it back first.
		_ = s.Flush(ctx)
	}
	tag := s.nextTag()
	res, n, err := s.admitOnce(ctx, &a, at, p, s.seedMode(), tag)
	if err == nil && n == 2 && res[0] == scriptUnseeded {
		var mode byte
		if mode, err = s.seed(ctx, a.WorkspaceID, p, at); err == nil {
			res, n, err = s.admitOnce(ctx, &a, at, p, mode, tag)
		} else if tenants.ErrorCode(err) == tenants.CodeUnavailable {
			return tenants.Verdict{}, err
		}
		if err == nil && n == 2 && res[0] == scriptUnseeded {
			// Lost again between the seed and the admission: count on top, seed later.
			res, n, err = s.admitOnce(ctx, &a, at, p, seedSkip, tag)
		}
	}
	if err == nil && n != 2 && n != 3 {
		err = fmt.Errorf("admit script answered %v", res[:min(n, len(res))])
	}
	if err != nil {
		// Redis may have run the admission though its answer was lost.
		if ctx.Err() != nil {
			s.undoLater(&a, at, tag)
			return tenants.Verdict{}, ctx.Err()
		}
		s.redisFailed(err)
		return s.admitLocally(a, at, p, err, tag)
	}
	s.redisAnswered()
	v := tenants.Verdict{Used: res[1], Limit: a.Limit}
	if n == 3 {
		v.Limit = res[2] // a limit published since the caller's copy wins
	}
	switch res[0] {
	case scriptAdmitted:
		v.Decision = tenants.Admitted
	case scriptReadmitted:
		v.Decision = tenants.Readmitted
	case scriptDuplicate:
		v.Decision = tenants.Duplicate
	case scriptExhausted:
		v.Decision = tenants.Exhausted
	default:
		return tenants.Verdict{}, tenants.Internal(fmt.Errorf("admit script answered decision %d", res[0]), "counting a notification")
	}
	k := wsPeriod{a.WorkspaceID, p}
	s.seen.set(k, v.Used)
	if s.local.active.Load() {
		s.local.forget(k)
	}
	return v, nil
}

// admitOnce runs the admit script once, pipelined when the store has its own connection.
func (s *Store) admitOnce(ctx context.Context, a *tenants.Admission, at time.Time, p tenants.Period, seed byte, tag int64) ([3]int64, int, error) {
	if s.pipe != nil {
		c := s.pipe.call()
		c.cmd = s.appendAdmit(c.cmd, a, at, p, seed, tag)
		return s.pipe.admit(ctx, c)
	}
	return s.admitViaGoRedis(ctx, s.appendAdmit(make([]byte, 0, 512), a, at, p, seed, tag))
}

// nextTag returns the tag of an admission attempt, 1..maxTag, cycling from a random start.
func (s *Store) nextTag() int64 { return 1 + int64(s.tags.Add(1)%maxTag) }

// admitArgc is the number of arguments (ARGV) of the admit script.
const admitArgc = 9

// admitViaGoRedis sends an admission encoded by appendAdmit through go-redis
// (which routes it to the slot of its keys on a cluster), loading the script
// once after a NOSCRIPT answer. Once sent, its answer is awaited within the
// timeout even if the caller leaves, as on the pipeline, so that a count is
// never left in doubt by a caller alone.
func (s *Store) admitViaGoRedis(ctx context.Context, cmd []byte) (res [3]int64, n int, err error) {
	args, _, ok := splitArgs(cmd)
	if !ok {
		return res, 0, errors.New("admit command is not well-formed")
	}
	all, err := callFor(s, context.WithoutCancel(ctx), s.timeout, func(ctx context.Context) ([]int64, error) {
		all, err := s.rdb.Do(ctx, args...).Int64Slice()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := admitScript.Load(ctx, s.rdb).Err(); err != nil {
				return nil, err
			}
			all, err = s.rdb.Do(ctx, args...).Int64Slice()
		}
		return all, err
	})
	n = copy(res[:], all)
	if err == nil && len(all) > len(res) {
		n = len(all)
	}
	return res, n, err
}

// Close closes the store's own connection (the client passed to New stays open).
func (s *Store) Close() {
	if s.pipe != nil {
		s.pipe.close()
	}
}

// Settle counts an outcome of an admitted notification and keeps its key as
// counted but undelivered; while Redis is unreachable it is buffered for Run.
func (s *Store) Settle(ctx context.Context, workspaceID, dedupeKey string, outcome tenants.Outcome, at time.Time) error {
	if err := checkCall(workspaceID, at); err != nil {
		return err
	}
	if len(dedupeKey) > maxKeyLen {
		return keyTooLong()
	}
	var field string
	switch outcome {
	case tenants.OutcomeDeadToken:
		field = dayField(at.UTC(), 'd')
	case tenants.OutcomeFailed:
		field = dayField(at.UTC(), 'f')
	case tenants.OutcomeRetryLater:
	default:
		return tenants.Errorf(tenants.CodeInvalid, "unknown push outcome %q: want dead_token, failed or retry_later", outcome)
	}
	return s.count(ctx, workspaceID, field, dedupeKey, at.UTC())
}

// RecordAck counts a delivery receipt for the day of at; while Redis is
// unreachable it is buffered for Run.
func (s *Store) RecordAck(ctx context.Context, workspaceID string, at time.Time) error {
	if err := checkCall(workspaceID, at); err != nil {
		return err
	}
	return s.count(ctx, workspaceID, dayField(at.UTC(), 'a'), "", at.UTC())
}

func (s *Store) count(ctx context.Context, ws, field, key string, at time.Time) error {
	if s.breakerOpen() {
		s.countLocally(ws, field, key, at, 0)
		return nil
	}
	p := tenants.PeriodOf(at)
	nk := 1
	if key != "" {
		nk += bucketsChecked
	}
	keys, keyField, off := s.keys(ws, p, at, nk, key)
	tag := s.nextTag()
	err := s.call(ctx, func(ctx context.Context) error {
		return countScript.Run(ctx, s.rdb, keys, field, monthTTL(p, at).Milliseconds(), keyField, off, bucketTTL(off), receipt(off, tag)).Err()
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.redisFailed(err)
		s.countLocally(ws, field, key, at, tag)
		return nil
	}
	s.redisAnswered()
	return nil
}

// Usage reads a workspace's month from Redis; it is unavailable while Redis is.
func (s *Store) Usage(ctx context.Context, workspaceID string, p tenants.Period) (tenants.Usage, error) {
	if workspaceID == "" {
		return tenants.Usage{}, tenants.Errorf(tenants.CodeInvalid, "workspace id is required")
	}
	if _, err := time.Parse("2006-01", string(p)); err != nil {
		return tenants.Usage{}, tenants.Errorf(tenants.CodeInvalid, "period %q: want a month as 2006-01", p)
	}
	if s.breakerOpen() {
		return tenants.Usage{}, unavailable(errBreakerOpen)
	}
	h, err := callFor(s, ctx, s.timeout, func(ctx context.Context) (map[string]string, error) {
		return s.rdb.HGetAll(ctx, s.monthKey(workspaceID, p)).Result()
	})
	if err != nil {
		if ctx.Err() != nil {
			return tenants.Usage{}, ctx.Err()
		}
		s.redisFailed(err)
		return tenants.Usage{}, unavailable(err)
	}
	s.redisAnswered()
	if s.archive != nil && h["g"] == "" && (h["u"] == "" || h["n"] != "") {
		// Not seeded since Redis lost it: seed from the database, then read again.
		if mode, err := s.seedMonth(ctx, workspaceID, p, s.now().UTC(), true); err == nil && mode == seedCheck {
			if again, err := callFor(s, ctx, s.timeout, func(ctx context.Context) (map[string]string, error) {
				return s.rdb.HGetAll(ctx, s.monthKey(workspaceID, p)).Result()
			}); err == nil {
				h = again
			}
		}
	}
	return parseUsage(p, h), nil
}

// call runs fn against Redis within the timeout.
func (s *Store) call(ctx context.Context, fn func(context.Context) error) error {
	return s.callWithin(ctx, s.timeout, fn)
}

func (s *Store) callWithin(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	_, err := callFor(s, ctx, timeout, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

// callFor runs fn within timeout and returns its answer; when the socket does
// not follow deadlines fn runs in a goroutine whose late answer is dropped.
func callFor[T any](s *Store, ctx context.Context, timeout time.Duration, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if s.deadlines {
		return fn(ctx)
	}
	type answer struct {
		v   T
		err error
	}
	done := make(chan answer, 1)
	go func() {
		v, err := fn(ctx)
		done <- answer{v, err}
	}()
	select {
	case a := <-done:
		return a.v, a.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// followsDeadlines reports whether rdb's socket I/O follows context deadlines.
func followsDeadlines(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// parseUsage turns a month hash into its total and its days, ascending.
func parseUsage(p tenants.Period, h map[string]string) tenants.Usage {
	u := tenants.Usage{Period: p}
	var days [32]tenants.DailyUsage
	for f, v := range h {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		if f == "u" {
			u.Used = n
			continue
		}
		if len(f) != 3 {
			continue
		}
		d, err := strconv.Atoi(f[:2])
		if err != nil || d < 1 || d > 31 {
			continue
		}
		switch f[2] {
		case 's':
			days[d].Sent = n
		case 'd':
			days[d].DeadTokens = n
		case 'f':
			days[d].Failed = n
		case 'a':
			days[d].Acked = n
		}
	}
	for d := 1; d <= 31; d++ {
		if days[d] != (tenants.DailyUsage{}) {
			days[d].Date = fmt.Sprintf("%s-%02d", p, d)
			u.Daily = append(u.Daily, days[d])
		}
	}
	return u
}

// keys returns the month hash of p and, when n > 1, the n-1 dedupe buckets
// ending with at's, newest first, and the field of dedupeKey, all cut from one
// string (one allocation); and at's offset in its bucket (ms).
func (s *Store) keys(ws string, p tenants.Period, at time.Time, n int, dedupeKey string) ([]string, string, int64) {
	bucket, off := bucketOf(at)
	var sb strings.Builder
	sb.Grow(n*(len(s.prefix)+len(ws)+16) + 8)
	ends := make([]int, n)
	s.writeBase(&sb, ws)
	sb.WriteString("m:")
	sb.WriteString(string(p))
	ends[0] = sb.Len()
	for i := 1; i < n; i++ {
		s.writeBase(&sb, ws)
		sb.WriteString("k:")
		var num [20]byte
		sb.Write(strconv.AppendInt(num[:0], bucket-int64(i-1), 10))
		ends[i] = sb.Len()
	}
	if dedupeKey != "" {
		var f [8]byte
		sb.Write(appendField(f[:0], dedupeKey))
	}
	all := sb.String()
	keys := make([]string, n)
	start := 0
	for i, end := range ends {
		keys[i] = all[start:end]
		start = end
	}
	return keys, all[start:], off
}

// appendField appends the 8-byte FNV-1a hash of a dedupe key: what a bucket
// stores. Keys already are short hashes; 64 bits keep a collision between two
// notifications of one workspace within an hour below one in a million even
// at 3.6 million a hour, and halve the bytes of a 16-character key.
func appendField(b []byte, dedupeKey string) []byte {
	h := uint64(14695981039346656037)
	for i := 0; i < len(dedupeKey); i++ {
		h ^= uint64(dedupeKey[i])
		h *= 1099511628211
	}
	return binary.BigEndian.AppendUint64(b, h)
}

func (s *Store) writeBase(sb *strings.Builder, ws string) {
	sb.WriteString(s.prefix)
	sb.WriteByte('{')
	sb.WriteString(ws)
	sb.WriteString("}:")
}

func (s *Store) base(ws string) string { return s.prefix + "{" + ws + "}:" }

func (s *Store) monthKey(ws string, p tenants.Period) string { return s.base(ws) + "m:" + string(p) }

func (s *Store) bucketKey(ws string, bucket int64) string {
	return s.base(ws) + "k:" + strconv.FormatInt(bucket, 10)
}

// bucketOf returns the bucket number of at and at's offset in it (ms).
func bucketOf(at time.Time) (int64, int64) {
	span := bucketSpan.Milliseconds()
	ms := at.UnixMilli()
	b := ms / span
	if ms%span < 0 {
		b--
	}
	return b, ms - b*span
}

// dayField names the hash field of at's day for kind s(ent), d(ead), f(ailed) or a(cked).
func dayField(at time.Time, kind byte) string {
	f := dayFieldBytes(at, kind)
	return string(f[:])
}

func dayFieldBytes(at time.Time, kind byte) [3]byte {
	d := at.Day()
	return [3]byte{byte('0' + d/10), byte('0' + d%10), kind}
}

// monthTTL keeps a month hash until monthGrace after the month ends, seen from at.
func monthTTL(p tenants.Period, at time.Time) time.Duration {
	return max(p.End().Add(monthGrace).Sub(at), monthGrace)
}

// bucketTTL keeps a bucket until every entry in it has left the window, seen from its entries.
func bucketTTL(off int64) int64 {
	return (bucketSpan + window + clockGrace).Milliseconds() - off
}

func checkCall(workspaceID string, at time.Time) error {
	if workspaceID == "" {
		return tenants.Errorf(tenants.CodeInvalid, "workspace id is required")
	}
	if at.IsZero() {
		return tenants.Errorf(tenants.CodeInvalid, "the time of the event is required")
	}
	return nil
}

func checkAdmission(a tenants.Admission) error {
	if err := checkCall(a.WorkspaceID, a.At); err != nil {
		return err
	}
	if len(a.DedupeKey) > maxKeyLen {
		return keyTooLong()
	}
	return nil
}

func keyTooLong() error {
	return tenants.Errorf(tenants.CodeInvalid, "dedupe key is longer than %d bytes: pass a short hash, never the payload", maxKeyLen)
}

var errBreakerOpen = errors.New("Redis failed less than a second ago")

func unavailable(err error) error {
	return &tenants.Error{Code: tenants.CodeUnavailable, Reason: "quota_store_unavailable",
		Message: "the quota store is unreachable; retry later", Err: err}
}

func (s *Store) breakerOpen() bool {
	u := s.openUntil.Load()
	return u != 0 && s.now().UnixNano() < u
}

// redisFailed counts a failure, pauses calls to Redis, and logs the first failure of an outage.
func (s *Store) redisFailed(err error) {
	s.metrics.redisErrors.Inc()
	s.openUntil.Store(s.now().Add(breakerPause).UnixNano())
	if s.down.CompareAndSwap(false, true) {
		s.log.Warn("Redis is unreachable; quota decisions follow the outage policy until it answers",
			"policy", s.policy, "err", err)
	}
}

// redisAnswered ends an outage and wakes the reconciler.
func (s *Store) redisAnswered() {
	if !s.down.Load() || !s.down.CompareAndSwap(true, false) {
		return
	}
	s.openUntil.Store(0)
	s.log.Info("Redis answers again", "pending_batches", s.local.pendingBatches())
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// versionMillis is a limit version in Unix milliseconds, 0 when unknown.
func versionMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// PublishLimit stores a workspace's new limit in the month hash of at with
// its version, so every replica's next admission uses it even while its
// cached copy of the workspace is older. A newer version is never
// overwritten by an older one.
func (s *Store) PublishLimit(ctx context.Context, workspaceID string, limit int64, version, at time.Time) error {
	p := tenants.PeriodOf(at.UTC())
	return s.callWithin(ctx, s.timeout, func(ctx context.Context) error {
		return publishScript.Run(ctx, s.rdb, []string{s.monthKey(workspaceID, p)},
			versionMillis(version), limit, monthTTL(p, at.UTC()).Milliseconds()).Err()
	})
}
