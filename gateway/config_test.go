package gateway

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

func mustWriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustP8 writes a fresh APNs-style .p8 key (PKCS#8 EC P-256 PEM).
func mustP8(t testing.TB, dir string) string {
	t.Helper()
	_, p8, err := sandbox.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	return mustWriteFile(t, dir, "AuthKey_TEST.p8", string(p8))
}

func TestLoadAppsFile(t *testing.T) {
	dir := t.TempDir()
	path := mustWriteFile(t, dir, "apps.yaml", `
- id: apple_rn
  kind: apns
  topic: app.pushgate.dev
  key_file: keys/AuthKey.p8
  key_id: ABC123DEFG
  team_id: TEAM123456
  environment: production
- id: android_rn
  kind: fcm
  service_account_file: /etc/pushgate/fcm.json
  default: true
`)
	apps, err := LoadAppsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 || apps[0].ID != "apple_rn" || apps[1].Kind != KindFCM || !apps[1].Default {
		t.Fatalf("got %+v", apps)
	}
	if want := filepath.Join(dir, "keys", "AuthKey.p8"); apps[0].KeyFile != want {
		t.Errorf("relative key_file resolved to %q, want %q (next to the apps file)", apps[0].KeyFile, want)
	}
	if apps[1].ServiceAccountFile != "/etc/pushgate/fcm.json" {
		t.Errorf("absolute path changed to %q", apps[1].ServiceAccountFile)
	}
}

func TestLoadAppsFileRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key names the key", "- id: apple\n  kind: apns\n  topci: x\n", []string{"topci"}},
		{"empty file", "", []string{"no apps"}},
		{"not a list", "id: apple\n", []string{"cannot unmarshal"}},
		{"missing kind", "- id: apple\n", []string{"app apple: kind"}},
		{"apns without topic", "- {id: apple, kind: apns, key_file: k, key_id: i, team_id: t, environment: production}\n", []string{"app apple: topic: is required"}},
		{"apns topic with .voip", "- {id: apple, kind: apns, topic: a.voip, key_file: k, key_id: i, team_id: t, environment: production}\n", []string{"app apple: topic"}},
		{"apns without auth", "- {id: apple, kind: apns, topic: a, environment: production}\n", []string{"app apple: key_file: set token auth"}},
		{"apns token auth incomplete", "- {id: apple, kind: apns, topic: a, key_file: k, environment: production}\n", []string{"app apple: key_id: is required", "app apple: team_id: is required"}},
		{"apns with both auths", "- {id: apple, kind: apns, topic: a, key_file: k, key_id: i, team_id: t, cert_file: c, environment: production}\n", []string{"app apple: key_file: token auth"}},
		{"apns bad environment", "- {id: apple, kind: apns, topic: a, cert_file: c, environment: prod}\n", []string{`app apple: environment: must be "production" or "development", got "prod"`}},
		{"apns with fcm fields", "- {id: apple, kind: apns, topic: a, cert_file: c, environment: production, service_account_file: s, default: true}\n", []string{"app apple: service_account_file: is only for kind fcm", "app apple: default: is only for kind fcm"}},
		{"fcm without service account", "- {id: android, kind: fcm}\n", []string{"app android: service_account_file: is required"}},
		{"fcm with apns fields", "- {id: android, kind: fcm, service_account_file: s, topic: t, key_id: k}\n", []string{"app android: topic: is only for kind apns", "app android: key_id: is only for kind apns"}},
		{"two fcm defaults", "- {id: a1, kind: fcm, service_account_file: s, default: true}\n- {id: a2, kind: fcm, service_account_file: s, default: true}\n", []string{"app a2: default: only one"}},
		{"duplicate ids", "- {id: a1, kind: fcm, service_account_file: s}\n- {id: a1, kind: fcm, service_account_file: s}\n", []string{"app a1: id: \"a1\" is used by more than one app"}},
		{"id with a version suffix", "- {id: apple-v2, kind: fcm, service_account_file: s}\n", []string{"app apple-v2: id"}},
		{"missing id is named by position", "- {kind: fcm, service_account_file: s}\n", []string{"app #1: id: is required"}},
		{"relative endpoint", "- {id: a1, kind: fcm, service_account_file: s, endpoint: fcm.local}\n", []string{"app a1: endpoint"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadAppsFile(mustWriteFile(t, t.TempDir(), "apps.yaml", tc.yaml))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewRegistryFailsOnUnloadableCredentials(t *testing.T) {
	dir := t.TempDir()
	p8 := mustP8(t, dir)
	garbage := mustWriteFile(t, dir, "garbage.pem", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n")
	notJSON := mustWriteFile(t, dir, "sa.json", "{not json")
	noKey := mustWriteFile(t, dir, "sa-nokey.json", `{"type":"service_account","project_id":"p","client_email":"e@p.iam.gserviceaccount.com","private_key":"nope","token_uri":"https://oauth2.googleapis.com/token"}`)
	apns := func(mod func(*AppConfig)) AppConfig {
		a := AppConfig{ID: "apple_rn", Kind: KindAPNs, Topic: testTopic, KeyFile: p8, KeyID: "K", TeamID: "T", Environment: EnvDevelopment}
		mod(&a)
		return a
	}
	fcm := func(file string) AppConfig {
		return AppConfig{ID: "android_rn", Kind: KindFCM, ServiceAccountFile: file}
	}
	tests := []struct {
		name string
		app  AppConfig
		want string
	}{
		{"missing .p8", apns(func(a *AppConfig) { a.KeyFile = filepath.Join(dir, "missing.p8") }), "app apple_rn: key_file"},
		{"garbage .p8", apns(func(a *AppConfig) { a.KeyFile = garbage }), "app apple_rn: key_file"},
		{"garbage certificate", apns(func(a *AppConfig) { a.KeyFile, a.KeyID, a.TeamID, a.CertFile = "", "", "", garbage }), "app apple_rn: cert_file"},
		{"unreadable p12", apns(func(a *AppConfig) {
			a.KeyFile, a.KeyID, a.TeamID, a.CertFile = "", "", "", garbage[:len(garbage)-4]+".p12"
		}), "app apple_rn: cert_file"},
		{"missing ca_file", apns(func(a *AppConfig) { a.CAFile = filepath.Join(dir, "ca.pem") }), "app apple_rn: ca_file"},
		{"ca_file without certificates", apns(func(a *AppConfig) { a.CAFile = garbage }), "app apple_rn: ca_file"},
		{"service account not JSON", fcm(notJSON), "app android_rn: service_account_file"},
		{"service account without key", fcm(noKey), "app android_rn: service_account_file"},
		{"missing service account", fcm(filepath.Join(dir, "missing.json")), "app android_rn: service_account_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRegistry(context.Background(), []AppConfig{tc.app}, Options{}, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "c2VjcmV0LWtleS1ieXRlcw") {
				t.Errorf("error quotes key material: %v", err)
			}
		})
	}
}

func TestRegistryLookups(t *testing.T) {
	dir := t.TempDir()
	p8 := mustP8(t, dir)
	apps := []AppConfig{
		{ID: "apple", Kind: KindAPNs, Topic: "app.one", KeyFile: p8, KeyID: "K", TeamID: "T", Environment: EnvProduction},
		{ID: "apple_rn", Kind: KindAPNs, Topic: "app.one", KeyFile: p8, KeyID: "K", TeamID: "T", Environment: EnvProduction},
		{ID: "apple_rnbeta", Kind: KindAPNs, Topic: "app.beta", KeyFile: p8, KeyID: "K", TeamID: "T", Environment: EnvDevelopment},
	}
	r, err := NewRegistry(context.Background(), apps, Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	t.Run("platform suffix is stripped", func(t *testing.T) {
		if a, ok := r.App("apple_rn-v2"); !ok || a.ID() != "apple_rn" {
			t.Errorf("App(apple_rn-v2) = %v, %v", a, ok)
		}
		if _, ok := r.App("android"); ok {
			t.Error("unknown platform found an app")
		}
	})
	t.Run("first app with a topic answers for it", func(t *testing.T) {
		if a, voip, ok := r.APNsByTopic("app.one"); !ok || voip || a.ID() != "apple" {
			t.Errorf("APNsByTopic(app.one) = %v, %v, %v", a, voip, ok)
		}
	})
	t.Run("voip topic finds the app and says voip", func(t *testing.T) {
		if a, voip, ok := r.APNsByTopic("app.beta.voip"); !ok || !voip || a.ID() != "apple_rnbeta" {
			t.Errorf("APNsByTopic(app.beta.voip) = %v, %v, %v", a, voip, ok)
		}
	})
	t.Run("unknown topic is not guessed", func(t *testing.T) {
		if _, _, ok := r.APNsByTopic("chat.rocket.ios"); ok {
			t.Error("unknown topic found an app")
		}
	})
	t.Run("no fcm app means no default", func(t *testing.T) {
		if _, ok := r.DefaultFCM(); ok {
			t.Error("DefaultFCM found an app")
		}
	})
	t.Run("apps sharing a key share one signing token", func(t *testing.T) {
		one, _ := r.App("apple")
		two, _ := r.App("apple_rn")
		if one.prov.(*apnsProvider).signer != two.prov.(*apnsProvider).signer {
			t.Error("two tokens for one key")
		}
	})
}
