package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pushgate/pushgate/api/clientaddr"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/web/mail"
)

// Limits of the password-reset form: a person asks a few times, a robot
// many. Past the email's limit the form answers as usual but sends nothing,
// so that the answer never tells whether the email has an account.
const (
	resetWindow         = time.Hour
	maxResetsPerAddress = 20
	maxResetsPerEmail   = 3
	maxInvitesPerHour   = 20
	mailTimeout         = 30 * time.Second
)

// sendMail delivers m in the background: the answer to the form must not
// wait for the mail server, nor take longer when the email has an account.
func (dash *Dashboard) sendMail(m mail.Message) {
	dash.mails.Add(1)
	go func() {
		defer dash.mails.Done()
		ctx, cancel := context.WithTimeout(context.Background(), mailTimeout)
		defer cancel()
		if err := dash.d.Mail.Send(ctx, m); err != nil {
			dash.d.Log.Error("sending a mail failed", "subject", m.Subject, "err", err)
		}
	}()
}

// WaitMails waits until the mails still being sent are sent, or ctx ends;
// the server calls it on shutdown, before the database closes.
func (dash *Dashboard) WaitMails(ctx context.Context) {
	done := make(chan struct{})
	go func() { dash.mails.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		dash.d.Log.Warn("shutting down with mails still being sent")
	}
}

// newLink stores a one-time link of kind and returns its URL.
func (dash *Dashboard) newLink(ctx context.Context, l tenants.OwnerLink, ttl time.Duration, audit *tenants.AuditEntry) (string, error) {
	token, hash, err := tenants.NewLinkToken()
	if err != nil {
		return "", err
	}
	now := dash.d.Now().UTC()
	l.TokenHash, l.CreatedAt, l.ExpiresAt = hash, now, now.Add(ttl)
	if err := dash.d.Accounts.CreateOwnerLink(ctx, &l, audit); err != nil {
		return "", err
	}
	return strings.TrimSuffix(dash.d.PublicURL, "/") + "/" + string(l.Kind) + "/" + token, nil
}

// linkFrom reads the live link of kind whose token is in the path; a
// malformed token is the same "link gone" answer as a used one.
func (dash *Dashboard) linkFrom(r *http.Request, kind tenants.LinkKind) (string, *tenants.OwnerLink, error) {
	token := r.PathValue("token")
	if !tenants.ValidLinkToken(token) {
		return "", nil, &tenants.Error{Code: tenants.CodeNotFound,
			Message: "This link is not complete. Open it again from the mail, or copy the whole address."}
	}
	hash := tenants.HashLinkToken(token)
	l, err := dash.d.Accounts.OwnerLink(r.Context(), kind, hash, dash.d.Now().UTC())
	return hash, l, err
}

type forgotForm struct {
	Email string
	Sent  bool
}

// ForgotPage shows the form that asks for a password-reset link.
func (dash *Dashboard) ForgotPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dash.render(w, r, http.StatusOK, "forgot", view{Title: "Reset your password", Nav: "signin", Data: forgotForm{}})
	})
}

// Forgot mails a reset link to an owner account, answering the same
// whether or not the email has one.
func (dash *Dashboard) Forgot() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
		v := view{Title: "Reset your password", Nav: "signin", Data: forgotForm{Email: email}}
		if err := tenants.ValidEmail("email", email); err != nil {
			dash.fail(w, r, "forgot", v, err)
			return
		}
		now := dash.d.Now().UTC()
		n, err := dash.d.Accounts.AddSignInAttempt(ctx, "reset-addr:"+clientaddr.Key(clientaddr.Of(r)), now, resetWindow)
		if err != nil {
			dash.fail(w, r, "forgot", v, err)
			return
		}
		if n > maxResetsPerAddress {
			dash.fail(w, r, "forgot", v, tenants.Errorf(tenants.CodeRateLimited,
				"Too many reset requests from your address. Wait up to an hour and try again."))
			return
		}
		n, err = dash.d.Accounts.AddSignInAttempt(ctx, "reset-email:"+email, now, resetWindow)
		if err != nil {
			dash.fail(w, r, "forgot", v, err)
			return
		}
		if n <= maxResetsPerEmail {
			dash.mails.Add(1)
			go func() {
				defer dash.mails.Done()
				dash.mailResetLink(email)
			}()
		} else if n == maxResetsPerEmail+1 {
			dash.d.Log.Warn("password reset mails to one email held back for a while", "window", resetWindow)
		}
		v.Data = forgotForm{Email: email, Sent: true}
		dash.render(w, r, http.StatusOK, "forgot", v)
	})
}

