package tenants_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/tenants"
)

// memDeliveries is a DeliveryStore in memory, for the buffer's tests.
type memDeliveries struct {
	mu      sync.Mutex
	saved   []tenants.Delivery
	batches int
	fail    error
	purged  []time.Time
}

func (m *memDeliveries) SaveDeliveries(_ context.Context, batch []tenants.Delivery) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.batches++
	m.saved = append(m.saved, batch...)
	return nil
}

func (m *memDeliveries) Deliveries(context.Context, tenants.DeliveryQuery) (tenants.DeliveryPage, error) {
	return tenants.DeliveryPage{}, nil
}

func (m *memDeliveries) PurgeDeliveries(_ context.Context, before time.Time, limit int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.purged = append(m.purged, before)
	kept := m.saved[:0]
	n := 0
	for _, d := range m.saved {
		if d.At.Before(before) && n < limit {
			n++
			continue
		}
		kept = append(kept, d)
	}
	m.saved = kept
	return n, nil
}

func entry(ws string, n int) tenants.Delivery {
	return tenants.Delivery{WorkspaceID: ws, Protocol: tenants.ProtocolMattermost, Ref: fmt.Sprintf("%s-%d", ws, n),
		App: "apple_rn", Result: tenants.DeliveryDelivered, TokenPrefix: "abcdef", At: time.Unix(int64(n), 0)}
}

func refs(ds []tenants.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Ref
	}
	return out
}

func dropped(t *testing.T, reg *prometheus.Registry, reason string) int {
	t.Helper()
	return counter(t, reg, "pushgate_delivery_log_dropped_total", reason)
}

// counter reads a counter of reg; reason selects its reason label, if any.
func counter(t *testing.T, reg *prometheus.Registry, name, reason string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason == "" {
				return int(m.GetCounter().GetValue())
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return int(m.GetCounter().GetValue())
				}
			}
		}
	}
	t.Fatalf("no %s{reason=%q}", name, reason)
	return 0
}

