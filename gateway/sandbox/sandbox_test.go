package sandbox_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/certificate"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

const (
	testTopic   = "app.pushgate.test"
	testKeyID   = "KEYID00001"
	testTeamID  = "TEAMID0001"
	testProject = "pushgate-test"
)

// mustServer starts a sandbox on a loopback port, shut down when the test ends.
func mustServer(t testing.TB, cfg sandbox.Config) *sandbox.Server {
	t.Helper()
	s, err := sandbox.New(cfg)
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// mustRootCAs is the pool a client uses to trust the sandbox, built from its PEM like a client would.
func mustRootCAs(t testing.TB, s *sandbox.Server) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("CACertPEM holds no certificate")
	}
	return pool
}

// mustP8 returns a fresh APNs signing key and its .p8 encoding.
func mustP8(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, p8, err := sandbox.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	return key, p8
}

// trustSandbox points an apns2 client at the sandbox and makes its HTTP/2 transport trust the sandbox CA.
func trustSandbox(t testing.TB, c *apns2.Client, s *sandbox.Server) *apns2.Client {
	t.Helper()
	c.Host = s.URL()
	tr := c.HTTPClient.Transport.(*http2.Transport)
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.RootCAs = mustRootCAs(t, s)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// mustTokenClient is an apns2 client with provider-token auth against the sandbox.
func mustTokenClient(t testing.TB, s *sandbox.Server, key *ecdsa.PrivateKey, keyID string) *apns2.Client {
	t.Helper()
	return trustSandbox(t, apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: keyID, TeamID: testTeamID}), s)
}

// mustCertClient is an apns2 client with certificate auth, using a certificate the sandbox issued for topic.
func mustCertClient(t testing.TB, s *sandbox.Server, topic string) *apns2.Client {
	t.Helper()
	certPEM, keyPEM, err := s.IssueClientCert(topic)
	if err != nil {
		t.Fatalf("IssueClientCert: %v", err)
	}
	cert, err := certificate.FromPemBytes(append(certPEM, keyPEM...), "")
	if err != nil {
		t.Fatalf("certificate.FromPemBytes: %v", err)
	}
	return trustSandbox(t, apns2.NewClient(cert), s)
}

// mustTLSClient is a plain HTTPS client (HTTP/2 when the server offers it) trusting the sandbox.
func mustTLSClient(t testing.TB, s *sandbox.Server) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mustRootCAs(t, s)}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// mustDevKit writes a dev kit for the sandbox at s (or with Google's token URI when s is nil).
func mustDevKit(t testing.TB, dir string, s *sandbox.Server) sandbox.DevKit {
	t.Helper()
	tokenURI := ""
	if s != nil {
		tokenURI = s.URL() + "/token"
	}
	kit, err := sandbox.EnsureDevKit(dir, tokenURI, testProject)
	if err != nil {
		t.Fatalf("EnsureDevKit: %v", err)
	}
	return kit
}

// fcmFixture is a sandbox configured with a dev kit's service account, and that account's JSON.
type fcmFixture struct {
	s      *sandbox.Server
	kit    sandbox.DevKit
	saJSON []byte
}

// mustFCMSandbox starts a sandbox that trusts only a fresh dev kit's service account, the way serve --dev wires it.
func mustFCMSandbox(t testing.TB, cfg sandbox.Config) fcmFixture {
	t.Helper()
	dir := t.TempDir()
	kit := mustDevKit(t, dir, nil)
	cfg.FCMAccounts = map[string]*rsa.PublicKey{kit.ClientEmail: kit.FCMKey}
	if cfg.FCMProjects == nil {
		cfg.FCMProjects = []string{kit.ProjectID}
	}
	s := mustServer(t, cfg)
	kit = mustDevKit(t, dir, s) // now that the port is known
	sa, err := os.ReadFile(kit.ServiceAccountFile)
	if err != nil {
		t.Fatal(err)
	}
	return fcmFixture{s: s, kit: kit, saJSON: sa}
}

// mustMessaging is the real Firebase messaging client, doing the OAuth exchange against the sandbox and trusting its CA.
func mustMessaging(t testing.TB, s *sandbox.Server, saJSON []byte, project string) *messaging.Client {
	t.Helper()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, mustTLSClient(t, s))
	creds, err := google.CredentialsFromJSONWithType(ctx, saJSON, google.ServiceAccount, "https://www.googleapis.com/auth/firebase.messaging")
	if err != nil {
		t.Fatalf("CredentialsFromJSON: %v", err)
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project},
		option.WithHTTPClient(oauth2.NewClient(ctx, creds.TokenSource)),
		option.WithEndpoint(s.URL()+"/v1"))
	if err != nil {
		t.Fatalf("firebase.NewApp: %v", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		t.Fatalf("app.Messaging: %v", err)
	}
	return client
}

// mustGetJSON GETs path from the sandbox and decodes the JSON answer into v.
func mustGetJSON(t testing.TB, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// rawResponse is a sandbox answer read without an SDK.
type rawResponse struct {
	status int
	header http.Header
	body   string
}

// mustDo sends a request with the given headers and body and reads the whole answer.
func mustDo(t testing.TB, c *http.Client, method, url string, header map[string]string, body string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}
