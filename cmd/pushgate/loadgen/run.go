// Package loadgen is the load generator behind `pushgate bench`: a closed-loop
// or open-loop (fixed-rate) driver, request builders for the gateway's push
// protocols and for the provider clients directly, a log-linear latency
// histogram, and /proc readings of the process under test.
//
// In open-loop mode request i is due at start + i/rate whether or not earlier
// requests have been answered, and its latency counts from that due time, so a
// stalled server shows up in the percentiles instead of silently slowing the
// generator down (no coordinated omission). Concurrency is then the most
// requests in flight.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Status is the protocol-level answer to one push.
type Status uint8

// The answers; they follow the Mattermost protocol's body status.
const (
	StatusOther  Status = iota // no recognisable answer (an error body, or no body)
	StatusOK                   // delivered
	StatusRemove               // the device token is dead
	StatusFail                 // not delivered
	numStatuses
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusRemove:
		return "REMOVE"
	case StatusFail:
		return "FAIL"
	}
	return "other"
}

// Outcome is what one request ended in.
type Outcome struct {
	// HTTPStatus is the response status; 0 when there was no HTTP exchange (direct mode or a transport error).
	HTTPStatus int
	Status     Status
	// Err is a transport error or timeout: the request got no answer.
	Err error
	// Reason says why a push was not delivered (FAIL or other), when the answer says.
	Reason string
}

// Sender sends request seq and waits for its answer. Each worker owns one
// Sender and calls it from one goroutine.
type Sender interface {
	Send(ctx context.Context, seq uint64) Outcome
}

// Config is one run.
type Config struct {
	// Concurrency is the number of workers: requests in flight at most.
	Concurrency int
	// Rate is requests per second on a fixed schedule (open loop); 0 sends as fast as the workers can (closed loop).
	Rate float64
	// Duration is the measured window; ignored when Count is set.
	Duration time.Duration
	// Count is the number of measured requests.
	Count int64
	// Warmup runs before the measured window; its requests are not recorded.
	Warmup time.Duration
	// NewSender makes worker i's sender.
	NewSender func(worker int) Sender
	// Watch are pids whose CPU time and memory are read over the measured window.
	Watch []int
	// SampleEvery is how often the watched processes' RSS is sampled (default 100ms).
	SampleEvery time.Duration
}

// Result is the merged measurement of a run.
type Result struct {
	// Requests counts the measured requests, answered or not.
	Requests int64
	// Warmup counts the requests of the warm-up.
	Warmup int64
	// Unsent counts the requests an open-loop run scheduled in the measured
	// window but never sent because every worker was still waiting for an answer.
	Unsent int64
	// Elapsed is from the start of the measured window to the last measured answer.
	Elapsed    time.Duration
	HTTPStatus map[int]int64
	Statuses   [numStatuses]int64
	Errors     int64
	// ErrorSamples counts errors by message (at most maxSamples distinct messages; the rest under "other").
	ErrorSamples map[string]int64
	// FailSamples counts the reasons of undelivered pushes the same way.
	FailSamples map[string]int64
	Latency     *Histogram
	// Processes are the watched processes' figures, in Config.Watch order.
	Processes []ProcessUsage
	// Machine is the whole machine's CPU over the measured window, when Watch is set
	// and /proc/stat can be read: what the watched processes do not account for is someone else's.
	Machine *MachineUsage
	// Interrupted is set when the context ended the run early.
	Interrupted bool
}

// Throughput is measured requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

const maxSamples = 8

// worker is one goroutine's private tally; merged when all are done.
type worker struct {
	lat      *Histogram
	status   [600]int64
	statuses [numStatuses]int64
	requests int64
	warmup   int64
	errors   int64
	errMsgs  map[string]int64
	failMsgs map[string]int64
	last     time.Time // the latest measured answer
}

func (w *worker) record(o Outcome, latency time.Duration, done time.Time) {
	w.requests++
	w.lat.Record(latency)
	if done.After(w.last) {
		w.last = done
	}
	if o.Err != nil {
		w.errors++
		countSample(w.errMsgs, o.Err.Error())
		return
	}
	if o.HTTPStatus > 0 && o.HTTPStatus < len(w.status) {
		w.status[o.HTTPStatus]++
	}
	w.statuses[o.Status]++
	if o.Status != StatusOK && o.Status != StatusRemove {
		countSample(w.failMsgs, o.Reason)
	}
}

// countSample counts msg, or "other" once maxSamples distinct messages are in m.
func countSample(m map[string]int64, msg string) {
	if msg == "" {
		msg = "(no reason given)"
	}
	if _, ok := m[msg]; ok || len(m) < maxSamples {
		m[msg]++
	} else {
		m["other"]++
	}
}

