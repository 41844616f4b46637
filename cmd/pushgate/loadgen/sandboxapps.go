package loadgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/gateway/sandbox"
)

// Names in a sandbox apps directory.
const (
	SandboxAppsFile = "apps.yaml"
	// SandboxCAFile is where `pushgate sandbox --ca-dir DIR` keeps its CA certificate.
	SandboxCAFile  = "sandbox-ca.pem"
	sandboxTopic   = DefaultTopic
	sandboxProject = "pushgate-dev"
)

// WriteSandboxApps writes throwaway credentials and an apps file in dir for
// the sandbox at sandboxURL: apps apple and apple_rn (APNs, topic
// app.pushgate.dev) and android and android_rn (FCM, project pushgate-dev),
// trusting dir/sandbox-ca.pem, which `pushgate sandbox --ca-dir dir` creates.
// The same file serves the gateway (PUSHGATE_APPS_FILE), the sandbox
// (--apps-file) and direct mode. It returns the apps file's path.
func WriteSandboxApps(dir, sandboxURL string) (string, error) {
	sandboxURL = strings.TrimRight(sandboxURL, "/")
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	kit, err := sandbox.EnsureDevKit(dir, sandboxURL+"/token", sandboxProject)
	if err != nil {
		return "", err
	}
	caFile := filepath.Join(dir, SandboxCAFile)
	apns := func(id string) gateway.AppConfig {
		return gateway.AppConfig{ID: id, Kind: gateway.KindAPNs, Topic: sandboxTopic, KeyFile: kit.APNsKeyFile,
			KeyID: kit.APNsKeyID, TeamID: kit.APNsTeamID, Environment: gateway.EnvDevelopment, Endpoint: sandboxURL, CAFile: caFile}
	}
	fcm := func(id string) gateway.AppConfig {
		return gateway.AppConfig{ID: id, Kind: gateway.KindFCM, ServiceAccountFile: kit.ServiceAccountFile,
			Endpoint: sandboxURL, CAFile: caFile}
	}
	apps := []gateway.AppConfig{apns("apple"), apns("apple_rn"), fcm("android"), fcm("android_rn")}
	if err := gateway.ValidateApps(apps); err != nil {
		return "", err
	}
	b, err := yaml.Marshal(apps)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, SandboxAppsFile)
	head := fmt.Sprintf("# Sandbox push apps for `pushgate bench`, pointed at %s.\n", sandboxURL)
	if err := os.WriteFile(path, append([]byte(head), b...), 0o600); err != nil {
		return "", err
	}
	return path, nil
}
