package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/pushgate/pushgate/api"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// buildInfo reads the version, VCS commit and commit date stamped by the Go toolchain.
func buildInfo() api.VersionInfo {
	v := api.VersionInfo{Version: version, Hash: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Hash = s.Value
			case "vcs.time":
				v.Date = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					v.Hash += "-dirty"
				}
			}
		}
	}
	return v
}

func cmdVersion(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	v := buildInfo()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(v)
	}
	_, err := fmt.Fprintf(stdout, "pushgate %s (commit %s, built %s)\n", v.Version, v.Hash, v.Date)
	return err
}