// Run drives the senders until the duration or count is reached or ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Concurrency <= 0 {
		return nil, errors.New("concurrency must be at least 1")
	}
	if cfg.Count <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("set a duration or a count")
	}
	if cfg.Rate < 0 || cfg.Warmup < 0 {
		return nil, errors.New("rate and warmup must not be negative")
	}
	if cfg.NewSender == nil {
		return nil, errors.New("no sender")
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 100 * time.Millisecond
	}
	senders := make([]Sender, cfg.Concurrency)
	workers := make([]*worker, cfg.Concurrency)
	for i := range senders {
		senders[i] = cfg.NewSender(i)
		workers[i] = &worker{lat: NewHistogram(), errMsgs: map[string]int64{}, failMsgs: map[string]int64{}}
	}

	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
		if interval <= 0 {
			return nil, fmt.Errorf("rate %g is too high", cfg.Rate)
		}
	}
	start := time.Now()
	measureStart := start.Add(cfg.Warmup)
	end := measureStart.Add(cfg.Duration)
	countMode := cfg.Count > 0
	var next, measured atomic.Uint64

	// The watchers start with the measured window.
	watchers := make([]*ProcessWatch, len(cfg.Watch))
	watchErrs := make([]error, len(cfg.Watch))
	var machine machineReading
	var machineErr error
	startWatch := func() {
		if len(cfg.Watch) > 0 {
			machine, machineErr = readMachine()
		}
		for i, pid := range cfg.Watch {
			watchers[i], watchErrs[i] = WatchProcess(pid, cfg.SampleEvery)
		}
	}
	watchStarted := make(chan struct{})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Warmup == 0 {
		startWatch()
		close(watchStarted)
	} else {
		go func() {
			defer close(watchStarted)
			if sleepUntil(runCtx, measureStart) {
				startWatch()
			}
		}()
	}

	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			w, s := workers[i], senders[i]
			var timer *time.Timer
			for {
				seq := next.Add(1) - 1
				due := start.Add(time.Duration(seq) * interval)
				if interval > 0 && !sleepUntilWith(ctx, due, &timer) {
					return
				}
				now := time.Now()
				if interval == 0 {
					due = now // closed loop: a request is due when a worker is free
				}
				// Past the end, stop even when behind schedule: what is still due is reported as unsent.
				if ctx.Err() != nil || (!countMode && (!due.Before(end) || !now.Before(end))) {
					return
				}
				inWindow := !due.Before(measureStart)
				if !inWindow && !now.Before(measureStart) {
					continue // a warm-up backlog is dropped, not carried into the measured window
				}
				if inWindow && countMode && measured.Add(1) > uint64(cfg.Count) {
					return
				}
				o := s.Send(ctx, seq)
				done := time.Now()
				if ctx.Err() != nil {
					return // cut short: neither an answer nor the server's fault
				}
				if !inWindow {
					w.warmup++
					continue
				}
				w.record(o, done.Sub(due), done)
			}
		})
	}
	wg.Wait()
	cancel()
	<-watchStarted

	res := &Result{Latency: NewHistogram(), HTTPStatus: map[int]int64{}, ErrorSamples: map[string]int64{}, FailSamples: map[string]int64{}, Interrupted: ctx.Err() != nil}
	var last time.Time
	for _, w := range workers {
		res.Requests += w.requests
		res.Warmup += w.warmup
		res.Errors += w.errors
		res.Latency.Merge(w.lat)
		for code, n := range w.status {
			if n > 0 {
				res.HTTPStatus[code] += int64(n)
			}
		}
		for s, n := range w.statuses {
			res.Statuses[s] += n
		}
		for msg, n := range w.errMsgs {
			res.ErrorSamples[msg] += n
		}
		for msg, n := range w.failMsgs {
			res.FailSamples[msg] += n
		}
		if w.last.After(last) {
			last = w.last
		}
	}
	if res.Requests > 0 {
		res.Elapsed = last.Sub(measureStart)
	}
	if interval > 0 && !countMode && !res.Interrupted {
		due := ceilDiv(cfg.Warmup+cfg.Duration, interval) - ceilDiv(cfg.Warmup, interval)
		res.Unsent = max(due-res.Requests, 0)
	}
	for i, pw := range watchers {
		if watchErrs[i] != nil {
			return res, fmt.Errorf("watching pid %d: %w", cfg.Watch[i], watchErrs[i])
		}
		if pw == nil {
			continue // the run ended before the measured window
		}
		u, err := pw.Stop()
		if err != nil {
			return res, fmt.Errorf("watching pid %d: %w", cfg.Watch[i], err)
		}
		res.Processes = append(res.Processes, u)
	}
	if len(res.Processes) > 0 && machineErr == nil {
		if m, err := machine.since(); err == nil {
			res.Machine = &m
		}
	}
	return res, nil
}

func ceilDiv(a, b time.Duration) int64 { return int64((a + b - 1) / b) }

// sleepUntil waits for t; false means ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	var timer *time.Timer
	ok := sleepUntilWith(ctx, t, &timer)
	if timer != nil {
		timer.Stop()
	}
	return ok
}

// sleepUntilWith is sleepUntil reusing *timer (created on first use), so a worker allocates no timer per request.
func sleepUntilWith(ctx context.Context, t time.Time, timer **time.Timer) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	if *timer == nil {
		*timer = time.NewTimer(d)
	} else {
		(*timer).Reset(d) // since Go 1.23 a reset timer never delivers a stale time
	}
	select {
	case <-(*timer).C:
		return true
	case <-ctx.Done():
		(*timer).Stop()
		return false
	}
}
