package loadgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mustRoundTrip writes r as -json does and reads it back as -summary does.
func mustRoundTrip(t *testing.T, r *Report) *Report {
	t.Helper()
	r.Schema = ReportSchema
	path := filepath.Join(t.TempDir(), r.Label+".json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func mustSummary(t *testing.T, reports ...*Report) string {
	t.Helper()
	var b strings.Builder
	if err := WriteSummary(&b, reports); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func summaryRun(label, mode string, rate, rps, p50, p99 float64) *Report {
	r := &Report{Label: label, Mode: mode, Protocol: ProtocolMattermost, Concurrency: 64, Rate: rate,
		Requests: int64(rps * 20), RequestsPerS: rps, LatencyMS: Latency{P50: p50, P99: p99, P999: p99 * 2},
		Bench: &Usage{CPUSPer1000: 0.05}}
	r.Outcomes.OK = r.Requests
	return r
}

func gatewayRun(label string, rate, rps, p50, p99, cpu, rss float64) *Report {
	r := summaryRun(label, "gateway", rate, rps, p50, p99)
	r.Gateway = &Usage{PID: 42, CPUSPer1000: cpu, PeakRSSMiB: rss}
	return r
}

func TestSummary(t *testing.T) {
	direct := summaryRun("direct", "direct", 0, 10000, 4, 10)
	direct.Bench.CPUSPer1000 = 0.1
	sqlite := gatewayRun("gateway-sqlite", 0, 6000, 8, 20, 0.25, 60)
	redis := gatewayRun("gateway-redis", 0, 4000, 12, 30, 0.3, 180)
	redis.DurationS, redis.Bench.CPUS, redis.Gateway.CPUS, redis.Others = 2, 2, 12, map[string]*Usage{"sandbox": {CPUS: 1}}
	redis.Machine = &Machine{CPUs: 8, BusyCores: 7.8}
	redisHalf := gatewayRun("gateway-redis-half", 2000, 2000, 1.5, 9, 0.3, 70)
	directHalf := summaryRun("direct-half", "direct", 2000, 2000, 0.9, 2.5)

	var reports []*Report
	for _, r := range []*Report{direct, sqlite, redis, redisHalf, directHalf} {
		reports = append(reports, mustRoundTrip(t, r))
	}
	out := mustSummary(t, reports...)

	for name, want := range map[string]string{
		"one row per run, fixed rates shown": "gateway @2000/s",
		"gateway cpu and rss in the table":   "0.250",
		"direct's own cpu in the table":      "0.100",
		"throughput ratio of each gateway":   "6000 / 10000 req/s = 0.60",
		"a ratio below target is marked":     "4000 / 10000 req/s = 0.40  <- below 0.50",
		"added latency against direct":       "gateway-redis-half - direct-half @2000/s: p50 +0.60 ms (1.50 - 0.90), p99 +6.50 ms (9.00 - 2.50)  <- over 5",
		"cpu per push against direct":        "gateway-redis        0.300 s / 0.100 s (direct) = 3.0x",
		"a fixed rate against direct at it":  "gateway-redis-half   0.300 s / 0.050 s (direct-half) = 6.0x",
		"cores used per process":             "gateway-redis        gateway 6.00 bench 1.00 sandbox 0.50 other 0.30 = 7.80 of 8 CPUs busy",
		"rss over target is marked":          "peak rss 180.0 MiB  <- over 150",
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(out, want) {
				t.Errorf("summary lacks %q:\n%s", want, out)
			}
		})
	}
	t.Run("runs without a long timeline show none", func(t *testing.T) {
		if strings.Contains(out, "rss over the run") {
			t.Errorf("a timeline shown:\n%s", out)
		}
	})
	t.Run("a long run's RSS timeline follows its peak rss", func(t *testing.T) {
		soak := gatewayRun("gateway-redis-soak", 2000, 2000, 1.5, 9, 0.3, 63)
		soak.Gateway.RSSTimeline = []RSSPoint{{0, 61}, {30.02, 62}, {60.01, 62.5}, {90.02, 62.5}, {120.1, 63}}
		out := mustSummary(t, mustRoundTrip(t, soak))
		want := "peak rss 63.0 MiB\n    rss over the run: 0:00 61.0 MiB, 0:30 62.0, 1:00 62.5, 1:30 62.5, 2:00 63.0 MiB (last minute vs first minute: +0.8 MiB)\n"
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	})
	t.Run("a met target is not marked", func(t *testing.T) {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "gateway-sqlite") && strings.Contains(line, "<-") {
				t.Errorf("marked: %q", line)
			}
		}
	})
	t.Run("all OK runs list no problems", func(t *testing.T) {
		if strings.Contains(out, "not ok (") || strings.Contains(out, "BEHIND") {
			t.Errorf("problems listed:\n%s", out)
		}
	})
}

