package charttest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// regions are the values files an operator installs with, as `helm -f` takes them.
var regions = []struct {
	name  string
	files []string
}{
	{"default", []string{"values.yaml"}},
	{"us", []string{"values.yaml", "values-us.yaml"}},
	{"de", []string{"values.yaml", "values-de.yaml"}},
}

const fullname = "pushgate"

func TestEveryValuesFileRendersValidObjects(t *testing.T) {
	for _, rg := range regions {
		t.Run(rg.name+" renders and decodes strictly", func(t *testing.T) {
			r := mustRender(t, mustValues(t, rg.files))
			find[*appsv1.Deployment](t, r, fullname)
			find[*corev1.Service](t, r, fullname)
			find[*corev1.ConfigMap](t, r, fullname)
			find[*batchv1.Job](t, r, fullname+"-migrate")
			find[*policyv1.PodDisruptionBudget](t, r, fullname)
		})
		t.Run(rg.name+" pods meet the restricted Pod Security level", func(t *testing.T) {
			r := mustRender(t, mustValues(t, rg.files))
			for name, pod := range podTemplates(r) {
				mustBeRestricted(t, name, pod)
			}
		})
		t.Run(rg.name+" every container has requests and limits", func(t *testing.T) {
			r := mustRender(t, mustValues(t, rg.files))
			for name, pod := range podTemplates(r) {
				for _, c := range pod.Spec.Containers {
					for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
						if c.Resources.Requests.Name(res, "").IsZero() || c.Resources.Limits.Name(res, "").IsZero() {
							t.Errorf("%s container %s: %s request or limit missing", name, c.Name, res)
						}
					}
				}
			}
		})
		t.Run(rg.name+" selectors pick only the serving pods", func(t *testing.T) {
			r := mustRender(t, mustValues(t, rg.files))
			d := find[*appsv1.Deployment](t, r, fullname)
			podLabels := labels.Set(d.Spec.Template.Labels)
			sel := mustSelector(t, d.Spec.Selector)
			if !sel.Matches(podLabels) {
				t.Errorf("Deployment selector %v does not match its pods %v", sel, podLabels)
			}
			svc := find[*corev1.Service](t, r, fullname)
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
				t.Errorf("Service selector %v does not match the pods", svc.Spec.Selector)
			}
			pdb := find[*policyv1.PodDisruptionBudget](t, r, fullname)
			if !mustSelector(t, pdb.Spec.Selector).Matches(podLabels) {
				t.Errorf("PDB selector does not match the pods")
			}
			job := find[*batchv1.Job](t, r, fullname+"-migrate")
			if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(job.Spec.Template.Labels)) {
				t.Errorf("the Service would send traffic to the migration pod %v", job.Spec.Template.Labels)
			}
		})
	}
}

// podTemplates are every pod the chart would start, by owner.
func podTemplates(r rendered) map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, d := range all[*appsv1.Deployment](r) {
		out["Deployment/"+d.Name] = d.Spec.Template
	}
	for _, j := range all[*batchv1.Job](r) {
		out["Job/"+j.Name] = j.Spec.Template
	}
	return out
}

// mustBeRestricted evaluates a pod with the checks the PodSecurity admission plugin runs.
func mustBeRestricted(t *testing.T, name string, pod corev1.PodTemplateSpec) {
	t.Helper()
	if v := restrictedViolations(t, pod); v != "" {
		t.Errorf("%s violates the restricted Pod Security level: %s", name, v)
	}
}

// restrictedViolations says what in pod the restricted level forbids; empty when nothing.
func restrictedViolations(t *testing.T, pod corev1.PodTemplateSpec) string {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	res := policy.AggregateCheckResults(ev.EvaluatePod(lv, &pod.ObjectMeta, &pod.Spec))
	if res.Allowed {
		return ""
	}
	return res.ForbiddenDetail()
}

