package main

import (
	"log/slog"

	"github.com/pushgate/pushgate/web/mail"
)

// newMailer sends the dashboard's one-time links through smtp_url, or
// writes them to the log, saying so at start so nobody waits for a mail.
func newMailer(cfg config, log *slog.Logger) (mail.Sender, error) {
	if cfg.SMTPURL == "" {
		log.Info("no smtp_url is set: password reset and invitation links are written to this log instead of mailed")
		return mail.Log{Log: log.With("component", "mail")}, nil
	}
	s, err := mail.ParseURL(cfg.SMTPURL)
	if err != nil {
		return nil, err
	}
	log.Info("dashboard mails go through SMTP", "server", s.String())
	return s, nil
}
