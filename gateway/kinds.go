package gateway

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
)

// providerKind is what pushgate knows of one kind of provider: the apps-file
// keys only it uses, how to check them and how to open an app's client.
type providerKind struct {
	// fields are the apps-file keys that belong to this kind alone.
	fields []string
	// validate reports every problem of an app's kind-specific settings through bad.
	validate func(a AppConfig, bad func(field, format string, args ...any))
	open     func(cfg AppConfig, env providerEnv) (provider, error)
}

// providerKinds lists every kind an app can be; a new provider adds one entry.
var providerKinds = map[string]providerKind{
	KindAPNs: {fields: apnsFields, validate: validateAPNs, open: openAPNs},
	KindFCM:  {fields: fcmFields, validate: validateFCM, open: openFCM},
}

// providerEnv is what opening a provider's client may use besides the app's settings.
type providerEnv struct {
	opts Options
	log  *slog.Logger
	m    *appMetrics
	// shared holds credentials that apps of one registry share, keyed by their kind.
	shared map[string]any
}

// setKeys lists the apps-file keys a sets, in the order of AppConfig's fields.
func (a AppConfig) setKeys() []string {
	v := reflect.ValueOf(a)
	var keys []string
	for i, f := range reflect.VisibleFields(v.Type()) {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && !v.Field(i).IsZero() {
			keys = append(keys, name)
		}
	}
	return keys
}

// validateKind checks a's kind and its kind-specific settings, and that it
// sets no other kind's keys.
func validateKind(a AppConfig, bad func(field, format string, args ...any)) {
	kind, ok := providerKinds[a.Kind]
	if !ok {
		bad("kind", "must be %s, got %q", kindList(), a.Kind)
		return
	}
	kind.validate(a, bad)
	for _, key := range a.setKeys() {
		if owners := fieldOwners(key); owners != "" && !slices.Contains(kind.fields, key) {
			bad(key, "is only for kind %s", owners)
		}
	}
}

// kindList names the kinds for an error: "apns" or "fcm".
func kindList() string {
	kinds := sortedKinds()
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%q", k)
	}
	if len(kinds) < 2 {
		return strings.Join(kinds, "")
	}
	return strings.Join(kinds[:len(kinds)-1], ", ") + " or " + kinds[len(kinds)-1]
}

// fieldOwners names the kinds that use an apps-file key.
func fieldOwners(field string) string {
	var owners []string
	for _, k := range sortedKinds() {
		if slices.Contains(providerKinds[k].fields, field) {
			owners = append(owners, k)
		}
	}
	return strings.Join(owners, " or ")
}

func sortedKinds() []string {
	kinds := make([]string, 0, len(providerKinds))
	for k := range providerKinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}
