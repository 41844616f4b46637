package charttest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// repoRoot is the pushgate module, two levels up.
var repoRoot = filepath.Join("..", "..")

// TestDockerfile checks the image recipe the issue asks for; no Docker engine is needed.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for name, re := range map[string]string{
		"the build has CGO off":                 `CGO_ENABLED=0`,
		"the final stage is distroless":         `(?m)^FROM gcr\.io/distroless/static[^ ]*$`,
		"it runs as a numeric non-root user":    `(?m)^USER [1-9][0-9]*:[1-9][0-9]*$`,
		"pushgate version is the smoke command": `/out/pushgate version`,
		"it is labelled with version":           `org\.opencontainers\.image\.version="\$\{VERSION\}"`,
		"it is labelled with revision":          `org\.opencontainers\.image\.revision="\$\{REVISION\}"`,
		"the volume is the chart's data_dir":    `(?m)^VOLUME \["/data"\]$`,
	} {
		t.Run(name, func(t *testing.T) {
			if !regexp.MustCompile(re).MatchString(df) {
				t.Errorf("Dockerfile does not match %s", re)
			}
		})
	}
	t.Run("the user matches the pods' runAsUser", func(t *testing.T) {
		r := mustRender(t, mustValues(t, []string{"values.yaml"}))
		uid := *find[*appsv1.Deployment](t, r, fullname).Spec.Template.Spec.SecurityContext.RunAsUser
		if !strings.Contains(df, fmt.Sprintf("USER %d:", uid)) {
			t.Errorf("the chart runs as %d, the image as another user", uid)
		}
	})
}

// mustBuildBinary builds cmd/pushgate with the Dockerfile's build command.
func mustBuildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pushgate")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=charttest", "-o", bin, "./cmd/pushgate")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// chartPod is the rendered chart laid out in a temporary directory as the
// pods would see it: config, credentials and data under one root.
type chartPod struct {
	root string
	env  []string
}

// path maps a path inside the pod to the temporary directory.
func (p chartPod) path(s string) string {
	for _, prefix := range []string{"/etc/pushgate/", "/data"} {
		if strings.HasPrefix(s, prefix) {
			return filepath.Join(p.root, s)
		}
	}
	return s
}

// rewrite maps every pod path in a file's text to the temporary directory.
func (p chartPod) rewrite(text string) string {
	text = strings.ReplaceAll(text, "/etc/pushgate/", p.root+"/etc/pushgate/")
	return strings.ReplaceAll(text, "data_dir: /data", "data_dir: "+p.root+"/data")
}

// args maps a container's arguments.
func (p chartPod) args(c corev1.Container) []string {
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		out[i] = p.path(a)
	}
	return out
}