// TestTheChecksCatchMistakes proves the checks above can fail: a pod or a
// manifest that breaks a rule is caught.
func TestTheChecksCatchMistakes(t *testing.T) {
	r := mustRender(t, mustValues(t, []string{"values.yaml"}))
	for name, spoil := range map[string]func(*corev1.PodSpec){
		"privilege escalation is forbidden": func(p *corev1.PodSpec) {
			p.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
		},
		"a capability kept is forbidden": func(p *corev1.PodSpec) {
			p.Containers[0].SecurityContext.Capabilities.Drop = nil
		},
		"running as root is forbidden": func(p *corev1.PodSpec) {
			p.SecurityContext.RunAsNonRoot = nil
			p.Containers[0].SecurityContext.RunAsNonRoot = nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			pod := *find[*appsv1.Deployment](t, r, fullname).Spec.Template.DeepCopy()
			spoil(&pod.Spec)
			if restrictedViolations(t, pod) == "" {
				t.Error("the restricted level allowed it")
			}
		})
	}
	t.Run("an unknown field is refused by the strict decoder", func(t *testing.T) {
		_, err := decodeStrict("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {prots: []}\n")
		if err == nil || !strings.Contains(err.Error(), "prots") {
			t.Errorf("err %v, want it to name the unknown field", err)
		}
	})
	t.Run("a wrong type is refused by the strict decoder", func(t *testing.T) {
		_, err := decodeStrict("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n")
		if err == nil {
			t.Error("decoded replicas: two")
		}
	})
	t.Run("an unknown kind is refused", func(t *testing.T) {
		_, err := decodeStrict("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n")
		if err == nil {
			t.Error("decoded a Widget")
		}
	})
}

func mustSelector(t *testing.T, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func container(t *testing.T, pod corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range pod.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func envVar(t *testing.T, c corev1.Container, name string) corev1.EnvVar {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("container %s has no %s", c.Name, name)
	return corev1.EnvVar{}
}

func TestDeployment(t *testing.T) {
	r := mustRender(t, mustValues(t, []string{"values.yaml", "values-us.yaml"}))
	d := find[*appsv1.Deployment](t, r, fullname)
	pod := d.Spec.Template.Spec
	c := container(t, pod, "pushgate")

	t.Run("a rollout never goes below the desired count", func(t *testing.T) {
		ru := d.Spec.Strategy.RollingUpdate
		if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Errorf("strategy %+v, want RollingUpdate with maxUnavailable 0", d.Spec.Strategy)
		}
		if ru != nil && ru.MaxSurge.IntValue() < 1 {
			t.Errorf("maxSurge %v, want at least 1 so a rollout can proceed", ru.MaxSurge)
		}
	})
	t.Run("probes use /readyz, /healthz and a startup probe on the http port", func(t *testing.T) {
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, "/healthz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s probe missing", p.name)
				continue
			}
			if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
				t.Errorf("%s probe %s on %s, want %s on http", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
			}
		}
		if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8086 {
			t.Errorf("ports %+v, want http 8086 (the listen address in the config)", c.Ports)
		}
	})
	t.Run("the grace period outlasts the preStop pause plus shutdown_timeout", func(t *testing.T) {
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
			t.Fatalf("no preStop sleep: %+v", c.Lifecycle)
		}
		pause := c.Lifecycle.PreStop.Sleep.Seconds
		cfg := mustConfigFile(t, r, fullname)
		if cfg["shutdown_timeout"] != "20s" {
			t.Fatalf("shutdown_timeout %q, want 20s", cfg["shutdown_timeout"])
		}
		if pause < 1 || *pod.TerminationGracePeriodSeconds <= pause+20 {
			t.Errorf("terminationGracePeriodSeconds %d with preStop %d s and shutdown_timeout 20s", *pod.TerminationGracePeriodSeconds, pause)
		}
	})
	t.Run("GOMEMLIMIT is 90 percent of the memory limit", func(t *testing.T) {
		if got := c.Resources.Limits.Memory().String(); got != "512Mi" {
			t.Fatalf("memory limit %s, want the US values' 512Mi", got)
		}
		if e := envVar(t, c, "GOMEMLIMIT"); e.Value != "460MiB" {
			t.Errorf("GOMEMLIMIT %q, want 460MiB", e.Value)
		}
	})
	t.Run("pods spread across zones", func(t *testing.T) {
		var zone *corev1.TopologySpreadConstraint
		for i := range pod.TopologySpreadConstraints {
			if pod.TopologySpreadConstraints[i].TopologyKey == "topology.kubernetes.io/zone" {
				zone = &pod.TopologySpreadConstraints[i]
			}
		}
		if zone == nil {
			t.Fatal("no zone topology spread constraint")
		}
		if !mustSelector(t, zone.LabelSelector).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Error("the zone spread does not select the pushgate pods")
		}
	})
	t.Run("secrets come from Secrets by name, never from values", func(t *testing.T) {
		for env, secret := range map[string]string{
			"PUSHGATE_DATABASE_URL":          "pushgate-database",
			"PUSHGATE_REDIS_URL":             "pushgate-redis",
			"PUSHGATE_STRIPE_SECRET_KEY":     "pushgate-stripe",
			"PUSHGATE_STRIPE_WEBHOOK_SECRET": "pushgate-stripe",
			"PUSHGATE_TOKEN_KEY":             "pushgate-token-key",
		} {
			e := envVar(t, c, env)
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret {
				t.Errorf("%s = %+v, want a reference to Secret %s", env, e, secret)
			}
		}
		cfg := mustConfigFile(t, r, fullname)
		for _, k := range []string{"database_url", "redis_url", "stripe_secret_key", "stripe_webhook_secret", "token_key"} {
			if _, ok := cfg[k]; ok {
				t.Errorf("the ConfigMap holds %s", k)
			}
		}
	})
	t.Run("app credentials are Secrets mounted read-only where the apps file points", func(t *testing.T) {
		apps := mustAppsFile(t, r, fullname)
		if len(apps) != 2 {
			t.Fatalf("apps %v", apps)
		}
		mounts := map[string]corev1.VolumeMount{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m
		}
		for _, app := range apps {
			file, _ := app["key_file"].(string)
			if app["kind"] == "fcm" {
				file, _ = app["service_account_file"].(string)
			}
			m, ok := mounts[filepath.Dir(file)]
			if !ok || !m.ReadOnly {
				t.Errorf("app %v: no read-only mount of %s", app["id"], filepath.Dir(file))
				continue
			}
			vol := volume(t, pod, m.Name)
			if vol.Secret == nil || len(vol.Secret.Items) != 1 || vol.Secret.Items[0].Path != filepath.Base(file) {
				t.Errorf("app %v: volume %+v does not hold %s", app["id"], vol.VolumeSource, filepath.Base(file))
			}
		}
	})
	t.Run("only mounted volumes are writable", func(t *testing.T) {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Fatal("the root filesystem is writable")
		}
		var writable []string
		for _, m := range c.VolumeMounts {
			if !m.ReadOnly {
				writable = append(writable, m.MountPath)
				if volume(t, pod, m.Name).EmptyDir == nil {
					t.Errorf("%s is writable and not an emptyDir", m.MountPath)
				}
			}
		}
		if !slices.Equal(writable, []string{"/data", "/tmp"}) {
			t.Errorf("writable mounts %v, want /data and /tmp", writable)
		}
	})
	t.Run("the pod gets no Kubernetes API token", func(t *testing.T) {
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Error("the service account token is mounted")
		}
	})
}