func TestDeliveryLogBounds(t *testing.T) {
	t.Run("entries come out oldest first", func(t *testing.T) {
		l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: &memDeliveries{}, Total: 10, PerWorkspace: 10})
		for i := range 5 {
			l.Record(entry("a", i))
		}
		got := refs(l.Drain(nil, 3))
		if fmt.Sprint(got) != "[a-0 a-1 a-2]" {
			t.Fatalf("first drain = %v", got)
		}
		if got := refs(l.Drain(nil, 10)); fmt.Sprint(got) != "[a-3 a-4]" {
			t.Fatalf("second drain = %v", got)
		}
		if l.Pending() != 0 {
			t.Fatalf("pending = %d after draining all", l.Pending())
		}
	})
	t.Run("a workspace over its bound loses its own oldest entries, not others'", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: &memDeliveries{}, Total: 100, PerWorkspace: 3, Registerer: reg})
		l.Record(entry("quiet", 0))
		for i := range 10 {
			l.Record(entry("loud", i))
		}
		got := refs(l.Drain(nil, 100))
		if fmt.Sprint(got) != "[quiet-0 loud-7 loud-8 loud-9]" {
			t.Fatalf("drained %v", got)
		}
		if n := dropped(t, reg, tenants.DropWorkspaceBound); n != 7 {
			t.Fatalf("dropped for the workspace bound = %d, want 7", n)
		}
	})
	t.Run("a full buffer drops the oldest entry of all", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: &memDeliveries{}, Total: 4, PerWorkspace: 4, Registerer: reg})
		for i := range 6 {
			l.Record(entry(fmt.Sprint("w", i%2), i))
		}
		got := refs(l.Drain(nil, 100))
		if fmt.Sprint(got) != "[w0-2 w1-3 w0-4 w1-5]" {
			t.Fatalf("drained %v", got)
		}
		if n := dropped(t, reg, tenants.DropTotalBound); n != 2 {
			t.Fatalf("dropped for the total bound = %d, want 2", n)
		}
	})
	t.Run("slots freed by a workspace bound are reused before anything else is dropped", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: &memDeliveries{}, Total: 4, PerWorkspace: 2, Registerer: reg})
		l.Record(entry("a", 0))
		l.Record(entry("a", 1))
		l.Record(entry("a", 2)) // drops a-0, the head
		l.Record(entry("b", 3))
		l.Record(entry("b", 4))
		if got := refs(l.Drain(nil, 100)); fmt.Sprint(got) != "[a-1 a-2 b-3 b-4]" {
			t.Fatalf("drained %v", got)
		}
		if n := dropped(t, reg, tenants.DropTotalBound); n != 0 {
			t.Fatalf("dropped for the total bound = %d, want 0", n)
		}
	})
	t.Run("the buffer grows to its bound without losing order, and starts small again once drained", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: &memDeliveries{}, Total: 5000, PerWorkspace: 5000, BatchSize: 10, Registerer: reg})
		for round := range 2 {
			for i := range 5000 {
				l.Record(entry(fmt.Sprint("w", i%7), round*5000+i))
			}
			got := l.Drain(nil, 10_000)
			if len(got) != 5000 || got[0].Ref != fmt.Sprintf("w0-%d", round*5000) || got[4999].Ref != fmt.Sprintf("w%d-%d", 4999%7, round*5000+4999) {
				t.Fatalf("round %d drained %d entries from %s to %s", round, len(got), got[0].Ref, got[len(got)-1].Ref)
			}
		}
		if n := dropped(t, reg, tenants.DropTotalBound) + dropped(t, reg, tenants.DropWorkspaceBound); n != 0 {
			t.Fatalf("dropped %d below the bounds", n)
		}
	})
	t.Run("long fields are cut and the token keeps 6 characters", func(t *testing.T) {
		l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: &memDeliveries{}})
		d := entry("a", 0)
		d.Reason = string(make([]byte, 1000))
		d.TokenPrefix = "0123456789"
		l.Record(d)
		got := l.Drain(nil, 1)[0]
		if len(got.Reason) != tenants.DeliveryReasonMax || got.TokenPrefix != "012345" {
			t.Fatalf("kept reason of %d bytes and token %q", len(got.Reason), got.TokenPrefix)
		}
	})
	t.Run("a nil log records nothing", func(t *testing.T) {
		var l *tenants.DeliveryLog
		l.Record(entry("a", 0))
		if l.Pending() != 0 {
			t.Fatal("a nil log has entries")
		}
	})
}

// Many goroutines record while a writer drains: every entry is either written
// or counted as dropped, exactly once, and each workspace's order holds.
func TestDeliveryLogConcurrentCountsAreExact(t *testing.T) {
	const workers, perWorker, workspaces = 32, 2000, 8
	reg := prometheus.NewRegistry()
	store := &memDeliveries{}
	l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: store, Total: 5000, PerWorkspace: 1000,
		BatchSize: 256, FlushInterval: time.Millisecond, Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ws := fmt.Sprint("ws", w%workspaces)
			for i := range perWorker {
				d := entry(ws, w*perWorker+i)
				d.Ref = fmt.Sprintf("%d/%d", w, i)
				l.Record(d)
			}
		})
	}
	wg.Wait()
	cancel()
	<-done

	written := counter(t, reg, "pushgate_delivery_log_written_total", "")
	drops := dropped(t, reg, tenants.DropWorkspaceBound) + dropped(t, reg, tenants.DropTotalBound) + dropped(t, reg, tenants.DropWriteFailed)
	if len(store.saved) != written {
		t.Fatalf("store holds %d entries, the counter says %d written", len(store.saved), written)
	}
	if written+drops != workers*perWorker {
		t.Fatalf("written %d + dropped %d = %d, want %d", written, drops, written+drops, workers*perWorker)
	}
	if l.Pending() != 0 {
		t.Fatalf("%d entries still pending after Run returned", l.Pending())
	}
	last := map[int]int{}
	for _, d := range store.saved {
		var w, i int
		fmt.Sscanf(d.Ref, "%d/%d", &w, &i)
		if prev, ok := last[w]; ok && i <= prev {
			t.Fatalf("worker %d: entry %d written after %d", w, i, prev)
		}
		last[w] = i
	}
	t.Logf("%d written in %d batches, %d dropped", written, store.batches, drops)
}

