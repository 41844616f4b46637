package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/web/mail"
)

func TestLogSender(t *testing.T) {
	msg := mail.Message{To: "owner@acme.example", Subject: "Reset your pushgate password", Body: "https://gw.example/reset/SECRET"}
	t.Run("in dev mode the whole message is logged, for the developer to open the link", func(t *testing.T) {
		var buf bytes.Buffer
		_ = mail.Log{Log: slog.New(slog.NewTextHandler(&buf, nil)), Reveal: true}.Send(context.Background(), msg)
		if !strings.Contains(buf.String(), "reset/SECRET") {
			t.Fatalf("log: %s", buf.String())
		}
	})
	t.Run("otherwise the link, a secret, never reaches the log", func(t *testing.T) {
		var buf bytes.Buffer
		_ = mail.Log{Log: slog.New(slog.NewTextHandler(&buf, nil))}.Send(context.Background(), msg)
		if strings.Contains(buf.String(), "SECRET") || strings.Contains(buf.String(), "owner@acme.example") || !strings.Contains(buf.String(), "not sent") {
			t.Fatalf("log: %s", buf.String())
		}
	})
}