func volume(t *testing.T, pod corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return corev1.Volume{}
}

// mustConfigFile parses config.yaml of the named ConfigMap.
func mustConfigFile(t *testing.T, r rendered, configMap string) map[string]string {
	t.Helper()
	var cfg map[string]string
	if err := yaml.UnmarshalStrict([]byte(find[*corev1.ConfigMap](t, r, configMap).Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	return cfg
}

func mustAppsFile(t *testing.T, r rendered, configMap string) []map[string]any {
	t.Helper()
	var apps []map[string]any
	if err := yaml.UnmarshalStrict([]byte(find[*corev1.ConfigMap](t, r, configMap).Data["apps.yaml"]), &apps); err != nil {
		t.Fatalf("apps.yaml: %v", err)
	}
	return apps
}

func TestConfigChecksum(t *testing.T) {
	checksum := func(overrides ...string) string {
		r := mustRender(t, mustValues(t, []string{"values.yaml"}, overrides...))
		return find[*appsv1.Deployment](t, r, fullname).Spec.Template.Annotations["checksum/config"]
	}
	base := checksum()
	if base == "" {
		t.Fatal("no checksum/config annotation on the pods")
	}
	t.Run("the same config keeps the pods", func(t *testing.T) {
		if again := checksum("replicaCount: 1"); again != base {
			t.Errorf("checksum changed from %s to %s", base, again)
		}
	})
	for name, override := range map[string]string{
		"a config setting rolls the pods": "config: {log_level: debug}",
		"a new app rolls the pods":        "apps: [{id: android, kind: fcm, credentials: {secretName: s, key: sa.json}}]",
		"a new public URL rolls the pods": "publicURL: https://push.example.org",
	} {
		t.Run(name, func(t *testing.T) {
			if changed := checksum(override); changed == base {
				t.Errorf("checksum stayed %s", base)
			}
		})
	}
}

func TestConfigFile(t *testing.T) {
	for _, rg := range regions[1:] {
		t.Run(rg.name+" names its region and lists both public URLs", func(t *testing.T) {
			r := mustRender(t, mustValues(t, rg.files))
			cfg := mustConfigFile(t, r, fullname)
			if cfg["region"] != rg.name || cfg["public_url"] != "https://push-"+rg.name+".example.com" {
				t.Errorf("region %q at %q", cfg["region"], cfg["public_url"])
			}
			if want := "de=https://push-de.example.com,us=https://push-us.example.com"; cfg["region_urls"] != want {
				t.Errorf("region_urls %q, want %q", cfg["region_urls"], want)
			}
			if cfg["listen"] != ":8086" || cfg["data_dir"] != "/data" {
				t.Errorf("listen %q, data_dir %q", cfg["listen"], cfg["data_dir"])
			}
		})
	}
	t.Run("the regions use their own database and Redis", func(t *testing.T) {
		// Both regions name their Secrets alike, in their own namespace and cluster.
		for _, rg := range regions[1:] {
			r := mustRender(t, mustValues(t, rg.files))
			c := container(t, find[*appsv1.Deployment](t, r, fullname).Spec.Template.Spec, "pushgate")
			envVar(t, c, "PUSHGATE_REDIS_URL")
			envVar(t, c, "PUSHGATE_DATABASE_URL")
		}
	})
}

func TestMigrationJob(t *testing.T) {
	r := mustRender(t, mustValues(t, []string{"values.yaml", "values-de.yaml"}))
	job := find[*batchv1.Job](t, r, fullname+"-migrate")
	d := find[*appsv1.Deployment](t, r, fullname)
	jc := container(t, job.Spec.Template.Spec, "migrate")
	dc := container(t, d.Spec.Template.Spec, "pushgate")

	t.Run("it is a pre-install and pre-upgrade hook", func(t *testing.T) {
		if got := r.hooks["Job/"+fullname+"-migrate"]; !slices.Equal(got, []string{"pre-install", "pre-upgrade"}) {
			t.Errorf("hook events %v", got)
		}
		if got := r.hooks["ConfigMap/"+fullname+"-migrate"]; !slices.Equal(got, []string{"pre-install", "pre-upgrade"}) {
			t.Errorf("its ConfigMap's hook events %v: the first install needs it before the Job", got)
		}
		if job.Annotations["helm.sh/hook-weight"] <= find[*corev1.ConfigMap](t, r, fullname+"-migrate").Annotations["helm.sh/hook-weight"] {
			t.Error("the Job does not run after its ConfigMap is created")
		}
	})
	t.Run("it runs pushgate migrate with the same image, config and secrets", func(t *testing.T) {
		if !slices.Equal(jc.Args, []string{"migrate", "--config", "/etc/pushgate/config/config.yaml"}) {
			t.Errorf("args %v", jc.Args)
		}
		if jc.Image != dc.Image {
			t.Errorf("image %s, the Deployment runs %s", jc.Image, dc.Image)
		}
		for _, k := range []string{"config.yaml", "apps.yaml"} {
			if a, b := find[*corev1.ConfigMap](t, r, fullname+"-migrate").Data[k], find[*corev1.ConfigMap](t, r, fullname).Data[k]; a != b {
				t.Errorf("%s differs from the Deployment's:\n%s\n%s", k, a, b)
			}
		}
		for _, e := range dc.Env {
			if e.Name == "GOMEMLIMIT" {
				continue
			}
			if got := envVar(t, jc, e.Name); fmt.Sprint(got) != fmt.Sprint(e) {
				t.Errorf("%s = %v, the Deployment has %v", e.Name, got, e)
			}
		}
	})
	t.Run("a failed migration is not retried forever", func(t *testing.T) {
		if job.Spec.BackoffLimit == nil || *job.Spec.ActiveDeadlineSeconds <= 0 || job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("backoffLimit %v, deadline %v, restart %s", job.Spec.BackoffLimit, job.Spec.ActiveDeadlineSeconds, job.Spec.Template.Spec.RestartPolicy)
		}
	})
	t.Run("with the hook off it renders as a plain Job to apply by hand", func(t *testing.T) {
		r := mustRender(t, mustValues(t, []string{"values.yaml", "values-de.yaml"}, "migration: {hook: false}"))
		if len(r.hooks) != 0 {
			t.Errorf("hooks %v", r.hooks)
		}
		find[*batchv1.Job](t, r, fullname+"-migrate")
	})
}

func TestIngress(t *testing.T) {
	r := mustRender(t, mustValues(t, []string{"values.yaml", "values-us.yaml"}))
	ing := find[*networkingv1.Ingress](t, r, fullname)
	t.Run("the edge refuses bodies over pushgate's 64 KiB", func(t *testing.T) {
		if got := ing.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"]; got != "64k" {
			t.Errorf("proxy-body-size %q, want 64k", got)
		}
	})
	t.Run("TLS uses the named secret for the host", func(t *testing.T) {
		if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "pushgate-us-tls" || !slices.Equal(ing.Spec.TLS[0].Hosts, []string{"push-us.example.com"}) {
			t.Errorf("tls %+v", ing.Spec.TLS)
		}
	})
	t.Run("every path goes to the Service's http port", func(t *testing.T) {
		b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
		if b.Name != fullname || b.Port.Name != "http" {
			t.Errorf("backend %+v", b)
		}
	})
	t.Run("no Ingress unless enabled", func(t *testing.T) {
		r := mustRender(t, mustValues(t, []string{"values.yaml"}))
		if n := len(all[*networkingv1.Ingress](r)); n != 0 {
			t.Errorf("%d Ingresses", n)
		}
	})
}

