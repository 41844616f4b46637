package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ReportSchema is the version of the JSON report; it changes only when a field changes meaning or goes away.
const ReportSchema = 1

// Report is one run as printed and as written with -json. Field names are stable.
type Report struct {
	Schema    int       `json:"schema"`
	Label     string    `json:"label"`
	Mode      string    `json:"mode"` // "gateway" or "direct"
	Protocol  string    `json:"protocol"`
	Target    string    `json:"target"` // the gateway URL, or the apps file in direct mode
	StartedAt time.Time `json:"started_at"`

	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate"`       // scheduled requests/s; 0 is closed loop
	DurationS   float64 `json:"duration_s"` // the measured window, from its start to the last answer
	WarmupS     float64 `json:"warmup_s"`
	Workspaces  int     `json:"workspaces"`
	IOSShare    float64 `json:"ios_share"`
	DeadShare   float64 `json:"dead_share"`

	Requests       int64 `json:"requests"` // measured requests, answered or not
	WarmupRequests int64 `json:"warmup_requests"`
	// Unsent are requests an open-loop run scheduled in the window but could not send: the target fell behind -rate.
	Unsent       int64   `json:"unsent"`
	RequestsPerS float64 `json:"requests_per_s"`
	// HTTPStatus counts answers by HTTP status code (as a string key); empty in direct mode.
	HTTPStatus map[string]int64 `json:"http_status"`
	Outcomes   Outcomes         `json:"outcomes"`
	// Errors are requests that got no answer (transport errors, timeouts).
	Errors       int64            `json:"errors"`
	ErrorSamples map[string]int64 `json:"error_samples,omitempty"`
	// FailSamples counts the reasons given for FAIL and unrecognised answers.
	FailSamples map[string]int64 `json:"fail_samples,omitempty"`
	LatencyMS   Latency          `json:"latency_ms"`

	// Gateway is the process given with -pid over the measured window; null without one.
	Gateway *Usage `json:"gateway"`
	// Bench is the bench process itself over the same window.
	Bench *Usage `json:"bench"`
	// Machine is every CPU of the machine over the same window; absent when /proc/stat cannot be read.
	Machine *Machine `json:"machine,omitempty"`
	// Others are the processes given with -watch, by name.
	Others      map[string]*Usage `json:"others,omitempty"`
	Interrupted bool              `json:"interrupted,omitempty"`
}

// Outcomes counts answers by protocol status: the Mattermost body status, or
// for Rocket.Chat 200 ok, 406 remove, any other status fail.
type Outcomes struct {
	OK     int64 `json:"ok"`
	Remove int64 `json:"remove"`
	Fail   int64 `json:"fail"`
	Other  int64 `json:"other"` // an answer without a recognisable status
}

// Latency is in milliseconds, from each request's scheduled (open loop) or actual (closed loop) start.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Usage is a process's CPU and memory over the measured window.
type Usage struct {
	PID         int     `json:"pid"`
	CPUS        float64 `json:"cpu_s"`
	CPUSPer1000 float64 `json:"cpu_s_per_1000"` // CPU seconds per 1000 measured requests
	PeakRSSMiB  float64 `json:"peak_rss_mib"`   // the largest VmRSS sampled every 100 ms
	HWMMiB      float64 `json:"hwm_rss_mib"`    // VmHWM: the peak RSS since the process started
	// RSSTimeline is VmRSS at the start of the window, about every 30 s of it, and at its end.
	RSSTimeline []RSSPoint `json:"rss_timeline,omitempty"`
}

// RSSPoint is a process's VmRSS TS seconds into the measured window.
type RSSPoint struct {
	TS     float64 `json:"t_s"`
	RSSMiB float64 `json:"rss_mib"`
}

// Machine is the whole machine's CPU over the measured window.
type Machine struct {
	CPUs      int     `json:"cpus"`
	CPUS      float64 `json:"cpu_s"`      // busy CPU time, all CPUs together
	BusyCores float64 `json:"busy_cores"` // cpu_s over the window's wall time
}

