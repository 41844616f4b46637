package web

import (
	"net/http"

	"github.com/pushgate/pushgate/tenants"
)

type accountData struct {
	Email     string
	Workspace tenants.Workspace
}

// Account shows the owner's sign-in and the password change form.
func (dash *Dashboard) Account() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		v := view{Title: "Account", Nav: "account", Data: accountData{Email: s.Email, Workspace: p.Workspace}}
		if r.URL.Query().Get("changed") != "" {
			v.Notice = "Your password is changed, and every other browser signed in to this account is signed out."
		}
		dash.render(w, r, http.StatusOK, "account", v)
	})
}

// ChangePassword checks the current password (counted like a sign-in, so a
// stolen session cannot guess it) and ends the account's other sessions.
func (dash *Dashboard) ChangePassword() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		ctx := r.Context()
		v := view{Title: "Account", Nav: "account", Data: accountData{Email: s.Email, Workspace: p.Workspace}}
		n, err := dash.d.Accounts.AddSignInAttempt(ctx, "email:"+s.Email, dash.d.Now().UTC(), failureWindow)
		if err != nil {
			dash.fail(w, r, "account", v, err)
			return
		}
		if n > maxAccountFailures {
			dash.fail(w, r, "account", v, tenants.Errorf(tenants.CodeRateLimited, "Too many wrong passwords. Wait up to 15 minutes and try again."))
			return
		}
		acct, err := dash.d.Accounts.OwnerAccountByEmail(ctx, s.Email)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		current := r.PostFormValue("current_password")
		if len(current) > tenants.MaxPasswordBytes || !dash.d.Tenants.PasswordMatches(acct.PasswordHash, current) {
			dash.fail(w, r, "account", v, tenants.FieldError("current_password", "is not your current password"))
			return
		}
		hash, err := dash.d.Tenants.HashPassword("new_password", r.PostFormValue("new_password"))
		if err != nil {
			dash.fail(w, r, "account", v, err)
			return
		}
		if err := dash.d.Accounts.SetOwnerPassword(ctx, acct.ID, hash, s.IDHash); err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		if err := dash.d.Accounts.ClearSignInAttempts(ctx, "email:"+s.Email); err != nil {
			dash.d.Log.Warn("clearing sign-in attempts", "err", err)
		}
		http.Redirect(w, r, "/account?changed=1", http.StatusSeeOther)
	})
}