func TestScaling(t *testing.T) {
	r := mustRender(t, mustValues(t, []string{"values.yaml", "values-us.yaml"}))
	t.Run("the autoscaler owns the replica count", func(t *testing.T) {
		hpa := find[*autoscalingv2.HorizontalPodAutoscaler](t, r, fullname)
		if hpa.Spec.ScaleTargetRef.Name != fullname || *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 12 {
			t.Errorf("hpa %+v", hpa.Spec)
		}
		if d := find[*appsv1.Deployment](t, r, fullname); d.Spec.Replicas != nil {
			t.Errorf("the Deployment sets replicas %d, which would fight the HPA", *d.Spec.Replicas)
		}
	})
	t.Run("a drain takes one pod at a time", func(t *testing.T) {
		pdb := find[*policyv1.PodDisruptionBudget](t, r, fullname)
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("pdb %+v", pdb.Spec)
		}
	})
	t.Run("three replicas with Redis render", func(t *testing.T) {
		r := mustRender(t, mustValues(t, []string{"values.yaml"}, "replicaCount: 3", "redis: {urlSecret: {name: pushgate-redis}}"))
		if d := find[*appsv1.Deployment](t, r, fullname); *d.Spec.Replicas != 3 {
			t.Errorf("replicas %d", *d.Spec.Replicas)
		}
	})
}

