package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// The targets, printed next to the figures they judge.
const (
	TargetThroughputRatio = 0.50 // gateway with Redis quotas / direct, both at saturation
	TargetAddedP50MS      = 1.0  // gateway minus direct at half of saturation
	TargetAddedP99MS      = 5.0
	TargetPeakRSSMiB      = 150.0
)

// ReadReport reads a report written with -json.
func ReadReport(path string) (*Report, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Schema != ReportSchema {
		return nil, fmt.Errorf("%s: report schema %d, this bench reads %d", path, r.Schema, ReportSchema)
	}
	if r.Label == "" {
		r.Label = r.Mode
	}
	return &r, nil
}

// WriteSummary prints several runs as one table, then how each gateway run
// compares with the direct runs: throughput at saturation against the closed-loop
// direct run, added latency against the direct run at the same fixed rate, and
// CPU per push against what the direct run's own process spent.
func WriteSummary(w io.Writer, reports []*Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tmode\treq/s\tp50 ms\tp99 ms\tp99.9 ms\tgateway cpu s/1k\tgateway peak rss MiB\tbench cpu s/1k\tnot ok\t")
	for _, r := range reports {
		gwCPU, gwRSS, benchCPU := "-", "-", "-"
		if g := r.Gateway; g != nil {
			gwCPU, gwRSS = fmt.Sprintf("%.3f", g.CPUSPer1000), fmt.Sprintf("%.1f", g.PeakRSSMiB)
		}
		if b := r.Bench; b != nil {
			benchCPU = fmt.Sprintf("%.3f", b.CPUSPer1000)
		}
		l := r.LatencyMS
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t%d\t\n",
			r.Label, modeText(r), r.RequestsPerS, l.P50, l.P99, l.P999, gwCPU, gwRSS, benchCPU, notOK(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var b strings.Builder
	b.WriteString("\nnot ok = FAIL + other answers + requests without an answer. In direct runs the bench process does the pushes\n" +
		"itself, so its cpu s/1k is what a push costs with no gateway in between.\n")
	for _, r := range reports {
		writeProblems(&b, r)
	}

	sat := findDirect(reports, func(d *Report) bool { return d.Rate == 0 })
	fmt.Fprintf(&b, "\nthroughput at saturation, gateway / direct (target with Redis quotas ≥ %.2f):\n", TargetThroughputRatio)
	found := false
	for _, r := range reports {
		if r.Mode != "gateway" || r.Rate != 0 {
			continue
		}
		found = true
		d := sat(r)
		if d == nil || d.RequestsPerS <= 0 {
			fmt.Fprintf(&b, "  %s: no closed-loop direct run of the same protocol to compare with\n", r.Label)
			continue
		}
		ratio := r.RequestsPerS / d.RequestsPerS
		fmt.Fprintf(&b, "  %-20s %8.0f / %.0f req/s = %.2f%s%s\n", r.Label, r.RequestsPerS, d.RequestsPerS, ratio,
			missNote(ratio < TargetThroughputRatio, "below %.2f", TargetThroughputRatio), noisyNote(r, d))
		if r.Concurrency != d.Concurrency {
			fmt.Fprintf(&b, "    (concurrency differs: c=%d against c=%d)\n", r.Concurrency, d.Concurrency)
		}
	}
	if !found {
		b.WriteString("  no closed-loop gateway run\n")
	}

	fmt.Fprintf(&b, "\nadded latency at a fixed rate, gateway minus direct (target p50 ≤ %g ms, p99 ≤ %g ms):\n", TargetAddedP50MS, TargetAddedP99MS)
	found = false
	for _, r := range reports {
		if r.Mode != "gateway" || r.Rate == 0 {
			continue
		}
		found = true
		d := findDirect(reports, func(d *Report) bool { return sameRate(d.Rate, r.Rate) })(r)
		if d == nil {
			fmt.Fprintf(&b, "  %s @%g/s: no direct run at the same rate to compare with\n", r.Label, r.Rate)
			continue
		}
		p50 := r.LatencyMS.P50 - d.LatencyMS.P50
		p99 := r.LatencyMS.P99 - d.LatencyMS.P99
		fmt.Fprintf(&b, "  %s - %s @%g/s: p50 %+.2f ms (%.2f - %.2f)%s, p99 %+.2f ms (%.2f - %.2f)%s%s\n",
			r.Label, d.Label, r.Rate,
			p50, r.LatencyMS.P50, d.LatencyMS.P50, missNote(p50 > TargetAddedP50MS, "over %g", TargetAddedP50MS),
			p99, r.LatencyMS.P99, d.LatencyMS.P99, missNote(p99 > TargetAddedP99MS, "over %g", TargetAddedP99MS), noisyNote(r, d))
		if behind(r) || behind(d) {
			b.WriteString("    (a run fell behind its schedule; see above)\n")
		}
	}
	if !found {
		b.WriteString("  no fixed-rate gateway run\n")
	}

	fmt.Fprintf(&b, "\nCPU per 1000 pushes, gateway process / the direct run's bench process; peak RSS (target ≤ %g MiB):\n", TargetPeakRSSMiB)
	found = false
	for _, r := range reports {
		if r.Gateway == nil {
			continue
		}
		found = true
		fmt.Fprintf(&b, "  %-20s %.3f s", r.Label, r.Gateway.CPUSPer1000)
		// Per-push cost falls with load (fuller batches, fewer wake-ups), so a fixed-rate run compares with direct at its rate.
		d := sat(r)
		if r.Rate > 0 {
			d = findDirect(reports, func(d *Report) bool { return sameRate(d.Rate, r.Rate) })(r)
		}
		if d != nil && d.Bench != nil && d.Bench.CPUSPer1000 > 0 {
			fmt.Fprintf(&b, " / %.3f s (%s) = %.1fx", d.Bench.CPUSPer1000, d.Label, r.Gateway.CPUSPer1000/d.Bench.CPUSPer1000)
		}
		fmt.Fprintf(&b, ", peak rss %.1f MiB%s\n", r.Gateway.PeakRSSMiB,
			missNote(r.Gateway.PeakRSSMiB > TargetPeakRSSMiB, "over %g", TargetPeakRSSMiB))
		if line := rssTimelineText(r.Gateway.RSSTimeline); line != "" {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	if !found {
		b.WriteString("  no run watched a gateway (-pid)\n")
	}

	b.WriteString("\nwhere the CPU went over each measured window, in cores (cpu s / window; other = the rest of the machine):\n")
	for _, r := range reports {
		if r.DurationS <= 0 {
			continue
		}
		fmt.Fprintf(&b, "  %-20s", r.Label)
		total := 0.0
		add := func(name string, u *Usage) {
			if u == nil {
				return
			}
			c := u.CPUS / r.DurationS
			total += c
			fmt.Fprintf(&b, " %s %.2f", name, c)
		}
		add("gateway", r.Gateway)
		add("bench", r.Bench)
		for _, name := range sortedKeys(r.Others) {
			add(name, r.Others[name])
		}
		if m := r.Machine; m != nil {
			fmt.Fprintf(&b, " other %.2f = %.2f of %d CPUs busy\n", othersCores(r), m.BusyCores, m.CPUs)
			continue
		}
		fmt.Fprintf(&b, " = %.2f\n", total)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// noisyShare is the share of the machine's CPUs that processes other than
// the watched ones may use before a run's figures are called into doubt.
const noisyShare = 0.1

// noisy reports whether other processes used enough of the machine to spoil a run.
func noisy(r *Report) bool {
	return r.Machine != nil && othersCores(r) > noisyShare*float64(r.Machine.CPUs)
}

// noisyNote marks a comparison that involves a noisy run.
func noisyNote(runs ...*Report) string {
	var names []string
	for _, r := range runs {
		if noisy(r) {
			names = append(names, r.Label)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "  (not comparable: " + strings.Join(names, " and ") + " NOISY)"
}

// othersCores is the machine's busy cores that the watched processes do not
// account for; 0 when the machine was not read.
func othersCores(r *Report) float64 {
	if r.Machine == nil || r.DurationS <= 0 {
		return 0
	}
	watched := 0.0
	for _, u := range append([]*Usage{r.Gateway, r.Bench}, slices.Collect(maps.Values(r.Others))...) {
		if u != nil {
			watched += u.CPUS / r.DurationS
		}
	}
	// The processes' window ends a moment after the machine's; never show a negative rest.
	return max(r.Machine.BusyCores-watched, 0)
}

// behind reports whether an open-loop run missed more of its schedule than
// the few requests due in the last moment of the window, which a worker woken
// a little late finds past the end.
func behind(r *Report) bool {
	return r.Unsent > 0 && float64(r.Unsent) > 0.001*float64(r.Requests+r.Unsent)
}

func modeText(r *Report) string {
	if r.Rate > 0 {
		return fmt.Sprintf("%s @%g/s", r.Mode, r.Rate)
	}
	return r.Mode
}

func notOK(r *Report) int64 { return r.Outcomes.Fail + r.Outcomes.Other + r.Errors }

// writeProblems names what in a run deserves a look: undelivered pushes, errors, a missed schedule.
func writeProblems(b *strings.Builder, r *Report) {
	if n := notOK(r); n > 0 {
		fmt.Fprintf(b, "%s: %d of %d requests not ok (FAIL %d, other %d, no answer %d)\n",
			r.Label, n, r.Requests, r.Outcomes.Fail, r.Outcomes.Other, r.Errors)
		writeSamples(b, "errors", r.ErrorSamples)
		writeSamples(b, "not delivered", r.FailSamples)
	}
	if behind(r) {
		fmt.Fprintf(b, "%s: BEHIND SCHEDULE, %d requests due were never sent; its latencies understate\n", r.Label, r.Unsent)
	}
	if r.Interrupted {
		fmt.Fprintf(b, "%s: INTERRUPTED\n", r.Label)
	}
	if noisy(r) {
		fmt.Fprintf(b, "%s: NOISY, other processes kept %.2f of %d CPUs busy during the run; its figures are low\n",
			r.Label, othersCores(r), r.Machine.CPUs)
	}
}

// findDirect returns a function that finds, for a gateway run, the first
// direct run of the same protocol that also satisfies ok, preferring the
// same concurrency.
func findDirect(reports []*Report, ok func(*Report) bool) func(*Report) *Report {
	return func(g *Report) *Report {
		var fallback *Report
		for _, d := range reports {
			if d.Mode != "direct" || d.Protocol != g.Protocol || !ok(d) {
				continue
			}
			if d.Concurrency == g.Concurrency {
				return d
			}
			if fallback == nil {
				fallback = d
			}
		}
		return fallback
	}
}

// sameRate reports whether two fixed rates are the same within 1%.
func sameRate(a, b float64) bool {
	return a > 0 && b > 0 && math.Abs(a-b) <= 0.01*math.Max(a, b)
}

func missNote(miss bool, format string, args ...any) string {
	if !miss {
		return ""
	}
	return "  <- " + fmt.Sprintf(format, args...)
}
