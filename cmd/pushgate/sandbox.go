package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/gateway/sandbox"
)

// cmdSandbox runs the sandbox providers on their own port, the way
// Mattermost runs TPNS: a fake APNs and FCM for tests and benchmarks.
func cmdSandbox(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sandbox", stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "address of the TLS listener (HTTP/2)")
	latency := fs.Duration("latency", 0, "artificial delay added to every APNs and FCM answer, e.g. 2ms")
	caDir := fs.String("ca-dir", "", "keep the sandbox CA in this directory so restarts keep the clients' trust (default: a new CA per start)")
	appsFile := fs.String("apps-file", "", "accept only the keys, topics and projects of this apps file (default: any well-formed credentials)")
	history := fs.Int("history", 256, "accepted payloads kept per kind for inspection; 0 keeps none")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := newLogger(stderr, *logFormat, "info")
	cfg := sandbox.Config{Latency: *latency, Logger: log, PayloadHistory: *history}
	if *history == 0 {
		cfg.PayloadHistory = -1
	}
	if *caDir != "" {
		cfg.CACertFile, cfg.CAKeyFile = filepath.Join(*caDir, "sandbox-ca.pem"), filepath.Join(*caDir, "sandbox-ca-key.pem")
	}
	if *appsFile != "" {
		if err := trustApps(&cfg, *appsFile); err != nil {
			return err
		}
	}
	sb, err := sandbox.New(cfg)
	if err != nil {
		return err
	}
	if err := sb.Listen(*listen); err != nil {
		return fmt.Errorf("sandbox: listening on %s: %w", *listen, err)
	}
	log.Info("sandbox providers listening", "url", sb.URL(), "ca", sb.URL()+"/sandbox/ca.pem", "stats", sb.URL()+"/sandbox/stats", "latency", *latency)
	fmt.Fprintf(stdout, "sandbox providers at %s (APNs /3/device/…, FCM /v1/projects/…/messages:send, OAuth /token)\n", sb.URL())
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = sb.Shutdown(shutdownCtx)
	log.Info("sandbox stopped")
	return err
}

// trustApps makes the sandbox accept exactly the credentials of an apps file:
// the public halves of its .p8 keys and service accounts, its topics and projects.
func trustApps(cfg *sandbox.Config, path string) error {
	apps, err := gateway.LoadAppsFile(path)
	if err != nil {
		return fmt.Errorf("apps file %s: %w", path, err)
	}
	cfg.APNsKeys = map[string]*ecdsa.PublicKey{}
	cfg.FCMAccounts = map[string]*rsa.PublicKey{}
	for _, a := range apps {
		switch a.Kind {
		case gateway.KindAPNs:
			cfg.APNsTopics = append(cfg.APNsTopics, a.Topic)
			if a.KeyFile == "" {
				continue // certificate auth: the client certificate must come from the sandbox CA
			}
			key, err := readPKCS8(a.KeyFile)
			if err != nil {
				return fmt.Errorf("app %s: key_file: %w", a.ID, err)
			}
			ec, ok := key.(*ecdsa.PrivateKey)
			if !ok {
				return fmt.Errorf("app %s: key_file is not an EC key", a.ID)
			}
			cfg.APNsKeys[a.KeyID] = &ec.PublicKey
		case gateway.KindFCM:
			raw, err := os.ReadFile(a.ServiceAccountFile)
			if err != nil {
				return fmt.Errorf("app %s: service_account_file: %w", a.ID, err)
			}
			var sa struct {
				ProjectID   string `json:"project_id"`
				ClientEmail string `json:"client_email"`
				PrivateKey  string `json:"private_key"`
			}
			if err := json.Unmarshal(raw, &sa); err != nil {
				return fmt.Errorf("app %s: service_account_file: %w", a.ID, err)
			}
			key, err := parsePKCS8([]byte(sa.PrivateKey))
			if err != nil {
				return fmt.Errorf("app %s: service account private_key: %w", a.ID, err)
			}
			r, ok := key.(*rsa.PrivateKey)
			if !ok {
				return fmt.Errorf("app %s: service account key is not RSA", a.ID)
			}
			cfg.FCMAccounts[sa.ClientEmail] = &r.PublicKey
			cfg.FCMProjects = append(cfg.FCMProjects, sa.ProjectID)
		}
	}
	return nil
}

func readPKCS8(path string) (any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parsePKCS8(raw)
}

func parsePKCS8(raw []byte) (any, error) {
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	return x509.ParsePKCS8PrivateKey(block.Bytes)
}
