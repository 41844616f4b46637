package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/gateway/sandbox"
)

// mustSandbox starts an in-process sandbox that trusts only the apps file
// WriteSandboxApps writes in dir, and returns that file.
func mustSandbox(t *testing.T, dir string) (*sandbox.Server, string) {
	t.Helper()
	kit, err := sandbox.EnsureDevKit(dir, "", sandboxProject)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Config{
		APNsKeys:       map[string]*ecdsa.PublicKey{kit.APNsKeyID: kit.APNsKey},
		APNsTopics:     []string{DefaultTopic},
		FCMAccounts:    map[string]*rsa.PublicKey{kit.ClientEmail: kit.FCMKey},
		FCMProjects:    []string{sandboxProject},
		PayloadHistory: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sb.Shutdown(ctx)
	})
	apps, err := WriteSandboxApps(dir, sb.URL())
	if err != nil {
		t.Fatal(err)
	}
	// `pushgate sandbox --ca-dir DIR` would have written this.
	if err := os.WriteFile(filepath.Join(dir, SandboxCAFile), sb.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return sb, apps
}

func TestDirect(t *testing.T) {
	for _, protocol := range []string{ProtocolMattermost, ProtocolRocketChat} {
		t.Run(protocol+" pushes reach the sandbox exactly as counted", func(t *testing.T) {
			sb, appsFile := mustSandbox(t, t.TempDir())
			apps, err := gateway.LoadAppsFile(appsFile)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := gateway.NewRegistry(context.Background(), apps, gateway.Options{}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(reg.Close)
			d, err := NewDirect(DirectConfig{Registry: reg, Protocol: protocol, Mix: Mix{Workspaces: 5, IOSShare: 0.5, DeadShare: 0.1, Seed: 1}})
			if err != nil {
				t.Fatal(err)
			}
			res := mustRun(t, Config{Concurrency: 8, Duration: time.Second, NewSender: d.NewSender, Watch: []int{os.Getpid()}})
			st := sb.Stats()
			if res.Requests == 0 || res.Errors != 0 || res.Statuses[StatusFail] != 0 || res.Statuses[StatusOther] != 0 {
				t.Fatalf("%d requests, %d errors, statuses %v, fail reasons %v", res.Requests, res.Errors, res.Statuses, res.FailSamples)
			}
			if got := st.APNs.Received + st.FCM.Received; got != res.Requests {
				t.Errorf("sandbox received %d, bench counted %d", got, res.Requests)
			}
			if got := st.APNs.Accepted + st.FCM.Accepted; got != res.Statuses[StatusOK] {
				t.Errorf("sandbox accepted %d, bench counted %d OK", got, res.Statuses[StatusOK])
			}
			dead := st.APNs.ByReason["Unregistered"] + st.FCM.ByReason["UNREGISTERED"]
			if dead != res.Statuses[StatusRemove] || dead == 0 {
				t.Errorf("sandbox answered %d dead tokens, bench counted %d REMOVE", dead, res.Statuses[StatusRemove])
			}
			if st.APNs.Received == 0 || st.FCM.Received == 0 {
				t.Errorf("APNs %d, FCM %d: the mix must reach both", st.APNs.Received, st.FCM.Received)
			}
			if len(res.Processes) != 1 || res.Processes[0].CPU <= 0 {
				t.Errorf("own process usage %+v", res.Processes)
			}
			if m := res.Machine; m == nil || m.CPUs < 1 || m.Busy < res.Processes[0].CPU/2 || m.Wall <= 0 {
				t.Errorf("machine usage %+v; own process used %v", m, res.Processes[0].CPU)
			}
			t.Logf("%d pushes in %v (%.0f/s), p50 %v p99 %v", res.Requests, res.Elapsed, res.Throughput(),
				res.Latency.Quantile(0.5), res.Latency.Quantile(0.99))
		})
	}
}
