package loadgen

import (
	"os"
	"slices"
	"testing"
	"time"
)

func TestProc(t *testing.T) {
	t.Run("stat fields are counted from the last parenthesis", func(t *testing.T) {
		// A command name with spaces and parentheses, as a process may choose.
		line := []byte("4242 (pushgate (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 125 0 0 20 0 9 0 100 1000000 500 18446744073709551615\n")
		got, err := parseStatCPU(line, 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := 3750 * time.Millisecond; got != want {
			t.Errorf("cpu = %v, want %v (375 ticks at 100 Hz)", got, want)
		}
		if _, err := parseStatCPU([]byte("4242 (x) S 1 2"), 100); err == nil {
			t.Error("a truncated stat line must be an error")
		}
	})

	t.Run("status gives VmRSS and VmHWM in bytes", func(t *testing.T) {
		status := []byte("Name:\tpushgate\nVmPeak:\t 900000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n")
		rss, hwm, err := parseStatusMemory(status)
		if err != nil {
			t.Fatal(err)
		}
		if rss != 40<<20 || hwm != 80<<20 {
			t.Errorf("rss %d hwm %d, want 40 MiB and 80 MiB", rss, hwm)
		}
		if _, _, err := parseStatusMemory([]byte("Name:\tkthreadd\n")); err == nil {
			t.Error("a process without memory figures must be an error")
		}
	})

	t.Run("the test's own process has CPU time and memory", func(t *testing.T) {
		if _, err := os.Stat("/proc/self/stat"); err != nil {
			t.Skip("no /proc")
		}
		if hz := clockTicks(); hz <= 0 {
			t.Fatalf("clock ticks = %d", hz)
		}
		w, err := WatchProcess(os.Getpid(), 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		burn := make([]byte, 32<<20) // touched, so it is resident
		for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
			for i := 0; i < len(burn); i += 4096 {
				burn[i]++
			}
		}
		u, err := w.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if u.CPU < 100*time.Millisecond || u.CPU > 5*time.Second {
			t.Errorf("cpu = %v over 300ms of busy work", u.CPU)
		}
		if u.PeakRSS < 32<<20 || u.HWM < u.PeakRSS || u.Samples < 5 {
			t.Errorf("peak rss %d, hwm %d, %d samples; want ≥ 32 MiB, hwm ≥ peak, several samples", u.PeakRSS, u.HWM, u.Samples)
		}
		if n := len(u.Timeline); n != 2 || u.Timeline[0].At != 0 || u.Timeline[1].At < 300*time.Millisecond || u.Timeline[1].RSS < 32<<20 {
			t.Errorf("timeline %v; want the first reading at 0 and the last, ≥ 32 MiB, after 300ms", u.Timeline)
		}
		if burn[0] == 0 {
			t.Log("unreachable; keeps burn alive")
		}
	})

	t.Run("the timeline keeps the first sample, one per interval and the last", func(t *testing.T) {
		tl := rssTimeline{every: 30 * time.Second}
		for at := time.Duration(0); at < 95*time.Second; at += 100 * time.Millisecond {
			tl.observe(at+3*time.Millisecond, int64(at/time.Second))
		}
		tl.last(95050*time.Millisecond, 95)
		want := []RSSSample{{3 * time.Millisecond, 0}, {30003 * time.Millisecond, 30}, {60003 * time.Millisecond, 60},
			{90003 * time.Millisecond, 90}, {95050 * time.Millisecond, 95}}
		if !slices.Equal(tl.samples, want) {
			t.Errorf("samples %v\nwant %v", tl.samples, want)
		}
	})

	t.Run("a stalled sampler skips the marks it missed", func(t *testing.T) {
		tl := rssTimeline{every: 30 * time.Second}
		for _, s := range []int{0, 10, 75, 89, 90} {
			tl.observe(time.Duration(s)*time.Second, int64(s))
		}
		want := []RSSSample{{0, 0}, {75 * time.Second, 75}, {90 * time.Second, 90}}
		if !slices.Equal(tl.samples, want) {
			t.Errorf("samples %v\nwant %v", tl.samples, want)
		}
	})

	t.Run("the last reading replaces a mark just before it, never the first", func(t *testing.T) {
		tl := rssTimeline{every: 30 * time.Second}
		tl.observe(0, 1)
		tl.observe(30*time.Second, 2)
		tl.last(30500*time.Millisecond, 3)
		if want := []RSSSample{{0, 1}, {30500 * time.Millisecond, 3}}; !slices.Equal(tl.samples, want) {
			t.Errorf("samples %v\nwant %v", tl.samples, want)
		}
		short := rssTimeline{every: 30 * time.Second}
		short.observe(0, 1)
		short.last(200*time.Millisecond, 2)
		if want := []RSSSample{{0, 1}, {200 * time.Millisecond, 2}}; !slices.Equal(short.samples, want) {
			t.Errorf("samples %v\nwant %v", short.samples, want)
		}
	})

	t.Run("the machine's idle time is idle plus I/O wait", func(t *testing.T) {
		stat := []byte("cpu  100 5 50 1000 40 3 2 1 7 0\ncpu0 50 2 25 500 20 1 1 0 3 0\ncpu1 50 3 25 500 20 2 1 1 4 0\nintr 12345\nctxt 999\n")
		idle, cpus, err := parseProcStat(stat, 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := 10400 * time.Millisecond; idle != want || cpus != 2 {
			t.Errorf("idle %v over %d cpus, want %v over 2", idle, cpus, want)
		}
		if _, _, err := parseProcStat([]byte("intr 1\n"), 100); err == nil {
			t.Error("a stat without cpu lines must be an error")
		}
	})

	t.Run("a process that does not exist is an error", func(t *testing.T) {
		if _, err := ReadProc(1 << 30); err == nil {
			t.Error("want an error")
		}
	})
}
