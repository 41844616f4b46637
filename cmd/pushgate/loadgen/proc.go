package loadgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// ProcessUsage is what a process used over the measured window.
type ProcessUsage struct {
	PID int
	// CPU is user plus system time spent in the window.
	CPU time.Duration
	// PeakRSS is the largest VmRSS sampled in the window, in bytes.
	PeakRSS int64
	// HWM is the process's VmHWM at the end: its peak RSS since it started, in bytes.
	HWM int64
	// Samples is how many RSS samples were taken.
	Samples int
	// Timeline is VmRSS at the first reading, about every 30 s after it, and at the last reading.
	Timeline []RSSSample
}

// RSSSample is one VmRSS reading, At after the first.
type RSSSample struct {
	At  time.Duration
	RSS int64 // bytes
}

// timelineEvery is the spacing of a timeline's samples.
const timelineEvery = 30 * time.Second

// rssTimeline keeps the first sample, the first at or after each multiple of
// every, and the last, so that a long run's growth shows without keeping
// every sample.
type rssTimeline struct {
	every   time.Duration
	next    time.Duration // the next multiple of every to keep a sample at
	samples []RSSSample
}

func (tl *rssTimeline) observe(at time.Duration, rss int64) {
	if len(tl.samples) > 0 && at < tl.next {
		return
	}
	tl.samples = append(tl.samples, RSSSample{At: at, RSS: rss})
	// A stalled sampler skips the marks it missed rather than filling them late.
	tl.next = (at/tl.every + 1) * tl.every
}

// last adds the last reading; it replaces a kept sample less than a second
// before it (the mark at the end of the window), but never the first.
func (tl *rssTimeline) last(at time.Duration, rss int64) {
	if n := len(tl.samples); n > 1 && at-tl.samples[n-1].At < time.Second {
		tl.samples = tl.samples[:n-1]
	}
	tl.samples = append(tl.samples, RSSSample{At: at, RSS: rss})
}

// ProcStat is the part of /proc/PID/stat and /proc/PID/status a benchmark reads.
type ProcStat struct {
	CPU time.Duration // utime + stime
	RSS int64         // VmRSS in bytes
	HWM int64         // VmHWM in bytes
}

// ReadProc reads a process's CPU time and memory from /proc.
func ReadProc(pid int) (ProcStat, error) {
	var st ProcStat
	dir := "/proc/" + strconv.Itoa(pid)
	raw, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return st, err
	}
	if st.CPU, err = parseStatCPU(raw, clockTicks()); err != nil {
		return st, fmt.Errorf("%s/stat: %w", dir, err)
	}
	raw, err = os.ReadFile(dir + "/status")
	if err != nil {
		return st, err
	}
	if st.RSS, st.HWM, err = parseStatusMemory(raw); err != nil {
		return st, fmt.Errorf("%s/status: %w", dir, err)
	}
	return st, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15) of /proc/PID/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(raw []byte, hz int64) (time.Duration, error) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := bytes.Fields(raw[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	ticks := utime + stime
	return time.Duration(ticks) * time.Second / time.Duration(hz), nil
}

// parseStatusMemory returns VmRSS and VmHWM of /proc/PID/status in bytes.
func parseStatusMemory(raw []byte) (rss, hwm int64, err error) {
	found := 0
	for line := range bytes.Lines(raw) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &hwm
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) < 2 {
			return 0, 0, fmt.Errorf("bad line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("bad line %q: %w", bytes.TrimSpace(line), err)
		}
		*dst = kb * 1024
		found++
	}
	if found < 2 {
		return 0, 0, errors.New("no VmRSS or VmHWM (a kernel thread or a zombie?)")
	}
	return rss, hwm, nil
}

// clockTicks is the kernel's USER_HZ, from the auxiliary vector's AT_CLKTCK
// (what sysconf(_SC_CLK_TCK) reads); 100 when it cannot be read.
var clockTicks = sync.OnceValue(func() int64 {
	const atClkTck = 17
	raw, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for len(raw) >= 16 {
		key, val := binary.NativeEndian.Uint64(raw), binary.NativeEndian.Uint64(raw[8:])
		if key == atClkTck && val > 0 {
			return int64(val)
		}
		if key == 0 {
			break
		}
		raw = raw[16:]
	}
	return 100
})

