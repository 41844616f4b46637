package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/web/mail"
)

// Invite mails another person a link that makes them an owner of the workspace.
func (dash *Dashboard) Invite() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		ctx := r.Context()
		v, err := dash.accountView(r, s, p)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		data := v.Data.(accountData)
		email := strings.ToLower(strings.TrimSpace(r.PostFormValue("invite_email")))
		data.InviteEmail = email
		v.Data = data
		if err := tenants.ValidEmail("invite_email", email); err != nil {
			dash.fail(w, r, "account", v, err)
			return
		}
		for _, o := range data.Owners {
			if o.Email == email {
				dash.fail(w, r, "account", v, tenants.FieldError("invite_email", "%s is already an owner of this workspace", email))
				return
			}
		}
		now := dash.d.Now().UTC()
		n, err := dash.d.Accounts.AddSignInAttempt(ctx, "invite:"+p.Workspace.ID, now, time.Hour)
		if err != nil {
			dash.fail(w, r, "account", v, err)
			return
		}
		if n > maxInvitesPerHour {
			dash.fail(w, r, "account", v, tenants.Errorf(tenants.CodeRateLimited,
				"This workspace sent %d invitations in the last hour. Try again later.", maxInvitesPerHour))
			return
		}
		audit := &tenants.AuditEntry{Actor: "owner:" + s.Email, Action: "owner.invite", Detail: email, CreatedAt: now}
		link, err := dash.newLink(ctx, tenants.OwnerLink{Kind: tenants.LinkInvite, WorkspaceID: p.Workspace.ID,
			Email: email, CreatedBy: "owner:" + s.Email}, tenants.InviteLinkTTL, audit)
		if err != nil {
			dash.fail(w, r, "account", v, err)
			return
		}
		if l, ok := dash.d.Mail.(mail.Log); ok && !l.Delivers() {
			// No mail server: the inviting owner passes the link on.
			if v, err = dash.accountView(r, s, p); err != nil {
				dash.fail(w, r, "", view{}, err)
				return
			}
			data := v.Data.(accountData)
			data.InviteLink, data.InvitedEmail = link, email
			v.Data = data
			dash.render(w, r, http.StatusOK, "account", v)
			return
		}
		dash.sendMail(mail.Message{To: email, Subject: "You are invited to run " + p.Workspace.Name + " on pushgate", Body: fmt.Sprintf(
			"%s invites you to become an owner of the pushgate workspace %q: you will see its usage and billing and manage its connection.\n\n"+
				"Accept here and choose your password (the link works once, for 7 days):\n%s\n\n"+
				"If you did not expect this, ignore this mail.\n", s.Email, p.Workspace.Name, link)})
		http.Redirect(w, r, "/account?invited=1", http.StatusSeeOther)
	})
}

// RevokeInvite ends a pending invitation of the owner's workspace.
func (dash *Dashboard) RevokeInvite() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			dash.fail(w, r, "", view{}, tenants.Errorf(tenants.CodeNotFound, "no such invitation"))
			return
		}
		audit := tenants.AuditEntry{Actor: "owner:" + s.Email, Action: "owner.invite_revoke", CreatedAt: dash.d.Now().UTC()}
		if err := dash.d.Accounts.RevokeInvite(r.Context(), p.Workspace.ID, id, dash.d.Now().UTC(), audit); err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		http.Redirect(w, r, "/account?revoked=1", http.StatusSeeOther)
	})
}

// RemoveOwner deletes another owner account of the workspace; the
// workspace always keeps one, and an owner leaves by being removed by another.
func (dash *Dashboard) RemoveOwner() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			dash.fail(w, r, "", view{}, tenants.Errorf(tenants.CodeNotFound, "no such owner"))
			return
		}
		if id == s.AccountID {
			v, verr := dash.accountView(r, s, p)
			if verr != nil {
				dash.fail(w, r, "", view{}, verr)
				return
			}
			dash.fail(w, r, "account", v, tenants.Errorf(tenants.CodeConflict, "You cannot remove yourself; another owner can."))
			return
		}
		if r.PostFormValue("confirm") != "yes" {
			// A removal signs a person out everywhere: it is asked once more.
			v, err := dash.accountView(r, s, p)
			if err != nil {
				dash.fail(w, r, "", view{}, err)
				return
			}
			data := v.Data.(accountData)
			for i := range data.Owners {
				if data.Owners[i].ID == id {
					data.ConfirmRemove = &data.Owners[i]
				}
			}
			if data.ConfirmRemove == nil {
				dash.fail(w, r, "", view{}, tenants.Errorf(tenants.CodeNotFound, "no such owner"))
				return
			}
			v.Data = data
			dash.render(w, r, http.StatusOK, "account", v)
			return
		}
		audit := tenants.AuditEntry{Actor: "owner:" + s.Email, Action: "owner.remove", CreatedAt: dash.d.Now().UTC()}
		if err := dash.d.Accounts.RemoveOwner(r.Context(), p.Workspace.ID, id, audit); err != nil {
			v, verr := dash.accountView(r, s, p)
			if verr != nil || tenants.ErrorCode(err) != tenants.CodeConflict {
				dash.fail(w, r, "", view{}, err)
				return
			}
			dash.fail(w, r, "account", v, err)
			return
		}
		http.Redirect(w, r, "/account?removed=1", http.StatusSeeOther)
	})
}
