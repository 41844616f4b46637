package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/pushgate/pushgate/api/clientaddr"
	"github.com/pushgate/pushgate/tenants"
)

// Rocket.Chat Cloud pages: the confirmation a Rocket.Chat server's
// registration waits for, and the owner's list of registered servers.

type cloudConfirmData struct {
	UserCode string
	Intent   *tenants.CloudIntent
	Terms    tenants.Terms
	// TermsAccepted says the workspace already accepted the current terms.
	TermsAccepted bool
	Workspace     tenants.Workspace
	// SignInURL and SignUpURL come back to this page after signing in.
	SignInURL, SignUpURL string
	Confirmed            bool
	// Accept keeps the terms box ticked when the form comes back with an error.
	Accept bool
}

// confirmPath is where a sign-in or sign-up may send the person on to: the
// confirmation page only, so `next` cannot become an open redirect.
const confirmPath = "/cloud/confirm"

// safeNext returns next when it is the confirmation page, else "".
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path != confirmPath || strings.ContainsAny(next, "\\") {
		return ""
	}
	return u.Path + "?" + url.Values{"user_code": {u.Query().Get("user_code")}}.Encode()
}

// CloudConfirmPage shows which Rocket.Chat server asks to register and lets
// a signed-in owner confirm it for their workspace; anyone else is asked to
// sign in or up first and comes back here.
func (dash *Dashboard) CloudConfirmPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := strings.TrimSpace(r.URL.Query().Get("user_code"))
		if len(code) > 32 {
			code = code[:32]
		}
		dash.renderConfirm(w, r, code, false, view{})
	})
}

func (dash *Dashboard) renderConfirm(w http.ResponseWriter, r *http.Request, code string, accepted bool, v view) {
	ctx := r.Context()
	back := confirmPath + "?" + url.Values{"user_code": {code}}.Encode()
	data := cloudConfirmData{UserCode: code,
		SignInURL: "/signin?" + url.Values{"next": {back}}.Encode(), SignUpURL: "/signup?" + url.Values{"next": {back}}.Encode()}
	v.Title, v.Nav = "Connect a Rocket.Chat server", "cloud"
	s := sessionFrom(ctx)
	status := http.StatusOK
	if s != nil && s.Kind == tenants.SessionOwner {
		p, err := dash.d.Tenants.PrincipalOf(ctx, s.WorkspaceID)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		data.Workspace = p.Workspace
		terms, err := dash.d.Tenants.CurrentTerms(ctx)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		data.Terms = *terms
		data.TermsAccepted = p.Consent != nil && p.Consent.TermsVersion == terms.Version
		if code != "" && v.Error == "" {
			in, err := dash.d.Tenants.CloudIntentForCode(ctx, code)
			if err != nil {
				e := tenants.AsError(err)
				if statusOf(e.Code) == http.StatusInternalServerError {
					dash.fail(w, r, "", view{}, err)
					return
				}
				v.Fields = map[string]string{"user_code": strings.TrimPrefix(e.Message, e.Field+": ")}
				if r.Method != http.MethodGet {
					status = statusOf(e.Code)
				}
			} else {
				data.Intent = in
			}
		}
	}
	data.Accept = accepted
	v.Data = data
	if v.Fields != nil && status == http.StatusOK && r.Method != http.MethodGet {
		status = http.StatusBadRequest
	}
	dash.render(w, r, status, "cloudconfirm", v)
}

// CloudConfirm binds the registration of the posted user code to the
// owner's workspace; the Rocket.Chat server's next poll collects it.
func (dash *Dashboard) CloudConfirm() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		code := strings.TrimSpace(r.PostFormValue("user_code"))
		if len(code) > 32 {
			code = code[:32]
		}
		accept := r.PostFormValue("accept_terms") != ""
		in, err := dash.d.Tenants.ConfirmCloudIntent(r.Context(), p, code, s.Email, clientaddr.Of(r), accept)
		if err != nil {
			e := tenants.AsError(err)
			if statusOf(e.Code) == http.StatusInternalServerError || e.Field == "" {
				dash.fail(w, r, "", view{}, err)
				return
			}
			v := view{Error: "Please correct the field marked below.", Fields: map[string]string{e.Field: strings.TrimPrefix(e.Message, e.Field+": ")}}
			if e.Field == "accept_terms" {
				// The server is still shown, so the person sees what they confirm.
				v.Error = e.Message
			}
			dash.renderConfirm(w, r, code, accept, v)
			return
		}
		v := view{Title: "Rocket.Chat server connected", Nav: "cloud",
			Notice: "Confirmed. " + in.Server.Address + " finishes its registration on its next poll, within seconds; Rocket.Chat then shows it as registered."}
		v.Data = cloudConfirmData{Confirmed: true, Intent: in, Workspace: p.Workspace}
		dash.render(w, r, http.StatusOK, "cloudconfirm", v)
	})
}