// Fill copies a run's measurements into the report.
func (r *Report) Fill(res *Result) {
	r.Schema = ReportSchema
	r.Requests = res.Requests
	r.WarmupRequests = res.Warmup
	r.Unsent = res.Unsent
	r.DurationS = res.Elapsed.Seconds()
	r.RequestsPerS = res.Throughput()
	r.HTTPStatus = map[string]int64{}
	for code, n := range res.HTTPStatus {
		r.HTTPStatus[strconv.Itoa(code)] = n
	}
	r.Outcomes = Outcomes{OK: res.Statuses[StatusOK], Remove: res.Statuses[StatusRemove],
		Fail: res.Statuses[StatusFail], Other: res.Statuses[StatusOther]}
	r.Errors = res.Errors
	r.ErrorSamples, r.FailSamples = nonEmpty(res.ErrorSamples), nonEmpty(res.FailSamples)
	h := res.Latency
	r.LatencyMS = Latency{Min: ms(h.Min()), Mean: ms(h.Mean()), P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)),
		P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(h.Max())}
	r.Interrupted = res.Interrupted
	if m := res.Machine; m != nil && m.Wall > 0 {
		r.Machine = &Machine{CPUs: m.CPUs, CPUS: m.Busy.Seconds(), BusyCores: m.Busy.Seconds() / m.Wall.Seconds()}
	}
}

// UsageOf turns a process's usage into the report's units.
func UsageOf(u ProcessUsage, requests int64) *Usage {
	out := &Usage{PID: u.PID, CPUS: u.CPU.Seconds(), PeakRSSMiB: mib(u.PeakRSS), HWMMiB: mib(u.HWM)}
	if len(u.Timeline) > 0 {
		out.RSSTimeline = make([]RSSPoint, len(u.Timeline))
		for i, s := range u.Timeline {
			out.RSSTimeline[i] = RSSPoint{TS: s.At.Round(time.Millisecond).Seconds(), RSSMiB: mib(s.RSS)}
		}
	}
	if requests > 0 {
		out.CPUSPer1000 = out.CPUS * 1000 / float64(requests)
	}
	return out
}

// longRun is how long a timeline must span to be printed: shorter runs show too few points to tell growth from noise.
const longRun = 2 * time.Minute

// rssTimelineText reads a timeline as one line, with how much the mean of its
// samples in the last minute exceeds that in the first; empty for a short run.
func rssTimelineText(pts []RSSPoint) string {
	if len(pts) < 2 || pts[len(pts)-1].TS < longRun.Seconds() {
		return ""
	}
	end := pts[len(pts)-1].TS
	var first, last, nFirst, nLast float64
	var b strings.Builder
	b.WriteString("rss over the run:")
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(',')
		}
		s := int64(math.Round(p.TS))
		fmt.Fprintf(&b, " %d:%02d %.1f", s/60, s%60, p.RSSMiB)
		if i == 0 || i == len(pts)-1 {
			b.WriteString(" MiB")
		}
		// A second's slack, since a mark's sample comes a little after the mark.
		if p.TS <= 61 {
			first, nFirst = first+p.RSSMiB, nFirst+1
		}
		if p.TS >= end-61 {
			last, nLast = last+p.RSSMiB, nLast+1
		}
	}
	fmt.Fprintf(&b, " (last minute vs first minute: %+.1f MiB)", last/nLast-first/nFirst)
	return b.String()
}

