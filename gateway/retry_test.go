package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedAttempts answers attempt n with results[n-1] (the last one repeats)
// and records what each attempt saw.
type scriptedAttempts struct {
	results   []Result
	calls     atomic.Int32
	deadlines []time.Duration
	starts    []time.Time
}

func (s *scriptedAttempts) attempt(ctx context.Context) Result {
	n := int(s.calls.Add(1))
	d, _ := ctx.Deadline()
	s.deadlines = append(s.deadlines, time.Until(d))
	s.starts = append(s.starts, time.Now())
	if n > len(s.results) {
		n = len(s.results)
	}
	return s.results[n-1]
}

func testPolicy() retryPolicy {
	return retryPolicy{
		attempts:       3,
		attemptTimeout: time.Second,
		deadline:       5 * time.Second,
		backoffBase:    10 * time.Millisecond,
		backoffMax:     40 * time.Millisecond,
		jitter:         func(d time.Duration) time.Duration { return d },
	}
}

var (
	transient = Result{Outcome: RetryLater, Reason: "ServiceUnavailable"}
	delivered = Result{Outcome: Delivered, ID: "id-1"}
)

func TestRetryLoop(t *testing.T) {
	tests := []struct {
		name         string
		results      []Result
		policy       func(*retryPolicy)
		wantOutcome  Outcome
		wantAttempts int
	}{
		{"delivered on the first attempt is not retried", []Result{delivered}, nil, Delivered, 1},
		{"dead token is never retried", []Result{{Outcome: DeadToken, Reason: "Unregistered"}}, nil, DeadToken, 1},
		{"failed is never retried", []Result{{Outcome: Failed, Reason: "PayloadTooLarge"}}, nil, Failed, 1},
		{"transient failure then success is delivered", []Result{transient, transient, delivered}, nil, Delivered, 3},
		{"retry later stops at the attempt limit", []Result{transient}, nil, RetryLater, 3},
		{"attempt limit is configurable", []Result{transient}, func(p *retryPolicy) { p.attempts = 5 }, RetryLater, 5},
		{"retry-after beyond the deadline stops at once", []Result{{Outcome: RetryLater, Reason: "TooManyRequests", RetryAfter: time.Hour}}, nil, RetryLater, 1},
		{"backoff beyond the deadline stops", []Result{transient}, func(p *retryPolicy) {
			p.deadline = 30 * time.Millisecond
			p.backoffBase = 50 * time.Millisecond
			p.backoffMax = time.Second
		}, RetryLater, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			s := &scriptedAttempts{results: tc.results}
			res := p.run(context.Background(), s.attempt)
			if res.Outcome != tc.wantOutcome || res.Attempts != tc.wantAttempts || int(s.calls.Load()) != tc.wantAttempts {
				t.Errorf("got %v after %d attempts (%d calls), want %v after %d", res.Outcome, res.Attempts, s.calls.Load(), tc.wantOutcome, tc.wantAttempts)
			}
		})
	}
}

func TestRetryLoopKeepsTheProvidersRetryAfter(t *testing.T) {
	s := &scriptedAttempts{results: []Result{{Outcome: RetryLater, Reason: "TooManyRequests", RetryAfter: time.Hour}}}
	res := testPolicy().run(context.Background(), s.attempt)
	if res.RetryAfter != time.Hour || res.Reason != "TooManyRequests" {
		t.Errorf("got %+v, want the provider's reason and RetryAfter for the caller", res)
	}
}

func TestRetryLoopWaitsRetryAfterInsteadOfShorterBackoff(t *testing.T) {
	s := &scriptedAttempts{results: []Result{{Outcome: RetryLater, RetryAfter: 150 * time.Millisecond}, delivered}}
	res := testPolicy().run(context.Background(), s.attempt)
	if res.Outcome != Delivered {
		t.Fatalf("got %+v", res)
	}
	if gap := s.starts[1].Sub(s.starts[0]); gap < 150*time.Millisecond {
		t.Errorf("second attempt after %v, want at least the 150ms Retry-After", gap)
	}
}

func TestRetryLoopBacksOffExponentiallyWithJitter(t *testing.T) {
	var asked []time.Duration
	p := testPolicy()
	p.attempts = 5
	p.jitter = func(d time.Duration) time.Duration { asked = append(asked, d); return d / 2 }
	s := &scriptedAttempts{results: []Result{transient}}
	p.run(context.Background(), s.attempt)
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	if len(asked) != len(want) {
		t.Fatalf("jitter asked for %v, want %v", asked, want)
	}
	for i := range want {
		if asked[i] != want[i] {
			t.Errorf("backoff before attempt %d = %v, want %v (doubling, capped)", i+2, asked[i], want[i])
		}
	}
	for i := 1; i < len(s.starts); i++ {
		if gap := s.starts[i].Sub(s.starts[i-1]); gap < want[i-1]/2 {
			t.Errorf("attempt %d came %v after the previous, want ≥ the jittered %v", i+1, gap, want[i-1]/2)
		}
	}
}

func TestRetryLoopGivesEachAttemptItsOwnTimeout(t *testing.T) {
	p := testPolicy()
	p.attemptTimeout = 200 * time.Millisecond
	s := &scriptedAttempts{results: []Result{transient, delivered}}
	p.run(context.Background(), s.attempt)
	for i, d := range s.deadlines {
		if d > 200*time.Millisecond || d < 100*time.Millisecond {
			t.Errorf("attempt %d had %v left, want about the 200ms attempt timeout", i+1, d)
		}
	}
}

func TestRetryLoopCapsTheLastAttemptAtTheDeadline(t *testing.T) {
	p := testPolicy()
	p.attemptTimeout, p.deadline = time.Second, 300*time.Millisecond
	p.backoffBase, p.backoffMax = 100*time.Millisecond, 100*time.Millisecond
	p.jitter = nil
	s := &scriptedAttempts{results: []Result{transient, delivered}}
	p.run(context.Background(), s.attempt)
	if len(s.deadlines) != 2 {
		t.Fatalf("%d attempts, want 2", len(s.deadlines))
	}
	for i, d := range s.deadlines {
		if d > 300*time.Millisecond-time.Duration(i)*90*time.Millisecond {
			t.Errorf("attempt %d had %v left; the overall deadline of 300ms must bound it", i+1, d)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s = &scriptedAttempts{results: []Result{delivered}}
	p.run(ctx, s.attempt)
	if d := s.deadlines[0]; d > 50*time.Millisecond {
		t.Errorf("attempt had %v left; the caller's 50ms deadline must bound it", d)
	}
}

func TestRetryLoopStopsWhenTheCallerGoesAway(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := testPolicy()
	p.backoffBase, p.backoffMax = time.Second, time.Second
	s := &scriptedAttempts{results: []Result{transient}}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	res := p.run(ctx, s.attempt)
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("took %v after cancel, want it to stop waiting", took)
	}
	if res.Outcome != RetryLater || res.Attempts != 1 {
		t.Errorf("got %+v, want RetryLater after 1 attempt", res)
	}
}

func TestEqualJitterStaysInRange(t *testing.T) {
	for range 1000 {
		if d := equalJitter(100 * time.Millisecond); d < 50*time.Millisecond || d > 100*time.Millisecond {
			t.Fatalf("equalJitter(100ms) = %v, want within [50ms, 100ms]", d)
		}
	}
}
