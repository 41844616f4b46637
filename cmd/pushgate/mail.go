package main

import (
	"log/slog"

	"github.com/pushgate/pushgate/web/mail"
)

// newMailer sends the dashboard's one-time links through smtp_url; without
// one, dev mode writes them to the log and a real deployment drops them,
// saying so at start so nobody waits for a mail.
func newMailer(cfg config, dev bool, log *slog.Logger) (mail.Sender, error) {
	if cfg.SMTPURL == "" {
		if dev {
			log.Info("no smtp_url is set: password reset and invitation links are written to this log instead of mailed")
		} else {
			log.Info("no smtp_url is set: password reset and invitation mails are not sent (set smtp_url to send them)")
		}
		return mail.Log{Log: log.With("component", "mail"), Reveal: dev}, nil
	}
	s, err := mail.ParseURL(cfg.SMTPURL)
	if err != nil {
		return nil, err
	}
	log.Info("dashboard mails go through SMTP", "server", s.String())
	return s, nil
}