// mustLayOut writes the ConfigMap's files, and the Secrets' values, where the pod mounts them.
func mustLayOut(t *testing.T, r rendered, configMap string, pod corev1.PodSpec, c corev1.Container, secrets map[string]map[string]string) chartPod {
	t.Helper()
	p := chartPod{root: t.TempDir()}
	for _, m := range c.VolumeMounts {
		dir := p.path(m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		vol := volume(t, pod, m.Name)
		switch {
		case vol.ConfigMap != nil:
			for name, text := range find[*corev1.ConfigMap](t, r, configMap).Data {
				mustWrite(t, filepath.Join(dir, name), p.rewrite(text))
			}
		case vol.Secret != nil:
			for _, item := range vol.Secret.Items {
				v, ok := secrets[vol.Secret.SecretName][item.Key]
				if !ok {
					t.Fatalf("the pod mounts Secret %s key %s, which the test does not have", vol.Secret.SecretName, item.Key)
				}
				mustWrite(t, filepath.Join(dir, item.Path), v)
			}
		}
	}
	for _, e := range c.Env {
		v := e.Value
		if ref := e.ValueFrom; ref != nil {
			s, ok := secrets[ref.SecretKeyRef.Name][ref.SecretKeyRef.Key]
			if !ok {
				t.Fatalf("%s reads Secret %s key %s, which the test does not have", e.Name, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key)
			}
			v = s
		}
		p.env = append(p.env, e.Name+"="+p.rewrite(v))
	}
	return p
}

func mustWrite(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTheBinaryRunsTheRenderedChart builds the image's binary, lays the
// rendered migration Job and Deployment out on disk as their pods would see
// them, runs the Job's command, then the Deployment's, probes it as the
// kubelet would, sends a push through it to the sandbox providers and stops it
// as Kubernetes does.
func TestTheBinaryRunsTheRenderedChart(t *testing.T) {
	bin := mustBuildBinary(t)

	t.Run("the binary is static and answers version", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary has a dynamic loader: it would not run on distroless/static")
			}
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "pushgate charttest ") {
			t.Errorf("pushgate version: %v %q", err, out)
		}
	})

	sandboxURL, caPEM := mustStartSandbox(t, bin)
	port := mustFreePort(t)
	vals := mustValues(t, []string{"values.yaml"},
		"publicURL: http://127.0.0.1:"+port,
		"config: {registration: open, trust_proxy: 'false'}",
		`apps:
  - {id: apple_rn, kind: apns, topic: com.example.chat, environment: development, keyID: ABC123DEFG, teamID: DEF123GHIJ,
     endpoint: `+sandboxURL+`, credentials: {secretName: pushgate-apns, key: AuthKey.p8}, ca: {secretName: sandbox-ca, key: ca.pem}}
  - {id: android_rn, kind: fcm, default: true, endpoint: `+sandboxURL+`,
     credentials: {secretName: pushgate-fcm, key: service-account.json}, ca: {secretName: sandbox-ca, key: ca.pem}}`)
	r := mustRender(t, vals)
	dbDir := t.TempDir()
	secrets := map[string]map[string]string{
		"pushgate-database":  {"url": "sqlite:" + filepath.Join(dbDir, "pushgate.db")},
		"pushgate-token-key": {"token-key": "ck:chart-test-token-key-of-32-bytes-or-more"},
		"pushgate-apns":      {"AuthKey.p8": mustAPNsKey(t)},
		"pushgate-fcm":       {"service-account.json": mustServiceAccount(t, sandboxURL)},
		"sandbox-ca":         {"ca.pem": caPEM},
	}

	job := find[*batchv1.Job](t, r, fullname+"-migrate")
	jc := container(t, job.Spec.Template.Spec, "migrate")
	jobPod := mustLayOut(t, r, fullname+"-migrate", job.Spec.Template.Spec, jc, secrets)
	t.Run("the migration Job's command migrates the database", func(t *testing.T) {
		cmd := exec.Command(bin, jobPod.args(jc)...)
		cmd.Env = jobPod.env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "is now at schema version") {
			t.Fatalf("pushgate %v: %v\n%s", jc.Args, err, out)
		}
	})

	d := find[*appsv1.Deployment](t, r, fullname)
	dc := container(t, d.Spec.Template.Spec, "pushgate")
	pod := mustLayOut(t, r, fullname, d.Spec.Template.Spec, dc, secrets)
	serve := exec.Command(bin, pod.args(dc)...)
	// The pod listens on :8086; here the same config listens on a free loopback port.
	serve.Env = append(pod.env, "PUSHGATE_LISTEN=127.0.0.1:"+port)
	var logs bytes.Buffer
	serve.Stdout, serve.Stderr = &logs, &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		serve.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	})
	base := "http://127.0.0.1:" + port
	mustAnswer(t, base+dc.StartupProbe.HTTPGet.Path, exited, &logs)

	t.Run("the probes' paths answer 200", func(t *testing.T) {
		for _, path := range []string{dc.StartupProbe.HTTPGet.Path, dc.LivenessProbe.HTTPGet.Path, dc.ReadinessProbe.HTTPGet.Path, "/metrics"} {
			if code, body := get(t, base+path); code != http.StatusOK {
				t.Errorf("GET %s: %d %s", path, code, body)
			}
		}
	})
	t.Run("a registered workspace's push is answered OK through the chart's apps", func(t *testing.T) {
		token := mustRegister(t, base)
		for _, platform := range []string{"apple_rn", "android_rn"} {
			body := fmt.Sprintf(`{"platform":%q,"server_id":"srv1","device_id":"chart-test-device","ack_id":"ack-%s","type":"message","message":"hi"}`, platform, platform)
			resp, err := http.Post(base+"/mm/"+token+"/api/v1/send_push", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(got), `"status":"OK"`) {
				t.Errorf("%s push: %d %s\nlogs:\n%s", platform, resp.StatusCode, got, logs.String())
			}
		}
	})
	t.Run("SIGTERM stops it within the grace period", func(t *testing.T) {
		serve.Process.Signal(syscall.SIGTERM)
		grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit: %v\n%s", err, logs.String())
			}
		case <-time.After(grace):
			t.Errorf("still running after the %s grace period", grace)
		}
	})
}