func TestNetworkPolicy(t *testing.T) {
	r := mustRender(t, mustValues(t, []string{"values.yaml", "values-us.yaml"}))
	np := find[*networkingv1.NetworkPolicy](t, r, fullname)
	t.Run("ingress comes from the ingress controller and Prometheus only", func(t *testing.T) {
		if len(np.Spec.Ingress) != 1 {
			t.Fatalf("ingress rules %+v", np.Spec.Ingress)
		}
		var from []string
		for _, p := range np.Spec.Ingress[0].From {
			if p.NamespaceSelector == nil || p.PodSelector != nil || p.IPBlock != nil {
				t.Errorf("peer %+v is not a namespace", p)
				continue
			}
			from = append(from, p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
		}
		if !slices.Equal(from, []string{"ingress-nginx", "monitoring"}) {
			t.Errorf("from %v", from)
		}
	})
	t.Run("egress reaches DNS, PostgreSQL, Redis and the providers' ports only", func(t *testing.T) {
		var ports []string
		for _, e := range np.Spec.Egress {
			for _, p := range e.Ports {
				ports = append(ports, fmt.Sprintf("%s/%s", p.Port.String(), *p.Protocol))
			}
		}
		want := []string{"53/UDP", "53/TCP", "5432/TCP", "6379/TCP", "443/TCP", "2197/TCP"}
		if !slices.Equal(ports, want) {
			t.Errorf("egress ports %v, want %v", ports, want)
		}
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{"Ingress", "Egress"}) {
			t.Errorf("policy types %v", np.Spec.PolicyTypes)
		}
	})
	t.Run("known database and Redis addresses narrow egress to them", func(t *testing.T) {
		r := mustRender(t, mustValues(t, []string{"values.yaml", "values-us.yaml"},
			"networkPolicy: {postgres: {cidrs: [10.1.0.0/24]}, redis: {cidrs: [10.2.0.5/32]}}"))
		np := find[*networkingv1.NetworkPolicy](t, r, fullname)
		if got := np.Spec.Egress[1].To; len(got) != 1 || got[0].IPBlock.CIDR != "10.1.0.0/24" {
			t.Errorf("PostgreSQL egress to %+v", got)
		}
		if got := np.Spec.Egress[2].To; len(got) != 1 || got[0].IPBlock.CIDR != "10.2.0.5/32" {
			t.Errorf("Redis egress to %+v", got)
		}
	})
}

