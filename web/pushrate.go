package web

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The delivery metric the region health page is drawn from, and its labels.
const (
	sendsMetric  = "pushgate_provider_sends_total"
	expiryMetric = "pushgate_provider_certificate_expiry_timestamp_seconds"
)

// The provider outcomes, in the order the health page draws them.
var rateOutcomes = []string{"delivered", "dead_token", "retry_later", "failed"}

// rateMinutes is how much history the ring keeps.
const rateMinutes = 60

// PushRates keeps the last hour of provider outcomes per minute. It samples
// the delivery counters the push path already increments, so the push path
// pays nothing for it; memory is fixed (60 minutes × outcomes and reasons).
type PushRates struct {
	g   prometheus.Gatherer
	now func() time.Time

	mu   sync.Mutex
	last map[seriesKey]float64
	ring [rateMinutes]rateBucket
}

type seriesKey struct{ outcome, reason string }

type rateBucket struct {
	minute   int64 // Unix minutes; a bucket of another minute is stale
	outcomes [4]float64
	reasons  map[string]float64 // of outcomes other than delivered
}

// NewPushRates samples g's delivery counters; now is the clock (nil: time.Now).
func NewPushRates(g prometheus.Gatherer, now func() time.Time) *PushRates {
	if now == nil {
		now = time.Now
	}
	return &PushRates{g: g, now: now, last: map[seriesKey]float64{}}
}

// Run samples every interval until ctx ends.
func (p *PushRates) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = p.Sample()
		}
	}
}

// Sample adds what the counters grew by since the last sample to the
// current minute.
func (p *PushRates) Sample() error {
	families, err := p.g.Gather()
	if err != nil && len(families) == 0 {
		return err
	}
	totals := map[seriesKey]float64{}
	for _, f := range families {
		if f.GetName() != sendsMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			var k seriesKey
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "outcome":
					k.outcome = l.GetValue()
				case "reason":
					k.reason = l.GetValue()
				}
			}
			totals[k] += m.GetCounter().GetValue()
		}
	}
	minute := p.now().Unix() / 60
	p.mu.Lock()
	defer p.mu.Unlock()
	b := &p.ring[minute%rateMinutes]
	if b.minute != minute {
		*b = rateBucket{minute: minute, reasons: map[string]float64{}}
	}
	for k, v := range totals {
		d := v - p.last[k]
		p.last[k] = v
		if d <= 0 {
			continue
		}
		for i, o := range rateOutcomes {
			if o == k.outcome {
				b.outcomes[i] += d
			}
		}
		if k.outcome != "delivered" && k.reason != "" {
			b.reasons[k.reason] += d
		}
	}
	return nil
}

// MinuteRate is one minute's outcomes.
type MinuteRate struct {
	At       time.Time
	Outcomes [4]int64 // delivered, dead_token, retry_later, failed
}

// Total is every outcome of the minute.
func (m MinuteRate) Total() int64 {
	return m.Outcomes[0] + m.Outcomes[1] + m.Outcomes[2] + m.Outcomes[3]
}

// ReasonCount is how often a provider gave one reason in the last hour.
type ReasonCount struct {
	Reason string
	Count  int64
}

// LastHour returns the last 60 minutes, oldest first (minutes without
// sends are zero), and the reasons of undelivered pushes, most frequent first.
func (p *PushRates) LastHour() ([]MinuteRate, []ReasonCount) {
	now := p.now().Unix() / 60
	out := make([]MinuteRate, rateMinutes)
	reasons := map[string]float64{}
	p.mu.Lock()
	for i := range out {
		minute := now - rateMinutes + 1 + int64(i)
		out[i].At = time.Unix(minute*60, 0).UTC()
		b := &p.ring[minute%rateMinutes]
		if b.minute != minute {
			continue
		}
		for j, v := range b.outcomes {
			out[i].Outcomes[j] = int64(v)
		}
		for r, v := range b.reasons {
			reasons[r] += v
		}
	}
	p.mu.Unlock()
	list := make([]ReasonCount, 0, len(reasons))
	for r, v := range reasons {
		list = append(list, ReasonCount{Reason: r, Count: int64(v)})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Count != list[j].Count {
			return list[i].Count > list[j].Count
		}
		return list[i].Reason < list[j].Reason
	})
	return out, list
}

// certificateExpiries reads when each certificate-auth app's certificate expires.
func certificateExpiries(g prometheus.Gatherer) map[string]time.Time {
	out := map[string]time.Time{}
	if g == nil {
		return out
	}
	families, _ := g.Gather()
	for _, f := range families {
		if f.GetName() != expiryMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			if app := labelValue(m, "app"); app != "" {
				out[app] = time.Unix(int64(m.GetGauge().GetValue()), 0).UTC()
			}
		}
	}
	return out
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