func nonEmpty(m map[string]int64) map[string]int64 {
	if len(m) == 0 {
		return nil
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// WriteJSON writes the report to path, indented.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints reports as one row each, then each one's details.
func WriteTable(w io.Writer, reports ...*Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "label\tmode\treq/s\trequests\tOK\tREMOVE\tFAIL\tother\terrors\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\tcpu s\tcpu s/1k\tpeak rss MiB\t")
	for _, r := range reports {
		mode := r.Mode
		if r.Rate > 0 {
			mode += fmt.Sprintf(" @%g/s", r.Rate)
		}
		cpu, per1k, rss := "-", "-", "-"
		if g := r.Gateway; g != nil {
			cpu, per1k, rss = fmt.Sprintf("%.2f", g.CPUS), fmt.Sprintf("%.3f", g.CPUSPer1000), fmt.Sprintf("%.1f", g.PeakRSSMiB)
		}
		l := r.LatencyMS
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t\n",
			r.Label, mode, r.RequestsPerS, r.Requests, r.Outcomes.OK, r.Outcomes.Remove, r.Outcomes.Fail, r.Outcomes.Other,
			r.Errors, l.P50, l.P90, l.P99, l.P999, l.Max, cpu, per1k, rss)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	for _, r := range reports {
		fmt.Fprintf(&b, "%s: %s %s, c=%d, %d workspaces, iOS %.0f%%, dead %.0f%%, %.2fs measured after %.0fs warm-up (%d requests)",
			r.Label, r.Mode, r.Protocol, r.Concurrency, r.Workspaces, r.IOSShare*100, r.DeadShare*100, r.DurationS, r.WarmupS, r.WarmupRequests)
		if r.Interrupted {
			b.WriteString(", INTERRUPTED")
		}
		b.WriteString("\n")
		if r.Unsent > 0 {
			fmt.Fprintf(&b, "  BEHIND SCHEDULE: %d requests due in the window were never sent (the target, or -c %d, cannot keep up with %g/s); latencies understate\n",
				r.Unsent, r.Concurrency, r.Rate)
		}
		if len(r.HTTPStatus) > 0 {
			codes := make([]string, 0, len(r.HTTPStatus))
			for c := range r.HTTPStatus {
				codes = append(codes, c)
			}
			sort.Strings(codes)
			b.WriteString("  http status:")
			for _, c := range codes {
				fmt.Fprintf(&b, " %s=%d", c, r.HTTPStatus[c])
			}
			b.WriteString("\n")
		}
		if g := r.Gateway; g != nil {
			fmt.Fprintf(&b, "  pid %d: cpu %.2f s (%.3f s per 1000 requests), peak rss %.1f MiB (VmHWM %.1f MiB)\n",
				g.PID, g.CPUS, g.CPUSPer1000, g.PeakRSSMiB, g.HWMMiB)
			if line := rssTimelineText(g.RSSTimeline); line != "" {
				fmt.Fprintf(&b, "  %s\n", line)
			}
		}
		if u := r.Bench; u != nil {
			fmt.Fprintf(&b, "  bench itself: cpu %.2f s (%.3f s per 1000 requests), peak rss %.1f MiB\n", u.CPUS, u.CPUSPer1000, u.PeakRSSMiB)
		}
		if m := r.Machine; m != nil {
			fmt.Fprintf(&b, "  machine: %.2f of %d CPUs busy over the window\n", m.BusyCores, m.CPUs)
		}
		for _, name := range sortedKeys(r.Others) {
			u := r.Others[name]
			fmt.Fprintf(&b, "  %s (pid %d): cpu %.2f s (%.3f s per 1000 requests), peak rss %.1f MiB\n", name, u.PID, u.CPUS, u.CPUSPer1000, u.PeakRSSMiB)
		}
		writeSamples(&b, "errors", r.ErrorSamples)
		writeSamples(&b, "not delivered", r.FailSamples)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func writeSamples(b *strings.Builder, what string, m map[string]int64) {
	if len(m) == 0 {
		return
	}
	msgs := make([]string, 0, len(m))
	for k := range m {
		msgs = append(msgs, k)
	}
	sort.Slice(msgs, func(i, j int) bool { return m[msgs[i]] > m[msgs[j]] || m[msgs[i]] == m[msgs[j]] && msgs[i] < msgs[j] })
	fmt.Fprintf(b, "  %s:\n", what)
	for _, k := range msgs {
		fmt.Fprintf(b, "    %8d  %s\n", m[k], k)
	}
}