// ProcessWatch samples a process's RSS until stopped.
type ProcessWatch struct {
	pid     int
	start   ProcStat
	started time.Time
	stop    chan struct{}
	done    chan struct{}

	peak     int64 // written by the sampler only until done is closed
	samples  int
	timeline rssTimeline
	err      error
}

// WatchProcess reads pid's CPU time now and samples its RSS every interval.
func WatchProcess(pid int, every time.Duration) (*ProcessWatch, error) {
	st, err := ReadProc(pid)
	if err != nil {
		return nil, err
	}
	w := &ProcessWatch{pid: pid, start: st, started: time.Now(), stop: make(chan struct{}), done: make(chan struct{}),
		peak: st.RSS, samples: 1, timeline: rssTimeline{every: timelineEvery, samples: make([]RSSSample, 0, 16)}}
	w.timeline.observe(0, st.RSS)
	go w.sample(every)
	return w, nil
}

func (w *ProcessWatch) sample(every time.Duration) {
	defer close(w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			st, err := ReadProc(w.pid)
			if err != nil {
				w.err = err
				return
			}
			w.peak = max(w.peak, st.RSS)
			w.samples++
			w.timeline.observe(time.Since(w.started), st.RSS)
		}
	}
}

// Stop takes a last reading and returns the usage since WatchProcess.
func (w *ProcessWatch) Stop() (ProcessUsage, error) {
	close(w.stop)
	<-w.done
	if w.err != nil {
		return ProcessUsage{PID: w.pid}, w.err
	}
	st, err := ReadProc(w.pid)
	if err != nil {
		return ProcessUsage{PID: w.pid}, err
	}
	w.timeline.last(time.Since(w.started), st.RSS)
	return ProcessUsage{
		PID:      w.pid,
		CPU:      st.CPU - w.start.CPU,
		PeakRSS:  max(w.peak, st.RSS),
		HWM:      st.HWM,
		Samples:  w.samples + 1,
		Timeline: w.timeline.samples,
	}, nil
}

// MachineUsage is the whole machine's CPU time over the measured window.
type MachineUsage struct {
	// Busy is CPU time spent on anything but idle and I/O wait, summed over all CPUs.
	Busy time.Duration
	// Wall is the time between the two readings.
	Wall time.Duration
	CPUs int
}

// machineReading is one reading of /proc/stat.
type machineReading struct {
	idle time.Duration
	at   time.Time
	cpus int
}

// readMachine reads the idle time of all CPUs from /proc/stat.
func readMachine() (machineReading, error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineReading{}, err
	}
	idle, cpus, err := parseProcStat(raw, clockTicks())
	return machineReading{idle: idle, at: time.Now(), cpus: cpus}, err
}

// parseProcStat returns the idle plus I/O wait time of the "cpu" line of
// /proc/stat and the number of cpuN lines. Busy time is taken as the rest of
// the wall time: the kernel measures idle time exactly, while the busy fields
// are sampled at each tick and undercount work that sleeps and wakes often,
// as a server on loopback does.
func parseProcStat(raw []byte, hz int64) (time.Duration, int, error) {
	var idle int64
	cpus, found := 0, false
	for line := range bytes.Lines(raw) {
		f := bytes.Fields(line)
		switch {
		case len(f) == 0 || !bytes.HasPrefix(f[0], []byte("cpu")):
			continue
		case len(f[0]) > 3:
			cpus++
			continue
		case len(f) < 6:
			return 0, 0, errors.New("/proc/stat: short cpu line")
		}
		found = true
		for _, i := range []int{4, 5} { // idle, iowait
			n, err := strconv.ParseInt(string(f[i]), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat: %w", err)
			}
			idle += n
		}
	}
	if !found || cpus == 0 {
		return 0, 0, errors.New("/proc/stat: no cpu lines")
	}
	return time.Duration(idle) * time.Second / time.Duration(hz), cpus, nil
}

// since returns the usage from r to now.
func (r machineReading) since() (MachineUsage, error) {
	now, err := readMachine()
	if err != nil {
		return MachineUsage{}, err
	}
	wall := now.at.Sub(r.at)
	busy := max(time.Duration(now.cpus)*wall-(now.idle-r.idle), 0)
	return MachineUsage{Busy: busy, Wall: wall, CPUs: now.cpus}, nil
}