// mailResetLink runs after the answer: it finds the account, stores the
// link and sends it, so that the form answers as fast for unknown emails.
func (dash *Dashboard) mailResetLink(email string) {
	ctx, cancel := context.WithTimeout(context.Background(), mailTimeout)
	defer cancel()
	acct, err := dash.d.Accounts.OwnerAccountByEmail(ctx, email)
	if err != nil {
		if tenants.ErrorCode(err) != tenants.CodeNotFound {
			dash.d.Log.Error("looking up the account of a password reset", "err", err)
		}
		return
	}
	link, err := dash.newLink(ctx, tenants.OwnerLink{Kind: tenants.LinkReset, WorkspaceID: acct.WorkspaceID,
		AccountID: acct.ID, Email: acct.Email, CreatedBy: "owner:" + acct.Email}, tenants.ResetLinkTTL, nil)
	if err != nil {
		dash.d.Log.Error("creating a password reset link", "err", err)
		return
	}
	m := mail.Message{To: acct.Email, Subject: "Reset your pushgate password", Body: fmt.Sprintf(
		"Someone, hopefully you, asked to reset the password of your pushgate account %s.\n\n"+
			"Choose a new password here (the link works once, for an hour):\n%s\n\n"+
			"If it was not you, ignore this mail: your password stays as it is.\n", acct.Email, link)}
	if err := dash.d.Mail.Send(ctx, m); err != nil {
		dash.d.Log.Error("sending a password reset mail failed", "err", err)
	}
}

type resetForm struct{ Email string }

// ResetPage shows the new-password form of a live reset link.
func (dash *Dashboard) ResetPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, l, err := dash.linkFrom(r, tenants.LinkReset)
		if err != nil {
			dash.linkFailed(w, r, err, "/forgot", "ask for a new reset link")
			return
		}
		dash.render(w, r, http.StatusOK, "reset", view{Title: "Choose a new password", Nav: "signin", Data: resetForm{Email: l.Email}})
	})
}

// Reset sets the new password, ends every session of the account and the
// link, and sends the owner to sign in.
func (dash *Dashboard) Reset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash, l, err := dash.linkFrom(r, tenants.LinkReset)
		if err != nil {
			dash.linkFailed(w, r, err, "/forgot", "ask for a new reset link")
			return
		}
		v := view{Title: "Choose a new password", Nav: "signin", Data: resetForm{Email: l.Email}}
		pw, err := dash.d.Tenants.HashPassword("new_password", r.PostFormValue("new_password"))
		if err != nil {
			dash.fail(w, r, "reset", v, err)
			return
		}
		acct, err := dash.d.Accounts.ResetPassword(r.Context(), hash, dash.d.Now().UTC(), pw)
		if err != nil {
			dash.linkFailed(w, r, err, "/forgot", "ask for a new reset link")
			return
		}
		if err := dash.d.Accounts.ClearSignInAttempts(r.Context(), "email:"+acct.Email); err != nil {
			dash.d.Log.Warn("clearing sign-in attempts", "err", err)
		}
		// The browser's own session, if any, ended with the others.
		http.SetCookie(w, dash.cookie(sessionCookie, "", -1))
		http.Redirect(w, r, "/signin?reset=1", http.StatusSeeOther)
	})
}

