package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http/httpproxy"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/gateway/sandbox"
)

// devTopic and devProject are the sandbox apps' bundle id and FCM project (DESIGN.md).
const (
	devTopic   = "app.pushgate.dev"
	devProject = "pushgate-dev"
)

// startSandbox runs the sandbox providers in-process for --dev, with
// throwaway credentials kept in dataDir, and returns the apps that use them.
func startSandbox(ctx context.Context, cfg config, log *slog.Logger, cleanup *closers) ([]gateway.AppConfig, *sandbox.Server, error) {
	dir := cfg.DataDir
	// The first call creates the keys; the service account's token URI is
	// rewritten once the sandbox's port is known.
	kit, err := sandbox.EnsureDevKit(dir, "", devProject)
	if err != nil {
		return nil, nil, err
	}
	sb, err := sandbox.New(sandbox.Config{
		Logger:      log.With("component", "sandbox"),
		CACertFile:  filepath.Join(dir, "sandbox-ca.pem"),
		CAKeyFile:   filepath.Join(dir, "sandbox-ca-key.pem"),
		APNsKeys:    map[string]*ecdsa.PublicKey{kit.APNsKeyID: kit.APNsKey},
		APNsTopics:  []string{devTopic},
		FCMAccounts: map[string]*rsa.PublicKey{kit.ClientEmail: kit.FCMKey},
		FCMProjects: []string{devProject},
	})
	if err != nil {
		return nil, nil, err
	}
	if err := sb.Listen(cfg.SandboxListen); err != nil {
		return nil, nil, fmt.Errorf("sandbox providers: %w", err)
	}
	cleanup.add(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sb.Shutdown(ctx)
	})
	if kit, err = sandbox.EnsureDevKit(dir, sb.URL()+"/token", devProject); err != nil {
		return nil, nil, err
	}
	caFile := filepath.Join(dir, "sandbox-ca.pem")
	apns := func(id string) gateway.AppConfig {
		return gateway.AppConfig{ID: id, Kind: gateway.KindAPNs, Topic: devTopic, KeyFile: kit.APNsKeyFile, KeyID: kit.APNsKeyID,
			TeamID: kit.APNsTeamID, Environment: gateway.EnvDevelopment, Endpoint: sb.URL(), CAFile: caFile}
	}
	fcm := func(id string) gateway.AppConfig {
		return gateway.AppConfig{ID: id, Kind: gateway.KindFCM, ServiceAccountFile: kit.ServiceAccountFile, Endpoint: sb.URL(), CAFile: caFile}
	}
	apps := []gateway.AppConfig{apns("apple"), apns("apple_rn"), fcm("android"), fcm("android_rn")}
	log.Info("sandbox providers started", "url", sb.URL(), "apps", "apple, apple_rn, android, android_rn")
	return apps, sb, nil
}

// openRegistry loads the push apps (apps_file, or the dev sandbox's) and
// builds one long-lived client per app.
func openRegistry(ctx context.Context, cfg config, dev bool, getenv func(string) string, log *slog.Logger, reg prometheus.Registerer, cleanup *closers) (*gateway.Registry, *sandbox.Server, error) {
	var apps []gateway.AppConfig
	var sb *sandbox.Server
	var err error
	switch {
	case cfg.AppsFile != "":
		if apps, err = gateway.LoadAppsFile(cfg.AppsFile); err != nil {
			return nil, nil, fmt.Errorf("apps file %s: %w", cfg.AppsFile, err)
		}
	case dev:
		if apps, sb, err = startSandbox(ctx, cfg, log, cleanup); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("no push apps: set PUSHGATE_APPS_FILE to the YAML list of APNs and FCM apps (or run serve --dev for the sandbox apps)")
	}
	proxy, err := providerProxy(getenv, log)
	if err != nil {
		return nil, nil, err
	}
	registry, err := gateway.NewRegistry(ctx, apps, gateway.Options{Proxy: proxy}, log.With("component", "gateway"), reg)
	if err != nil {
		return nil, nil, err
	}
	cleanup.add(registry.Close)
	return registry, sb, nil
}

// providerProxy is the outbound proxy for APNs and FCM, from HTTPS_PROXY,
// HTTP_PROXY and NO_PROXY (or their lower-case forms) with the usual
// semantics; nil when none is set. A malformed proxy URL stops the start.
func providerProxy(getenv func(string) string, log *slog.Logger) (func(*url.URL) (*url.URL, error), error) {
	first := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	env := httpproxy.Config{
		HTTPProxy:  first("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: first("HTTPS_PROXY", "https_proxy"),
		NoProxy:    first("NO_PROXY", "no_proxy"),
		CGI:        getenv("REQUEST_METHOD") != "",
	}
	if env.HTTPProxy == "" && env.HTTPSProxy == "" {
		return nil, nil
	}
	// httpproxy ignores a proxy URL it cannot parse, which would send pushes around the proxy.
	for _, v := range []struct{ name, value string }{{"HTTPS_PROXY", env.HTTPSProxy}, {"HTTP_PROXY", env.HTTPProxy}} {
		if err := checkProxyURL(v.value); err != nil {
			return nil, fmt.Errorf("%s: %w", v.name, err)
		}
	}
	proxy := env.ProxyFunc()
	// Providers are HTTPS: this is the proxy a push to them uses.
	if via, err := proxy(&url.URL{Scheme: "https", Host: "api.push.apple.com"}); err == nil && via != nil {
		log.Info("APNs and FCM go through a proxy", "proxy", via.Redacted(), "no_proxy", env.NoProxy)
	}
	return proxy, nil
}

// checkProxyURL accepts what httpproxy accepts: a URL, or a host:port taken as http://host:port.
func checkProxyURL(v string) error {
	if v == "" {
		return nil
	}
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.Hostname() == "" {
		return errors.New("not a proxy URL such as http://proxy.example:3128")
	}
	switch u.Scheme {
	case "http", "https":
		return nil
	}
	return fmt.Errorf("scheme %q: APNs and FCM need an http or https proxy", u.Scheme)
}
