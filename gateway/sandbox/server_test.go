package sandbox_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"firebase.google.com/go/v4/messaging"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/oauth2/google"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

func TestConcurrentSendsAreCountedExactly(t *testing.T) {
	t.Parallel()
	const sends = 500
	f := mustFCMSandbox(t, sandbox.Config{})
	key, _ := mustP8(t)
	apnsClient := mustTokenClient(t, f.s, key, testKeyID)
	fcmClient := mustMessaging(t, f.s, f.saJSON, f.kit.ProjectID)
	apnsPrefixes := []string{"live", "unregistered", "baddevice", "unavailable", "toomany"}
	fcmPrefixes := []string{"live", "unregistered", "baddevice", "toomany"} // the SDK retries 503s itself

	var wg sync.WaitGroup
	errs := make(chan error, 2*sends)
	for i := range sends {
		wg.Go(func() {
			_, err := apnsClient.Push(&apns2.Notification{DeviceToken: apnsPrefixes[i%len(apnsPrefixes)] + "-tok", Topic: testTopic, Payload: alertPayload})
			if err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			_, err := fcmClient.Send(context.Background(), androidMessage(fcmPrefixes[i%len(fcmPrefixes)]+"-tok"))
			if err != nil && !messaging.IsUnregistered(err) && !messaging.IsInvalidArgument(err) && !messaging.IsQuotaExceeded(err) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("send: %v", err)
	}

	got := f.s.Stats()
	wantAPNs := sandbox.KindStats{Received: 500, Accepted: 100, Rejected: 400, ByReason: map[string]int64{
		"delivered": 100, "Unregistered": 100, "BadDeviceToken": 100, "ServiceUnavailable": 100, "TooManyRequests": 100,
	}}
	wantFCM := sandbox.KindStats{Received: 500, Accepted: 125, Rejected: 375, ByReason: map[string]int64{
		"delivered": 125, "UNREGISTERED": 125, "INVALID_ARGUMENT": 125, "QUOTA_EXCEEDED": 125,
	}}
	if !reflect.DeepEqual(got.APNs, wantAPNs) {
		t.Errorf("APNs stats = %+v, want %+v", got.APNs, wantAPNs)
	}
	if !reflect.DeepEqual(got.FCM, wantFCM) {
		t.Errorf("FCM stats = %+v, want %+v", got.FCM, wantFCM)
	}
	if got.OAuth.Accepted < 1 {
		t.Errorf("OAuth stats = %+v, want at least one token issued", got.OAuth)
	}
	if n := len(f.s.LastPayloads("apns", 1000)); n != 100 {
		t.Errorf("LastPayloads(apns) = %d, want the 100 accepted", n)
	}
	if n := len(f.s.LastPayloads("fcm", 1000)); n != 125 {
		t.Errorf("LastPayloads(fcm) = %d, want the 125 accepted", n)
	}
}

func TestPayloadHistoryIsBounded(t *testing.T) {
	f := mustAPNsSandbox(t, sandbox.Config{PayloadHistory: 3})
	c := mustTokenClient(t, f.s, f.key, testKeyID)
	for _, tok := range []string{"t1", "t2", "t3", "t4", "t5"} {
		mustPush(t, c, &apns2.Notification{DeviceToken: tok, Topic: testTopic, Payload: alertPayload})
	}
	var got []string
	for _, r := range f.s.LastPayloads("apns", 10) {
		got = append(got, r.Token)
	}
	if want := []string{"t3", "t4", "t5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("LastPayloads tokens = %v, want the last three oldest first %v", got, want)
	}
	if got := f.s.LastPayloads("apns", 1); len(got) != 1 || got[0].Token != "t5" {
		t.Errorf("LastPayloads(1) = %+v, want t5", got)
	}
}

func TestSandboxEndpoints(t *testing.T) {
	f := mustAPNsSandbox(t, sandbox.Config{})
	c := mustTLSClient(t, f.s)
	mustPush(t, mustTokenClient(t, f.s, f.key, testKeyID), &apns2.Notification{DeviceToken: "unregistered-x", Topic: testTopic, Payload: alertPayload})

	t.Run("stats is the JSON of Stats", func(t *testing.T) {
		var raw map[string]map[string]any
		mustGetJSON(t, c, f.s.URL()+"/sandbox/stats", &raw)
		apns := raw["apns"]
		if apns["received"] != 1.0 || apns["rejected"] != 1.0 || apns["by_reason"].(map[string]any)["Unregistered"] != 1.0 {
			t.Fatalf("stats = %v", raw)
		}
		if _, ok := raw["fcm"]; !ok {
			t.Fatalf("stats = %v, want an fcm section", raw)
		}
	})
	t.Run("ca.pem is the CA certificate", func(t *testing.T) {
		res := mustDo(t, c, http.MethodGet, f.s.URL()+"/sandbox/ca.pem", nil, "")
		if res.status != http.StatusOK || res.body != string(f.s.CACertPEM()) {
			t.Fatalf("got %d %q", res.status, res.body)
		}
	})
	t.Run("reset zeroes the counters", func(t *testing.T) {
		if res := mustDo(t, c, http.MethodPost, f.s.URL()+"/sandbox/reset", nil, ""); res.status != http.StatusNoContent {
			t.Fatalf("reset: %d %s", res.status, res.body)
		}
		if st := f.s.Stats(); st.APNs.Received != 0 || len(st.APNs.ByReason) != 0 {
			t.Fatalf("after reset stats = %+v", st)
		}
	})
	t.Run("the sandbox speaks HTTP/2", func(t *testing.T) {
		resp, err := c.Get(f.s.URL() + "/sandbox/stats")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("proto = %s, want HTTP/2", resp.Proto)
		}
	})
}

func TestCAFilesKeepTrustAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := sandbox.Config{CACertFile: filepath.Join(dir, "ca", "ca.pem"), CAKeyFile: filepath.Join(dir, "ca", "ca-key.pem")}
	first := mustServer(t, cfg)
	fi, err := os.Stat(cfg.CAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode = %v, want 0600", fi.Mode().Perm())
	}
	onDisk, err := os.ReadFile(cfg.CACertFile)
	if err != nil || !bytes.Equal(onDisk, first.CACertPEM()) {
		t.Fatalf("CA file = %q, %v; want the served CA", onDisk, err)
	}

	second := mustServer(t, cfg)
	if !bytes.Equal(first.CACertPEM(), second.CACertPEM()) {
		t.Fatal("restart made a new CA")
	}
	// A client that trusted the first process still trusts the second.
	key, _ := mustP8(t)
	c := mustTokenClient(t, first, key, testKeyID)
	c.Host = second.URL()
	if res := mustPush(t, c, &apns2.Notification{DeviceToken: "abc", Topic: testTopic, Payload: alertPayload}); res.StatusCode != http.StatusOK {
		t.Fatalf("push to the restarted sandbox: %d %q", res.StatusCode, res.Reason)
	}

	t.Run("only one of the files is an error", func(t *testing.T) {
		if err := os.Remove(cfg.CACertFile); err != nil {
			t.Fatal(err)
		}
		if _, err := sandbox.New(cfg); err == nil {
			t.Fatal("New with only the CA key succeeded")
		}
	})
}