// linkFailed shows why a link does not work and where to get another.
func (dash *Dashboard) linkFailed(w http.ResponseWriter, r *http.Request, err error, next, nextLabel string) {
	e := tenants.AsError(err)
	if e.Code == tenants.CodeInternal || e.Code == "" {
		dash.fail(w, r, "", view{}, err)
		return
	}
	dash.render(w, r, statusOf(e.Code), "error", view{Title: "This link does not work", Error: e.Message,
		Data: errorNext{URL: next, Label: nextLabel}})
}

// errorNext is the way on from an error page.
type errorNext struct{ URL, Label string }

type acceptForm struct {
	Kind      tenants.LinkKind
	Workspace string
	Email     string
	// Taken says the invited email has an account already, which owns one workspace only.
	Taken bool
}

// AcceptPage shows the form of a claim or invitation link: the owner
// account to create for the workspace.
func (dash *Dashboard) AcceptPage(kind tenants.LinkKind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, l, err := dash.linkFrom(r, kind)
		if err != nil {
			dash.linkFailed(w, r, err, "/signin", "sign in")
			return
		}
		f, err := dash.acceptForm(r.Context(), kind, l)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		dash.render(w, r, http.StatusOK, "accept", view{Title: acceptTitle(kind), Data: f})
	})
}

func acceptTitle(kind tenants.LinkKind) string {
	if kind == tenants.LinkClaim {
		return "Claim your workspace"
	}
	return "Join a workspace"
}

func (dash *Dashboard) acceptForm(ctx context.Context, kind tenants.LinkKind, l *tenants.OwnerLink) (acceptForm, error) {
	ws, err := dash.d.Tenants.Workspace(ctx, l.WorkspaceID)
	if err != nil {
		return acceptForm{}, err
	}
	f := acceptForm{Kind: kind, Workspace: ws.Name, Email: l.Email}
	if kind == tenants.LinkClaim {
		f.Email = ws.ContactEmail
	} else if _, err := dash.d.Accounts.OwnerAccountByEmail(ctx, l.Email); err == nil {
		f.Taken = true
	} else if tenants.ErrorCode(err) != tenants.CodeNotFound {
		return f, err
	}
	return f, nil
}

// Accept creates the owner account of a claim or invitation link and signs it in.
func (dash *Dashboard) Accept(kind tenants.LinkKind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		hash, l, err := dash.linkFrom(r, kind)
		if err != nil {
			dash.linkFailed(w, r, err, "/signin", "sign in")
			return
		}
		f, err := dash.acceptForm(ctx, kind, l)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		v := view{Title: acceptTitle(kind), Data: f}
		acct := tenants.OwnerAccount{Email: l.Email}
		if kind == tenants.LinkClaim {
			acct.Email = strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
			f.Email = acct.Email
			v.Data = f
			if err := tenants.ValidEmail("email", acct.Email); err != nil {
				dash.fail(w, r, "accept", v, err)
				return
			}
		}
		if acct.PasswordHash, err = dash.d.Tenants.HashPassword("password", r.PostFormValue("password")); err != nil {
			dash.fail(w, r, "accept", v, err)
			return
		}
		action := "workspace.claim"
		if kind == tenants.LinkInvite {
			action = "owner.invite_accept"
		}
		audit := tenants.AuditEntry{Actor: "owner:" + acct.Email, Action: action, CreatedAt: dash.d.Now().UTC()}
		if _, err := dash.d.Accounts.AcceptOwnerLink(ctx, kind, hash, dash.d.Now().UTC(), &acct, audit); err != nil {
			if e := tenants.AsError(err); e.Code == tenants.CodeConflict && kind == tenants.LinkInvite {
				f.Taken = true
				v.Data = f
			}
			dash.fail(w, r, "accept", v, err)
			return
		}
		if _, err := dash.startSession(w, r, tenants.Session{Kind: tenants.SessionOwner, AccountID: acct.ID,
			WorkspaceID: acct.WorkspaceID, Email: acct.Email}); err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		http.Redirect(w, r, "/overview", http.StatusSeeOther)
	})
}
