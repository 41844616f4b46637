package web

import (
	"net/http"
	"strings"

	"github.com/pushgate/pushgate/tenants"
)

// maxOperatorRows bounds one operator listing; a search narrows it.
const maxOperatorRows = 200

type operatorData struct {
	Query      string
	Workspaces []tenants.Workspace
	Total      int
	Truncated  bool
}

// Operator lists this region's workspaces for a signed-in operator, with a
// search over id, name and contact email.
func (dash *Dashboard) Operator() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionFrom(r.Context())
		if s == nil || s.Kind != tenants.SessionOperator {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		q := strings.TrimSpace(r.URL.Query().Get("q"))
		if len(q) > 254 {
			q = q[:254]
		}
		all, err := dash.d.Tenants.Workspaces(r.Context())
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		data := operatorData{Query: q}
		needle := strings.ToLower(q)
		for _, ws := range all {
			if needle != "" && !strings.Contains(strings.ToLower(ws.ID+" "+ws.Name+" "+ws.ContactEmail), needle) {
				continue
			}
			data.Total++
			if len(data.Workspaces) < maxOperatorRows {
				data.Workspaces = append(data.Workspaces, ws)
			}
		}
		data.Truncated = data.Total > len(data.Workspaces)
		dash.render(w, r, http.StatusOK, "operator", view{Title: "Workspaces", Nav: "operator", Data: data})
	})
}
