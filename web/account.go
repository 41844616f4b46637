package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pushgate/pushgate/api/clientaddr"
	"github.com/pushgate/pushgate/tenants"
)

// Failed sign-ins allowed per window, from one address and for one account,
// before sign-in is refused for the rest of the window.
const (
	failureWindow      = 15 * time.Minute
	maxAddressFailures = 20
	maxAccountFailures = 5
	// reservationTimeout is how long a sign-up may take between holding its
	// email and creating its workspace before another sign-up may take the email.
	reservationTimeout = 10 * time.Minute
)

type signUpForm struct {
	Name, ContactEmail string
	// Next is the Rocket.Chat confirmation page to go on to, if the sign-up started there.
	Next  string
	Terms tenants.Terms
	Open  bool
}

// SignUpPage shows the sign-up form with this gateway's region and the current terms.
func (dash *Dashboard) SignUpPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		terms, err := dash.d.Tenants.CurrentTerms(r.Context())
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		dash.render(w, r, http.StatusOK, "signup", view{Title: "Create a workspace", Nav: "signup",
			Data: signUpForm{Terms: *terms, Open: dash.d.RegistrationOpen, Next: safeNext(r.URL.Query().Get("next"))}})
	})
}

// SignUp creates the workspace exactly as the registration API does, then
// its owner account, signs the owner in and shows the token once.
func (dash *Dashboard) SignUp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		terms, err := dash.d.Tenants.CurrentTerms(ctx)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		form := signUpForm{Name: r.PostFormValue("name"), ContactEmail: strings.TrimSpace(r.PostFormValue("contact_email")),
			Terms: *terms, Open: dash.d.RegistrationOpen, Next: safeNext(r.PostFormValue("next"))}
		v := view{Title: "Create a workspace", Nav: "signup", Data: form}
		if !dash.d.RegistrationOpen {
			dash.fail(w, r, "signup", v, tenants.Errorf(tenants.CodeForbidden, "sign-up is closed on this gateway; ask pushgate support for a workspace"))
			return
		}
		req := tenants.RegisterRequest{Name: form.Name, ContactEmail: form.ContactEmail}
		if err := req.Validate(); err != nil {
			dash.fail(w, r, "signup", v, err)
			return
		}
		hash, err := dash.d.Tenants.HashPassword("password", r.PostFormValue("password"))
		if err != nil {
			dash.fail(w, r, "signup", v, err)
			return
		}
		accepted := r.PostFormValue("accept_terms")
		if accepted == "" {
			dash.fail(w, r, "signup", v, tenants.FieldError("accept_terms", "accept the terms of service to create a workspace"))
			return
		}
		// Only sign-ups that passed every check count against the address.
		n, err := dash.d.Accounts.AddSignInAttempt(ctx, "signup:"+clientaddr.Key(clientaddr.Of(r)), dash.d.Now().UTC(), time.Hour)
		if err != nil {
			dash.fail(w, r, "signup", v, err)
			return
		}
		if n > dash.d.SignUpsPerHour {
			dash.fail(w, r, "signup", v, tenants.Errorf(tenants.CodeRateLimited,
				"Too many workspaces were created from your address in the last hour. Try again later."))
			return
		}
		// The email is held first, so that of concurrent sign-ups with it
		// exactly one creates a workspace.
		now := dash.d.Now().UTC()
		acct := &tenants.OwnerAccount{Email: req.ContactEmail, PasswordHash: hash, CreatedAt: now}
		if err := dash.d.Accounts.ReserveOwnerEmail(ctx, acct, now.Add(-reservationTimeout)); err != nil {
			if e := tenants.AsError(err); e.Field == "email" {
				e.Field = "contact_email"
			}
			dash.fail(w, r, "signup", v, err)
			return
		}
		req.AcceptTermsVersion = accepted
		reg, err := dash.d.Tenants.Register(ctx, req, "signup:"+strings.ToLower(req.ContactEmail), clientaddr.Of(r))
		if err == nil {
			acct.WorkspaceID = reg.Workspace.ID
			err = dash.d.Accounts.AttachOwnerAccount(ctx, acct.ID, reg.Workspace.ID)
			if err != nil {
				dash.d.Log.Error("workspace created without its owner account", "workspace", reg.Workspace.ID, "err", err)
			}
		}
		if err != nil {
			if rerr := dash.d.Accounts.ReleaseOwnerEmail(ctx, acct.ID); rerr != nil {
				dash.d.Log.Warn("releasing the email of a failed sign-up", "err", rerr)
			}
			if e := tenants.AsError(err); e.Field == "terms_version" {
				e.Field = "accept_terms"
			}
			dash.fail(w, r, "signup", v, err)
			return
		}
		r, err = dash.startSession(w, r, tenants.Session{Kind: tenants.SessionOwner, AccountID: acct.ID,
			WorkspaceID: acct.WorkspaceID, Email: acct.Email})
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		if form.Next != "" {
			// A Rocket.Chat server waits for its confirmation; it needs no workspace token.
			http.Redirect(w, r, form.Next, http.StatusSeeOther)
			return
		}
		dash.renderConnect(w, r, &reg.Workspace, reg.Token, "Your workspace is ready. Copy its token now: it is shown only this once.")
	})
}

type signInForm struct{ Email, Next string }

