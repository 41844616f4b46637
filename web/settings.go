package web

import (
	"net/http"

	"github.com/pushgate/pushgate/tenants"
)

type accountData struct {
	Email     string
	AccountID int64
	Workspace tenants.Workspace
	Owners    []tenants.OwnerAccount
	Invites   []tenants.OwnerLink
	// InviteEmail is the address of an invitation form sent back with an error.
	InviteEmail string
	// ConfirmRemove is the owner whose removal awaits confirmation.
	ConfirmRemove *tenants.OwnerAccount
	// InviteLink is shown once when the gateway sends no mail, for the
	// owner to pass on themselves.
	InviteLink, InvitedEmail string
}

// accountView reads what the account page lists: the owners and the pending invitations.
func (dash *Dashboard) accountView(r *http.Request, s *tenants.Session, p *tenants.Principal) (view, error) {
	d := accountData{Email: s.Email, AccountID: s.AccountID, Workspace: p.Workspace}
	var err error
	if d.Owners, err = dash.d.Accounts.OwnerAccounts(r.Context(), p.Workspace.ID); err != nil {
		return view{}, err
	}
	if d.Invites, err = dash.d.Accounts.PendingInvites(r.Context(), p.Workspace.ID, dash.d.Now().UTC()); err != nil {
		return view{}, err
	}
	return view{Title: "Account", Nav: "account", Data: d}, nil
}

// accountNotices are the confirmations the account page shows after a redirect.
var accountNotices = map[string]string{
	"changed": "Your password is changed, and every other browser signed in to this account is signed out.",
	"invited": "The invitation is sent. It works once, for 7 days.",
	"revoked": "The invitation is revoked: its link no longer works.",
	"removed": "The owner is removed and signed out everywhere.",
}

// Account shows the owner's sign-in, the workspace's owners and
// invitations, and the password change form.
func (dash *Dashboard) Account() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		v, err := dash.accountView(r, s, p)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		for key, notice := range accountNotices {
			if r.URL.Query().Get(key) != "" {
				v.Notice = notice
			}
		}
		dash.render(w, r, http.StatusOK, "account", v)
	})
}

// ChangePassword checks the current password (counted like a sign-in, so a
// stolen session cannot guess it) and ends the account's other sessions.
func (dash *Dashboard) ChangePassword() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		ctx := r.Context()
		v, err := dash.accountView(r, s, p)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
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