func TestSummaryProblems(t *testing.T) {
	t.Run("undelivered pushes are counted and explained", func(t *testing.T) {
		r := gatewayRun("gw", 0, 100, 1, 2, 0.1, 50)
		r.Outcomes = Outcomes{OK: 1990, Fail: 7, Other: 1}
		r.Requests, r.Errors = 2000, 2
		r.FailSamples = map[string]int64{"quota exhausted": 7}
		r.ErrorSamples = map[string]int64{"connection reset": 2}
		out := mustSummary(t, r)
		for _, want := range []string{"gw: 10 of 2000 requests not ok (FAIL 7, other 1, no answer 2)", "quota exhausted", "connection reset"} {
			if !strings.Contains(out, want) {
				t.Errorf("summary lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("a run behind schedule is flagged", func(t *testing.T) {
		r := gatewayRun("gw", 5000, 3000, 1, 2, 0.1, 50)
		r.Unsent = 40000
		if out := mustSummary(t, r); !strings.Contains(out, "gw: BEHIND SCHEDULE, 40000") {
			t.Errorf("not flagged:\n%s", out)
		}
	})
	t.Run("the last moment of the window is not behind schedule", func(t *testing.T) {
		r := gatewayRun("gw", 3733, 3733, 1, 2, 0.1, 50)
		r.Requests, r.Unsent = 74656, 4
		if out := mustSummary(t, r); strings.Contains(out, "BEHIND") {
			t.Errorf("flagged:\n%s", out)
		}
	})
	t.Run("a run that shared the machine with others is flagged", func(t *testing.T) {
		r := summaryRun("direct", "direct", 0, 8000, 1, 2)
		r.DurationS, r.Bench.CPUS, r.Others = 20, 10, map[string]*Usage{"sandbox": {CPUS: 9}}
		r.Machine = &Machine{CPUs: 2, BusyCores: 1.97}
		out := mustSummary(t, r)
		if !strings.Contains(out, "direct: NOISY, other processes kept 1.02 of 2 CPUs busy") {
			t.Errorf("not flagged:\n%s", out)
		}
		g := gatewayRun("gw", 0, 4000, 1, 2, 0.1, 50)
		if out := mustSummary(t, r, g); !strings.Contains(out, "4000 / 8000 req/s = 0.50  (not comparable: direct NOISY)") {
			t.Errorf("the ratio is not marked:\n%s", out)
		}
		r.Machine.BusyCores = 1.0
		if out := mustSummary(t, r); strings.Contains(out, "NOISY") {
			t.Errorf("a quiet machine flagged:\n%s", out)
		}
	})
	t.Run("gateway runs without a direct partner say so", func(t *testing.T) {
		out := mustSummary(t, gatewayRun("sat", 0, 100, 1, 2, 0.1, 50), gatewayRun("fixed", 50, 50, 1, 2, 0.1, 50),
			summaryRun("direct-other-rate", "direct", 70, 70, 1, 2))
		for _, want := range []string{"sat: no closed-loop direct run", "fixed @50/s: no direct run at the same rate"} {
			if !strings.Contains(out, want) {
				t.Errorf("summary lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("another schema is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "old.json")
		if err := os.WriteFile(path, []byte(`{"schema":99,"label":"x"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadReport(path); err == nil || !strings.Contains(err.Error(), "schema 99") {
			t.Errorf("err %v", err)
		}
	})
}