// SignInPage shows the sign-in form, for owners and operators alike; a
// signed-in visitor goes on to their own page.
func (dash *Dashboard) SignInPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next := safeNext(r.URL.Query().Get("next"))
		if sessionFrom(r.Context()) != nil {
			if next != "" {
				http.Redirect(w, r, next, http.StatusSeeOther)
				return
			}
			dash.Home().ServeHTTP(w, r)
			return
		}
		v := view{Title: "Sign in", Nav: "signin", Data: signInForm{Next: next}}
		if r.URL.Query().Get("reset") != "" {
			v.Notice = "Your new password is set, and every browser signed in to your account is signed out. Sign in with it."
		}
		dash.render(w, r, http.StatusOK, "signin", v)
	})
}

// SignIn checks an owner's or an operator's password, within the limits of
// failed attempts per address and per account.
func (dash *Dashboard) SignIn() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
		password := r.PostFormValue("password")
		next := safeNext(r.PostFormValue("next"))
		v := view{Title: "Sign in", Nav: "signin", Data: signInForm{Email: email, Next: next}}
		if email == "" || len(email) > tenants.MaxEmailLen {
			dash.fail(w, r, "signin", v, tenants.FieldError("email", "enter the email you signed up with"))
			return
		}
		if password == "" || len(password) > tenants.MaxPasswordBytes {
			dash.fail(w, r, "signin", v, tenants.FieldError("password", "enter your password"))
			return
		}
		// Attempts are counted before the password is checked, so that
		// concurrent guesses cannot all pass the limit.
		now := dash.d.Now().UTC()
		byAddr, byAccount := "addr:"+clientaddr.Key(clientaddr.Of(r)), "email:"+email
		for _, lim := range []struct {
			subject string
			max     int
		}{{byAddr, maxAddressFailures}, {byAccount, maxAccountFailures}} {
			n, err := dash.d.Accounts.AddSignInAttempt(ctx, lim.subject, now, failureWindow)
			if err != nil {
				dash.fail(w, r, "signin", v, err)
				return
			}
			if n > lim.max {
				if n == lim.max+1 {
					dash.d.Log.Warn("sign-in refused for a while: too many failed attempts",
						"limit", strings.SplitN(lim.subject, ":", 2)[0], "addr", clientaddr.Of(r), "window", failureWindow)
				}
				dash.fail(w, r, "signin", v, &tenants.Error{Code: tenants.CodeRateLimited,
					Message: fmt.Sprintf("Too many failed sign-ins. Wait up to %d minutes and try again.", int(failureWindow/time.Minute))})
				return
			}
		}
		s, err := dash.checkPassword(r, email, password)
		if err != nil {
			dash.fail(w, r, "signin", v, err)
			return
		}
		if err := dash.d.Accounts.ClearSignInAttempts(ctx, byAccount); err != nil {
			dash.d.Log.Warn("clearing sign-in attempts", "err", err)
		}
		if err := dash.d.Accounts.ForgetSignInAttempt(ctx, byAddr); err != nil {
			dash.d.Log.Warn("taking back a sign-in attempt", "err", err)
		}
		if _, err := dash.startSession(w, r, *s); err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		switch {
		case s.Kind == tenants.SessionOperator:
			next = "/operator"
		case next == "":
			next = "/overview"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// checkPassword finds the owner or operator account of email and checks its
// password, spending the same time whether or not the email exists.
func (dash *Dashboard) checkPassword(r *http.Request, email, password string) (*tenants.Session, error) {
	denied := &tenants.Error{Code: tenants.CodeUnauthorized, Message: "Wrong email or password."}
	acct, err := dash.d.Accounts.OwnerAccountByEmail(r.Context(), email)
	if err == nil {
		if !dash.d.Tenants.PasswordMatches(acct.PasswordHash, password) {
			return nil, denied
		}
		return &tenants.Session{Kind: tenants.SessionOwner, AccountID: acct.ID, WorkspaceID: acct.WorkspaceID, Email: acct.Email}, nil
	}
	if tenants.ErrorCode(err) != tenants.CodeNotFound {
		return nil, err
	}
	op, err := dash.d.Tenants.OperatorByEmail(r.Context(), email)
	if err != nil {
		if tenants.ErrorCode(err) != tenants.CodeNotFound {
			return nil, err
		}
		dash.d.Tenants.PasswordMatches("", password)
		return nil, denied
	}
	if !dash.d.Tenants.PasswordMatches(op.PasswordHash, password) {
		return nil, denied
	}
	return &tenants.Session{Kind: tenants.SessionOperator, AccountID: op.ID, Email: op.Email}, nil
}

// SignOut ends the session on the server, not only in the browser.
func (dash *Dashboard) SignOut() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := sessionFrom(r.Context()); s != nil {
			if err := dash.d.Accounts.DeleteSession(r.Context(), s.IDHash); err != nil {
				dash.fail(w, r, "", view{}, err)
				return
			}
		}
		http.SetCookie(w, dash.cookie(sessionCookie, "", -1))
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
	})
}

// owner runs page for a signed-in workspace owner with the workspace read
// afresh; anyone else is sent to sign in.
func (dash *Dashboard) owner(page func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionFrom(r.Context())
		if s == nil || s.Kind != tenants.SessionOwner {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		p, err := dash.d.Tenants.PrincipalOf(r.Context(), s.WorkspaceID)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		page(w, r, s, p)
	})
}
