package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/pushgate/pushgate/cmd/pushgate/loadgen"
	"github.com/pushgate/pushgate/gateway"
)

// cmdBench is the load generator of the benchmark: pushes through a running
// gateway (or, with --direct, straight to the sandbox providers through the
// gateway's own provider clients), a table of the results, and JSON with -json.
func cmdBench(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	url := fs.String("url", "http://127.0.0.1:8086", "the gateway's base URL")
	concurrency := fs.Int("c", 64, "concurrency: workers, each with one HTTP/1.1 keep-alive connection; with -rate, the most requests in flight")
	rate := fs.Float64("rate", 0, "requests per second on a fixed schedule (open loop: latency counts from each request's scheduled time); 0 sends as fast as -c allows")
	duration := fs.Duration("duration", 20*time.Second, "the measured window")
	count := fs.Int64("n", 0, "measure this many requests instead of a duration")
	warmup := fs.Duration("warmup", 3*time.Second, "warm-up before the measured window (sent, not measured)")
	workspaces := fs.Int("workspaces", 50, "workspaces to spread the pushes over, registered through the gateway's API unless -tokens is given")
	tokensFile := fs.String("tokens", "", "file of workspace tokens, one a line, instead of registering workspaces")
	saveTokens := fs.String("save-tokens", "", "write the tokens of the workspaces registered by this run to this file (for -tokens)")
	protocol := fs.String("protocol", loadgen.ProtocolMattermost, "mattermost or rocketchat")
	iosShare := fs.Float64("ios-share", 0.5, "share of pushes for iOS (APNs); the rest go to Android (FCM)")
	deadShare := fs.Float64("dead-share", 0, "share of pushes to device tokens the sandbox reports dead (prefix \"unregistered\")")
	pid := fs.Int("pid", 0, "the gateway's pid: its CPU time and peak RSS over the measured window are read from /proc")
	watch := fs.String("watch", "", "other processes to read the same way, as NAME=PID,… (the sandbox, redis-server): where the rest of the CPU went")
	jsonFile := fs.String("json", "", "also write the results as JSON to this file")
	label := fs.String("label", "", "the run's name in the table (default: the mode)")
	direct := fs.Bool("direct", false, "send straight to the sandbox providers with the gateway's provider clients (needs -apps-file): the limit for a gateway in between")
	appsFile := fs.String("apps-file", "", "direct mode: the push apps file (YAML), pointed at the sandbox")
	iosPlatform := fs.String("ios-platform", loadgen.DefaultIOSPlatform, "Mattermost platform of iOS pushes")
	androidPlatform := fs.String("android-platform", loadgen.DefaultAndroidPlatform, "Mattermost platform of Android pushes")
	topic := fs.String("topic", loadgen.DefaultTopic, "Rocket.Chat APNs topic (the iOS app's bundle id)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on one request")
	initApps := fs.String("init-sandbox-apps", "", "write throwaway credentials and DIR/apps.yaml for the sandbox at -sandbox-url, print the file's path and exit")
	sandboxURL := fs.String("sandbox-url", "https://127.0.0.1:8443", "with -init-sandbox-apps: the sandbox's URL")
	cpuProfile := fs.String("cpuprofile", "", "write the bench process's own CPU profile over the run to this file")
	summary := fs.Bool("summary", false, "print one table of the runs in the JSON files named after the flags, with gateway/direct ratios, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if *summary {
		return benchSummary(stdout, fs.Args())
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q (JSON files are for -summary)", fs.Arg(0))}
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	if *initApps != "" {
		path, err := loadgen.WriteSandboxApps(*initApps, *sandboxURL)
		if err != nil {
			return fmt.Errorf("bench: sandbox apps: %w", err)
		}
		fmt.Fprintln(stdout, path)
		return nil
	}

	switch {
	case *concurrency < 1:
		return usageError{"-c must be at least 1"}
	case *rate < 0:
		return usageError{"-rate must not be negative"}
	case *count < 0 || (*count == 0 && *duration <= 0):
		return usageError{"set a positive -duration or -n"}
	case *warmup < 0:
		return usageError{"-warmup must not be negative"}
	case *iosShare < 0 || *iosShare > 1 || *deadShare < 0 || *deadShare > 1:
		return usageError{"-ios-share and -dead-share are shares between 0 and 1"}
	case *workspaces < 1:
		return usageError{"-workspaces must be at least 1"}
	case *protocol != loadgen.ProtocolMattermost && *protocol != loadgen.ProtocolRocketChat:
		return usageError{fmt.Sprintf("-protocol %q: use mattermost or rocketchat", *protocol)}
	case *direct && *appsFile == "":
		return usageError{"--direct needs -apps-file (write one with -init-sandbox-apps DIR)"}
	case !*direct && *appsFile != "":
		return usageError{"-apps-file is for --direct; the gateway has its own"}
	}
	if *pid != 0 {
		if _, err := loadgen.ReadProc(*pid); err != nil {
			return fmt.Errorf("bench: -pid %d: %w", *pid, err)
		}
	}
	others, err := parseWatch(*watch)
	if err != nil {
		return err
	}

	mix := loadgen.Mix{Workspaces: *workspaces, IOSShare: *iosShare, DeadShare: *deadShare, Seed: uint64(time.Now().UnixNano())}
	rep := &loadgen.Report{
		Label: *label, Mode: "gateway", Protocol: *protocol, Target: *url, StartedAt: time.Now().UTC(),
		Concurrency: *concurrency, Rate: *rate, WarmupS: warmup.Seconds(), IOSShare: *iosShare, DeadShare: *deadShare,
	}
	var newSender func(int) loadgen.Sender
	if *direct {
		rep.Mode, rep.Target = "direct", *appsFile
		apps, err := gateway.LoadAppsFile(*appsFile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		reg, err := gateway.NewRegistry(ctx, apps, gateway.Options{}, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer reg.Close()
		d, err := loadgen.NewDirect(loadgen.DirectConfig{Registry: reg, Protocol: *protocol, Mix: mix,
			IOSPlatform: *iosPlatform, AndroidPlatform: *androidPlatform, Topic: *topic})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		newSender = d.NewSender
		rep.Workspaces = *workspaces
	} else {
		tokens, err := benchTokens(ctx, *url, *tokensFile, *saveTokens, *workspaces, explicit["workspaces"], stderr)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		g, err := loadgen.NewGateway(loadgen.GatewayConfig{URL: *url, Protocol: *protocol, Tokens: tokens, Mix: mix,
			IOSPlatform: *iosPlatform, AndroidPlatform: *androidPlatform, Topic: *topic, Timeout: *timeout})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer g.Close()
		newSender = g.NewSender
		rep.Workspaces = len(tokens)
	}
	if rep.Label == "" {
		rep.Label = rep.Mode
	}

	cfg := loadgen.Config{Concurrency: *concurrency, Rate: *rate, Duration: *duration, Count: *count, Warmup: *warmup,
		NewSender: newSender, Watch: []int{os.Getpid()}}
	if *pid != 0 {
		cfg.Watch = append(cfg.Watch, *pid)
	}
	for _, o := range others {
		cfg.Watch = append(cfg.Watch, o.pid)
	}
	window := duration.String()
	if *count > 0 {
		window = fmt.Sprintf("%d requests", *count)
	}
	fmt.Fprintf(stderr, "bench %s: %s to %s, c=%d, rate %s, %s warm-up then %s\n",
		rep.Label, *protocol, rep.Target, *concurrency, rateText(*rate), *warmup, window)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	res, runErr := loadgen.Run(ctx, cfg)
	pprof.StopCPUProfile()
	if res == nil {
		return fmt.Errorf("bench: %w", runErr)
	}
	rep.Fill(res)
	for _, u := range res.Processes {
		switch u.PID {
		case os.Getpid():
			rep.Bench = loadgen.UsageOf(u, res.Requests)
		case *pid:
			rep.Gateway = loadgen.UsageOf(u, res.Requests)
		}
		for _, o := range others {
			if o.pid == u.PID {
				if rep.Others == nil {
					rep.Others = map[string]*loadgen.Usage{}
				}
				rep.Others[o.name] = loadgen.UsageOf(u, res.Requests)
			}
		}
	}
	if err := loadgen.WriteTable(stdout, rep); err != nil {
		return err
	}
	if *jsonFile != "" {
		if err := rep.WriteJSON(*jsonFile); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	switch {
	case runErr != nil:
		return fmt.Errorf("bench: %w", runErr)
	case rep.Outcomes.OK+rep.Outcomes.Remove == 0 && !rep.Interrupted:
		return errors.New("bench: no push was answered OK or REMOVE; see the table")
	}
	return nil
}

// watched is a process named with -watch.
type watched struct {
	name string
	pid  int
}

// parseWatch reads -watch NAME=PID,… and checks that each process can be read.
func parseWatch(v string) ([]watched, error) {
	var out []watched
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, num, ok := strings.Cut(item, "=")
		pid, err := strconv.Atoi(num)
		if !ok || name == "" || err != nil || pid <= 0 {
			return nil, usageError{fmt.Sprintf("-watch %q: use NAME=PID,…", item)}
		}
		if _, err := loadgen.ReadProc(pid); err != nil {
			return nil, fmt.Errorf("bench: -watch %s: %w", item, err)
		}
		out = append(out, watched{name, pid})
	}
	return out, nil
}

// benchSummary prints the summary of the runs in files (written with -json).
func benchSummary(stdout io.Writer, files []string) error {
	if len(files) == 0 {
		return usageError{"-summary needs the JSON files of the runs, such as bench-results/*.json"}
	}
	reports := make([]*loadgen.Report, 0, len(files))
	for _, f := range files {
		r, err := loadgen.ReadReport(f)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		reports = append(reports, r)
	}
	return loadgen.WriteSummary(stdout, reports)
}

// benchTokens reads the workspace tokens from file, or registers n workspaces through the API.
func benchTokens(ctx context.Context, url, file, save string, n int, nExplicit bool, stderr io.Writer) ([]string, error) {
	if file != "" {
		tokens, err := loadgen.ReadTokens(file)
		if err != nil {
			return nil, err
		}
		if nExplicit {
			if len(tokens) < n {
				return nil, fmt.Errorf("-workspaces %d, but %s holds only %d tokens", n, file, len(tokens))
			}
			tokens = tokens[:n]
		}
		return tokens, nil
	}
	fmt.Fprintf(stderr, "registering %d workspaces at %s\n", n, url)
	wss, err := loadgen.Register(ctx, url, n, "bench "+time.Now().UTC().Format("0102-150405"))
	if err != nil {
		return nil, err
	}
	tokens := make([]string, len(wss))
	for i, ws := range wss {
		tokens[i] = ws.Token
	}
	if save != "" {
		if err := loadgen.WriteTokens(save, tokens); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

func rateText(rate float64) string {
	if rate <= 0 {
		return "unbounded (closed loop)"
	}
	return fmt.Sprintf("%g/s (open loop)", rate)
}
