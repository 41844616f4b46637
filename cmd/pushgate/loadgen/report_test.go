package loadgen

import (
	"encoding/json"
	"maps"
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

	t.Run("a short run's table has no RSS timeline", func(t *testing.T) {
		var b strings.Builder
		if err := WriteTable(&b, rep); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "rss over the run") {
			t.Errorf("a 2s run shows a timeline:\n%s", b.String())
		}
	})

	t.Run("a long run's table reads the gateway's RSS timeline in one line", func(t *testing.T) {
		long := *rep
		long.Gateway = UsageOf(ProcessUsage{PID: 7, Timeline: []RSSSample{
			{0, miB(60.8)}, {30020 * time.Millisecond, miB(61.2)}, {60010 * time.Millisecond, miB(62.0)},
			{90020 * time.Millisecond, miB(61.5)}, {120030 * time.Millisecond, miB(61.9)}, {150500 * time.Millisecond, miB(62.3)},
		}}, res.Requests)
		var b strings.Builder
		if err := WriteTable(&b, &long); err != nil {
			t.Fatal(err)
		}
		want := "\n  rss over the run: 0:00 60.8 MiB, 0:30 61.2, 1:00 62.0, 1:30 61.5, 2:00 61.9, 2:31 62.3 MiB (last minute vs first minute: +0.6 MiB)\n"
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
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
		if _, ok := gw["rss_timeline"]; ok {
			t.Errorf("a usage without samples has a timeline: %v", gw)
		}
	})

	t.Run("the RSS timeline is a list of seconds into the window and MiB", func(t *testing.T) {
		withTimeline := *rep
		withTimeline.Gateway = UsageOf(ProcessUsage{PID: 7, Timeline: []RSSSample{{0, 60 << 20}, {30020400 * time.Microsecond, 61 << 20}}}, 1)
		path := filepath.Join(t.TempDir(), "r.json")
		if err := withTimeline.WriteJSON(path); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Gateway struct {
				Timeline []map[string]float64 `json:"rss_timeline"`
			} `json:"gateway"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		want := []map[string]float64{{"t_s": 0, "rss_mib": 60}, {"t_s": 30.02, "rss_mib": 61}}
		if !slices.EqualFunc(m.Gateway.Timeline, want, maps.Equal) {
			t.Errorf("rss_timeline %v, want %v", m.Gateway.Timeline, want)
		}
	})
}

func TestRSSTimelineText(t *testing.T) {
	points := func(mibs ...float64) []RSSPoint {
		pts := make([]RSSPoint, len(mibs))
		for i, v := range mibs {
			pts[i] = RSSPoint{TS: float64(i)*30 + 0.02, RSSMiB: v}
		}
		pts[0].TS = 0
		return pts
	}
	for _, tc := range []struct {
		name string
		pts  []RSSPoint
		want string
	}{
		{"a run shorter than two minutes prints nothing", points(60, 61, 62, 63), ""},
		{"no samples print nothing", nil, ""},
		{"the change is the last minute's mean minus the first's", points(60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70),
			"rss over the run: 0:00 60.0 MiB, 0:30 61.0, 1:00 62.0, 1:30 63.0, 2:00 64.0, 2:30 65.0, 3:00 66.0, 3:30 67.0, 4:00 68.0, 4:30 69.0, 5:00 70.0 MiB (last minute vs first minute: +8.0 MiB)"},
		{"a shrinking process shows a fall", points(80, 70, 60, 61, 60),
			"rss over the run: 0:00 80.0 MiB, 0:30 70.0, 1:00 60.0, 1:30 61.0, 2:00 60.0 MiB (last minute vs first minute: -9.7 MiB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rssTimelineText(tc.pts); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func miB(v float64) int64 { return int64(v * (1 << 20)) }