func TestIssueClientCertLooksLikeApples(t *testing.T) {
	s, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := s.IssueClientCert(testTopic)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if leaf.Subject.CommonName != "Apple Push Services: "+testTopic {
		t.Errorf("CN = %q", leaf.Subject.CommonName)
	}
	var uid string
	for _, n := range leaf.Subject.Names {
		if n.Type.String() == "0.9.2342.19200300.100.1.1" {
			uid, _ = n.Value.(string)
		}
	}
	if uid != testTopic {
		t.Errorf("UID = %q, want the topic", uid)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: mustRootCAs(t, s), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not chain to the sandbox CA: %v", err)
	}
}

func TestEnsureDevKitKeepsKeysAndRewritesTokenURI(t *testing.T) {
	dir := t.TempDir()
	first, err := sandbox.EnsureDevKit(dir, "https://127.0.0.1:1111/token", "pushgate-dev")
	if err != nil {
		t.Fatal(err)
	}
	second, err := sandbox.EnsureDevKit(dir, "https://127.0.0.1:2222/token", "pushgate-dev")
	if err != nil {
		t.Fatal(err)
	}
	if first.APNsKeyID != second.APNsKeyID || !first.APNsKey.Equal(second.APNsKey) || !first.FCMKey.Equal(second.FCMKey) {
		t.Fatal("second call made new keys")
	}
	if len(second.APNsKeyID) != 10 || len(second.APNsTeamID) != 10 {
		t.Errorf("key id %q and team id %q, want Apple's 10 characters", second.APNsKeyID, second.APNsTeamID)
	}
	for _, p := range []string{second.APNsKeyFile, second.ServiceAccountFile} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", p, fi.Mode().Perm())
		}
	}

	p8, err := token.AuthKeyFromFile(second.APNsKeyFile)
	if err != nil {
		t.Fatalf("apns2 cannot load the .p8: %v", err)
	}
	if !p8.PublicKey.Equal(second.APNsKey) {
		t.Error(".p8 does not hold APNsKey")
	}

	saJSON, err := os.ReadFile(second.ServiceAccountFile)
	if err != nil {
		t.Fatal(err)
	}
	var sa map[string]string
	if err := json.Unmarshal(saJSON, &sa); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "project_id", "private_key_id", "private_key", "client_email", "client_id", "auth_uri", "token_uri"} {
		if sa[k] == "" {
			t.Errorf("service account has no %s", k)
		}
	}
	if sa["token_uri"] != "https://127.0.0.1:2222/token" || sa["project_id"] != "pushgate-dev" || sa["client_email"] != second.ClientEmail {
		t.Errorf("service account = %v", sa)
	}
	if !strings.HasPrefix(sa["private_key"], "-----BEGIN PRIVATE KEY-----") {
		t.Error("private_key is not PKCS#8 PEM")
	}
	cfg, err := google.JWTConfigFromJSON(saJSON, "https://www.googleapis.com/auth/firebase.messaging")
	if err != nil {
		t.Fatalf("Google's library cannot read the service account: %v", err)
	}
	if cfg.Email != second.ClientEmail || cfg.TokenURL != "https://127.0.0.1:2222/token" {
		t.Errorf("jwt config = %s %s", cfg.Email, cfg.TokenURL)
	}
}
