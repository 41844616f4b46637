package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Provider kinds of an app.
const (
	KindAPNs = "apns"
	KindFCM  = "fcm"
)

// APNs environments.
const (
	EnvProduction  = "production"
	EnvDevelopment = "development"
)

// AppConfig is one push app (one set of shared provider credentials) from the apps file.
type AppConfig struct {
	// ID is the Mattermost platform name the app serves: apple, apple_rn, android_rn, …
	ID   string `yaml:"id"`
	Kind string `yaml:"kind"`

	// APNs
	Topic        string `yaml:"topic,omitempty"`
	KeyFile      string `yaml:"key_file,omitempty"`
	KeyID        string `yaml:"key_id,omitempty"`
	TeamID       string `yaml:"team_id,omitempty"`
	CertFile     string `yaml:"cert_file,omitempty"`
	CertPassword string `yaml:"cert_password,omitempty"`
	Environment  string `yaml:"environment,omitempty"`

	// FCM
	ServiceAccountFile string `yaml:"service_account_file,omitempty"`
	// Default marks the FCM app Rocket.Chat's /push/gcm/send uses.
	Default bool `yaml:"default,omitempty"`

	// Both: Endpoint replaces the provider's base URL, CAFile adds trusted roots.
	Endpoint string `yaml:"endpoint,omitempty"`
	CAFile   string `yaml:"ca_file,omitempty"`
}

// LoadAppsFile reads and validates the YAML list of push apps; relative file
// paths in it are resolved against the file's directory.
func LoadAppsFile(path string) ([]AppConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apps file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var apps []AppConfig
	if err := dec.Decode(&apps); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("apps file %s: no apps defined", path)
		}
		return nil, fmt.Errorf("apps file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for i := range apps {
		a := &apps[i]
		for _, p := range []*string{&a.KeyFile, &a.CertFile, &a.ServiceAccountFile, &a.CAFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
	if err := ValidateApps(apps); err != nil {
		return nil, fmt.Errorf("apps file %s: %w", path, err)
	}
	return apps, nil
}

// ValidateApps checks the shape of an app list; every error names the app and the field.
func ValidateApps(apps []AppConfig) error {
	if len(apps) == 0 {
		return errors.New("no apps defined")
	}
	var errs []error
	seen := make(map[string]bool, len(apps))
	defaults := 0
	for i, a := range apps {
		name := a.ID
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("app %s: %s: %s", name, field, fmt.Sprintf(format, args...)))
		}
		switch {
		case a.ID == "":
			bad("id", "is required")
		case strings.Contains(a.ID, "-v"):
			bad("id", "%q must not contain \"-v\" (that suffix is a Mattermost app version and is stripped from platforms)", a.ID)
		case seen[a.ID]:
			bad("id", "%q is used by more than one app", a.ID)
		}
		seen[a.ID] = true
		if a.Endpoint != "" {
			if u, err := url.Parse(a.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				bad("endpoint", "%q is not an absolute http(s) URL", a.Endpoint)
			}
		}
		validateKind(a, bad)
		if a.Kind == KindFCM && a.Default {
			defaults++
			if defaults > 1 {
				bad("default", "only one fcm app can be the default")
			}
		}
	}
	return errors.Join(errs...)
}