func TestMonitoring(t *testing.T) {
	r := mustRender(t, mustValues(t, []string{"values.yaml", "values-us.yaml"}))
	t.Run("the ServiceMonitor scrapes /metrics on the http port", func(t *testing.T) {
		sm := find[*monitoringv1.ServiceMonitor](t, r, fullname)
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("endpoints %+v", sm.Spec.Endpoints)
		}
	})
	rule := find[*monitoringv1.PrometheusRule](t, r, fullname)
	alerts := map[string]string{}
	for _, g := range rule.Spec.Groups {
		for _, rl := range g.Rules {
			alerts[rl.Alert] = rl.Expr.String()
		}
	}
	t.Run("the issue's alerts are there", func(t *testing.T) {
		for _, a := range []string{
			"PushgatePushErrorRatioHigh", "PushgateProviderErrors", "PushgateProviderCredentialsRejected", "PushgateCertificateExpiresSoon",
			"PushgateQuotaStoreErrors", "PushgateQuotaFailOpen", "PushgateQuotaReconcileBacklog",
			"PushgateNotReady", "PushgateDown",
		} {
			if alerts[a] == "" {
				t.Errorf("no alert %s", a)
			}
		}
	})
	t.Run("alerts use only metrics the binary exports", func(t *testing.T) {
		exported := mustExportedMetrics(t)
		used := regexp.MustCompile(`pushgate_[a-z_]+`)
		for name, expr := range alerts {
			for _, m := range used.FindAllString(expr, -1) {
				m = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if !exported[m] {
					t.Errorf("alert %s uses %s, which the binary does not export (it exports %v)", name, m, exported)
				}
			}
		}
	})
	t.Run("alerts are scoped to this release's job and namespace", func(t *testing.T) {
		for name, expr := range alerts {
			if strings.Contains(expr, "pushgate_") && !strings.Contains(expr, `job="pushgate", namespace="pushgate"`) {
				t.Errorf("alert %s is not scoped: %s", name, expr)
			}
		}
	})
}

// mustExportedMetrics reads the metric names registered in the binary's Go source.
func mustExportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`Name:\s+"(pushgate_[a-z_]+)"`)
	root := filepath.Join("..", "..")
	for _, dir := range []string{"api", "gateway", "tenants", "billing", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			src, err := os.ReadFile(p)
			for _, m := range re.FindAllSubmatch(src, -1) {
				names[string(m[1])] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) < 5 {
		t.Fatalf("found only %v in the binary's source", names)
	}
	return names
}

func TestChartLints(t *testing.T) {
	for _, rg := range regions {
		t.Run(rg.name+" lints clean", func(t *testing.T) {
			vals := mustValues(t, rg.files[1:])
			l := lint.AllWithKubeVersion(chartDir, vals, namespace, kubeVersion)
			for _, m := range l.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("%s", m)
				}
			}
		})
	}
}

func TestChartVersionFollowsTheBinary(t *testing.T) {
	ch := mustLoadChart(t)
	if ch.Metadata.Version != ch.Metadata.AppVersion {
		t.Errorf("Chart.yaml version %s and appVersion %s differ; they move together with the binary's release tag", ch.Metadata.Version, ch.Metadata.AppVersion)
	}
	r := mustRender(t, mustValues(t, []string{"values.yaml"}))
	if img := container(t, find[*appsv1.Deployment](t, r, fullname).Spec.Template.Spec, "pushgate").Image; !strings.HasSuffix(img, ":"+ch.Metadata.AppVersion) {
		t.Errorf("image %s, want the appVersion tag by default", img)
	}
}