func TestDeliveryLogWriter(t *testing.T) {
	t.Run("a full batch is written without waiting for the interval", func(t *testing.T) {
		store := &memDeliveries{}
		l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: store, BatchSize: 10, FlushInterval: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go l.Run(ctx)
		for i := range 10 {
			l.Record(entry("a", i))
		}
		deadline := time.Now().Add(5 * time.Second)
		for l.Pending() > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		if len(store.saved) != 10 || store.batches != 1 {
			t.Fatalf("saved %d entries in %d batches, want 10 in 1", len(store.saved), store.batches)
		}
	})
	t.Run("a refused batch is retried, and dropped and counted after a minute", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		store := &memDeliveries{fail: errors.New("database down")}
		now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
		var logs strings.Builder
		l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: store, BatchSize: 4, Registerer: reg,
			Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		for i := range 3 {
			l.Record(entry("a", i))
		}
		for range 5 {
			l.WriteAll(context.Background())
		}
		if n := dropped(t, reg, tenants.DropWriteFailed); n != 0 || l.Pending() != 3 {
			t.Fatalf("while failing: dropped %d, pending %d; want 0 and 3", n, l.Pending())
		}
		store.mu.Lock()
		store.fail = nil
		store.mu.Unlock()
		l.Record(entry("a", 3))
		l.WriteAll(context.Background())
		if got := fmt.Sprint(refs(store.saved)); got != "[a-0 a-1 a-2 a-3]" || l.Pending() != 0 {
			t.Fatalf("after the database came back: saved %s, pending %d", got, l.Pending())
		}

		store.mu.Lock()
		store.fail = errors.New("down again")
		store.mu.Unlock()
		l.Record(entry("a", 4))
		l.WriteAll(context.Background())
		now = now.Add(time.Minute)
		l.WriteAll(context.Background())
		if n := dropped(t, reg, tenants.DropWriteFailed); n != 1 || l.Pending() != 0 {
			t.Fatalf("after a minute of failing: dropped %d, pending %d; want 1 and 0", n, l.Pending())
		}
		if w := strings.Count(logs.String(), "level=WARN"); w != 2 || strings.Count(logs.String(), "works again") != 1 {
			t.Fatalf("two outages logged as:\n%s", logs.String())
		}
	})
	t.Run("stopping writes what is left", func(t *testing.T) {
		store := &memDeliveries{}
		l := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: store, FlushInterval: time.Hour})
		for i := range 2500 {
			l.Record(entry("a", i))
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		l.Run(ctx)
		if len(store.saved) != 2500 || store.batches != 3 {
			t.Fatalf("saved %d in %d batches, want 2500 in 3", len(store.saved), store.batches)
		}
	})
}

func TestPurgeDeliveries(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	store := &memDeliveries{}
	for i := range 25_000 {
		store.saved = append(store.saved, tenants.Delivery{WorkspaceID: "a", At: now.Add(-8 * 24 * time.Hour)})
		if i%1000 == 0 {
			store.saved = append(store.saved, tenants.Delivery{WorkspaceID: "a", At: now.Add(-6 * 24 * time.Hour)})
		}
	}
	n, err := tenants.PurgeDeliveries(context.Background(), store, now)
	if err != nil || n != 25_000 {
		t.Fatalf("purged %d, %v; want 25000", n, err)
	}
	if len(store.saved) != 25 {
		t.Fatalf("%d entries left, want the 25 younger than 7 days", len(store.saved))
	}
	if want := now.Add(-tenants.DeliveryRetention); !store.purged[0].Equal(want) {
		t.Fatalf("purged before %v, want %v", store.purged[0], want)
	}
}

func TestRunDeliveryRetentionPurgesAtStartAndOnEachTick(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	store := &memDeliveries{saved: []tenants.Delivery{{WorkspaceID: "a", At: now.Add(-8 * 24 * time.Hour)}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		tenants.RunDeliveryRetention(ctx, store, 5*time.Millisecond, func() time.Time { return now }, slog.New(slog.DiscardHandler))
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		store.mu.Lock()
		runs, left := len(store.purged), len(store.saved)
		store.mu.Unlock()
		if runs >= 3 {
			if left != 0 {
				t.Fatalf("%d entries older than 7 days left after %d purges", left, runs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d purges in 5 s, want at least 3", runs)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}
