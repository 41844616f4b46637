package main

import (
	"io"
	"log/slog"
	"strings"

	"github.com/pushgate/pushgate/tenants"
)

// newLogger builds the process logger. Its ReplaceAttr is the redaction rule:
// secrets by key are dropped, device tokens are shortened, and workspace
// tokens anywhere in a string are cut to their hint.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: redactAttr}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func redactAttr(_ []string, a slog.Attr) slog.Attr {
	key := strings.ToLower(a.Key)
	switch {
	case key == "device_token" || key == "device_id":
		if s := a.Value.String(); len(s) > 8 {
			return slog.String(a.Key, s[:6]+"…")
		}
		return a
	case key == "token" || key == "authorization" || strings.Contains(key, "password") ||
		strings.Contains(key, "secret") || strings.Contains(key, "private_key"):
		return slog.String(a.Key, "[redacted]")
	}
	if a.Value.Kind() == slog.KindString {
		if s := a.Value.String(); strings.Contains(s, "pgw_") {
			return slog.String(a.Key, tenants.RedactTokens(s))
		}
	}
	if a.Value.Kind() == slog.KindAny {
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, tenants.RedactTokens(err.Error()))
		}
	}
	return a
}
