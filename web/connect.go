package web

import (
	"net/http"
	"strings"

	"github.com/pushgate/pushgate/tenants"
)

type connectData struct {
	Workspace tenants.Workspace
	// Token is set only right after sign-up or a rotation: it is shown once.
	Token string
	URLs  tenants.PushURLs
	// ServerID and Privacy are the settings form's values.
	ServerID string
	Privacy  tenants.Privacy
}

// Connect shows how to point Mattermost and Rocket.Chat at this gateway,
// the token rotation and the workspace's own settings.
func (dash *Dashboard) Connect() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		notice := ""
		if r.URL.Query().Get("saved") != "" {
			notice = "Settings saved."
		}
		dash.renderConnect(w, r, &p.Workspace, "", notice)
	})
}

func (dash *Dashboard) renderConnect(w http.ResponseWriter, r *http.Request, ws *tenants.Workspace, token, notice string) {
	dash.renderConnectStatus(w, r, http.StatusOK, ws, token, view{Notice: notice}, ws.ServerID, ws.Privacy)
}

func (dash *Dashboard) renderConnectStatus(w http.ResponseWriter, r *http.Request, status int, ws *tenants.Workspace, token string, v view, serverID string, privacy tenants.Privacy) {
	v.Title, v.Nav = "Connect your chat server", "connect"
	v.Data = connectData{Workspace: *ws, Token: token, URLs: dash.d.Tenants.PushURLs(token), ServerID: serverID, Privacy: privacy}
	dash.render(w, r, status, "connect", v)
}

// RotateToken issues a new workspace token, shown once; the old one stops at once.
func (dash *Dashboard) RotateToken() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		token, err := dash.d.Tenants.RotateToken(r.Context(), p.Workspace.ID, "owner:"+s.Email, 0)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		dash.renderConnect(w, r, &p.Workspace, token,
			"A new token is issued and the old one no longer works. Copy it now into your chat server: it is shown only this once.")
	})
}

// UpdateSettings changes the workspace's privacy policy and bound server_id.
func (dash *Dashboard) UpdateSettings() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		privacy := tenants.Privacy(r.PostFormValue("privacy"))
		serverID := strings.TrimSpace(r.PostFormValue("server_id"))
		_, err := dash.d.Tenants.UpdateOwn(r.Context(), p, tenants.WorkspaceChange{Privacy: &privacy, ServerID: &serverID})
		if err != nil {
			e := tenants.AsError(err)
			if statusOf(e.Code) == http.StatusInternalServerError {
				dash.fail(w, r, "", view{}, err)
				return
			}
			v := view{Error: e.Message, Fields: map[string]string{}}
			if e.Field != "" {
				v.Fields[e.Field] = strings.TrimPrefix(e.Message, e.Field+": ")
				v.Error = "Please correct the field marked below."
			}
			dash.renderConnectStatus(w, r, statusOf(e.Code), &p.Workspace, "", v, serverID, privacy)
			return
		}
		http.Redirect(w, r, "/connect?saved=1", http.StatusSeeOther)
	})
}
