package loadgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReport(t *testing.T) {
	res := &Result{Requests: 1000, Warmup: 100, Elapsed: 2 * time.Second, Latency: NewHistogram(),
		HTTPStatus: map[int]int64{200: 990, 429: 10}, Statuses: [numStatuses]int64{StatusOK: 900, StatusRemove: 90, StatusFail: 10},
		FailSamples: map[string]int64{"quota exhausted": 10}}
	for i := range 1000 {
		res.Latency.Record(time.Duration(i+1) * time.Millisecond / 10)
	}
	rep := &Report{Label: "gw", Mode: "gateway", Protocol: ProtocolMattermost, Concurrency: 64}
	rep.Fill(res)
	rep.Gateway = UsageOf(ProcessUsage{PID: 7, CPU: 1500 * time.Millisecond, PeakRSS: 64 << 20, HWM: 70 << 20}, res.Requests)

	t.Run("the table shows the figures", func(t *testing.T) {
		var b strings.Builder
		if err := WriteTable(&b, rep); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"gw", "500", "1000", "900", "90", "50.0", "99.0", "100.00", "1.50", "1.500", "64.0", "200=990 429=10", "quota exhausted"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, b.String())
			}
		}
	})

	t.Run("the JSON keeps its field names", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "r.json")
		if err := rep.WriteJSON(path); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := []string{"bench", "concurrency", "dead_share", "duration_s", "errors", "fail_samples", "gateway", "http_status",
			"ios_share", "label", "latency_ms", "mode", "outcomes", "protocol", "rate", "requests", "requests_per_s", "schema",
			"started_at", "target", "unsent", "warmup_requests", "warmup_s", "workspaces"}
		if !slices.Equal(keys, want) {
			t.Errorf("keys %v\nwant %v", keys, want)
		}
		lat := m["latency_ms"].(map[string]any)
		// Quantiles are the top of their histogram bucket: within 1% above.
		if p50 := lat["p50"].(float64); p50 < 50 || p50 > 50.5 || lat["max"].(float64) != 100 || m["requests_per_s"].(float64) != 500 {
			t.Errorf("latency %v, rate %v", lat, m["requests_per_s"])
		}
		gw := m["gateway"].(map[string]any)
		if gw["cpu_s_per_1000"].(float64) != 1.5 || gw["peak_rss_mib"].(float64) != 64 {
			t.Errorf("gateway %v", gw)
		}
	})
}