// mustStartSandbox runs `pushgate sandbox` on a free loopback port and returns its URL and CA.
func mustStartSandbox(t *testing.T, bin string) (string, string) {
	t.Helper()
	caDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "sandbox", "--listen", "127.0.0.1:"+mustFreePort(t), "--ca-dir", caDir)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("sandbox did not start: %v\n%s", err, stderr.String())
	}
	url := regexp.MustCompile(`https://[0-9.:]+`).FindString(line)
	ca, err := os.ReadFile(filepath.Join(caDir, "sandbox-ca.pem"))
	if url == "" || err != nil {
		t.Fatalf("sandbox said %q; CA: %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return url, string(ca)
}

func mustFreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// mustAnswer waits until url answers 200, as the startup probe does; it fails if the process exits.
func mustAnswer(t *testing.T, url string, exited chan error, logs *bytes.Buffer) {
	t.Helper()
	for i := 0; i < 600; i++ {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("pushgate serve exited: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200\n%s", url, logs.String())
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(body)
}

// mustRegister registers a workspace that accepts the current terms and returns its token.
func mustRegister(t *testing.T, base string) string {
	t.Helper()
	var terms struct {
		Version string `json:"version"`
	}
	resp, err := http.Get(base + "/api/v1/terms")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&terms)
	resp.Body.Close()
	body := fmt.Sprintf(`{"name":"Chart test","contact_email":"ops@example.com","server_id":"srv1","accept_terms_version":%q}`, terms.Version)
	resp, err = http.Post(base+"/api/v1/workspaces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ws struct {
		Token string `json:"token"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &ws); resp.StatusCode != http.StatusCreated || err != nil || ws.Token == "" {
		t.Fatalf("registering: %d %s", resp.StatusCode, raw)
	}
	return ws.Token
}

// mustAPNsKey makes an APNs token-auth key in Apple's .p8 form.
func mustAPNsKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// mustServiceAccount makes an FCM service account whose token endpoint is the sandbox's.
func mustServiceAccount(t *testing.T, sandboxURL string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := json.Marshal(map[string]string{
		"type":         "service_account",
		"project_id":   "pushgate-chart-test",
		"client_email": "pushgate@pushgate-chart-test.iam.gserviceaccount.com",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"token_uri":    sandboxURL + "/token",
	})
	return string(sa)
}

// TestRegionValuesPassTheBinarysConfigCheck runs each region's migration Job
// command, whose start checks every setting, on the region's rendered files.
func TestRegionValuesPassTheBinarysConfigCheck(t *testing.T) {
	bin := mustBuildBinary(t)
	for _, rg := range regions {
		t.Run(rg.name+" config is accepted by pushgate migrate", func(t *testing.T) {
			r := mustRender(t, mustValues(t, rg.files))
			secrets := map[string]map[string]string{
				"pushgate-database":  {"url": "sqlite:" + filepath.Join(t.TempDir(), "pushgate.db")},
				"pushgate-token-key": {"token-key": "ck:chart-test-token-key-of-32-bytes-or-more"},
				// Parsed at start; migrate does not connect to Redis.
				"pushgate-redis":  {"url": "redis://:secret@127.0.0.1:1/0"},
				"pushgate-apns":   {"AuthKey.p8": mustAPNsKey(t)},
				"pushgate-fcm":    {"service-account.json": mustServiceAccount(t, "https://oauth2.example.com")},
				"pushgate-stripe": {"secret-key": "sk_test_chart", "webhook-secret": "whsec_chart"},
			}
			job := find[*batchv1.Job](t, r, fullname+"-migrate")
			jc := container(t, job.Spec.Template.Spec, "migrate")
			pod := mustLayOut(t, r, fullname+"-migrate", job.Spec.Template.Spec, jc, secrets)
			cmd := exec.Command(bin, pod.args(jc)...)
			cmd.Env = pod.env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("pushgate %v: %v\n%s", jc.Args, err, out)
			}
		})
	}
}