type cloudData struct {
	Workspace tenants.Workspace
	Clients   []tenants.CloudClient
	// Token is a manual registration token, shown once right after it is made.
	Token         string
	VerifyURL     string
	GatewayURL    string
	ManualName    string
	ActiveClients int
}

// Cloud lists the owner's registered Rocket.Chat servers, with revocation
// and the manual registration token.
func (dash *Dashboard) Cloud() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		notice := ""
		if r.URL.Query().Get("revoked") != "" {
			notice = "Revoked. That server can no longer send; on its next token request Rocket.Chat drops its registration."
		}
		dash.renderCloud(w, r, http.StatusOK, p, "", view{Notice: notice})
	})
}

func (dash *Dashboard) renderCloud(w http.ResponseWriter, r *http.Request, status int, p *tenants.Principal, token string, v view) {
	clients, err := dash.d.Tenants.CloudClients(r.Context(), p.Workspace.ID)
	if err != nil {
		dash.fail(w, r, "", view{}, err)
		return
	}
	d := cloudData{Workspace: p.Workspace, Clients: clients, Token: token, VerifyURL: dash.d.Tenants.CloudVerificationURL(""),
		GatewayURL: dash.d.Tenants.PushURLs("").RocketChat}
	for _, c := range clients {
		if c.RevokedAt == nil {
			d.ActiveClients++
		}
	}
	v.Title, v.Nav, v.Data = "Rocket.Chat Cloud", "cloud", d
	dash.render(w, r, status, "cloud", v)
}

// CloudManual makes a client and shows its registration token once.
func (dash *Dashboard) CloudManual() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		token, _, err := dash.d.Tenants.ManualCloudRegistration(r.Context(), p.Workspace.ID, r.PostFormValue("name"), "owner:"+s.Email)
		if err != nil {
			e := tenants.AsError(err)
			if statusOf(e.Code) == http.StatusInternalServerError || e.Field == "" {
				dash.fail(w, r, "", view{}, err)
				return
			}
			dash.renderCloud(w, r, statusOf(e.Code), p, "", view{Error: "Please correct the field marked below.",
				Fields: map[string]string{e.Field: strings.TrimPrefix(e.Message, e.Field+": ")}})
			return
		}
		dash.renderCloud(w, r, http.StatusOK, p, token, view{Notice: "Registration token created. Paste it into Rocket.Chat now: it is shown only this once."})
	})
}

// CloudRotate gives one of the owner's clients a new secret and shows the
// registration token that carries it once; the old secret works a day more.
func (dash *Dashboard) CloudRotate() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		id := r.PostFormValue("client_id")
		if len(id) > 64 {
			id = id[:64]
		}
		token, err := dash.d.Tenants.RotateCloudClientSecret(r.Context(), p.Workspace.ID, id, "owner:"+s.Email)
		if err != nil {
			e := tenants.AsError(err)
			if e.Code == tenants.CodeNotFound {
				dash.renderCloud(w, r, statusOf(e.Code), p, "", view{Error: e.Message})
				return
			}
			dash.fail(w, r, "", view{}, err)
			return
		}
		dash.renderCloud(w, r, http.StatusOK, p, token, view{Notice: "New secret issued for " + id +
			". The old one keeps working for 24 hours: in Rocket.Chat, cancel the registration and manually register with this token before then."})
	})
}

// CloudRevoke ends one of the owner's clients.
func (dash *Dashboard) CloudRevoke() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		id := r.PostFormValue("client_id")
		if len(id) > 64 {
			id = id[:64]
		}
		if err := dash.d.Tenants.RevokeCloudClient(r.Context(), p.Workspace.ID, id, "owner:"+s.Email); err != nil {
			e := tenants.AsError(err)
			if e.Code == tenants.CodeNotFound || e.Code == tenants.CodeConflict {
				dash.renderCloud(w, r, statusOf(e.Code), p, "", view{Error: e.Message})
				return
			}
			dash.fail(w, r, "", view{}, err)
			return
		}
		http.Redirect(w, r, "/cloud?revoked=1", http.StatusSeeOther)
	})
}
