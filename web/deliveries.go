package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// DeliveryReader reads pages of a workspace's delivery log.
type DeliveryReader interface {
	Deliveries(ctx context.Context, q tenants.DeliveryQuery) (tenants.DeliveryPage, error)
}

// deliveriesPerPage is the delivery log's page size.
const deliveriesPerPage = 50

type deliveriesData struct {
	// Off says this gateway keeps no delivery log.
	Off     bool
	Rows    []deliveryRow
	Results []option
	Apps    []option
	// Result and App are the filters in use.
	Result, App string
	Filtered    bool
	// NewerURL, OlderURL and NewestURL page; empty where there is nothing.
	NewerURL, OlderURL, NewestURL string
}

type option struct {
	Value, Label string
	Selected     bool
}

type deliveryRow struct {
	At       time.Time
	Protocol string
	Ref      string
	App      string
	Result   string
	Label    string
	Class    string
	Reason   string
	Token    string
	Dead     bool
}

// resultWords names each result for people, with its row style.
var resultWords = map[tenants.DeliveryResult]struct{ label, class string }{
	tenants.DeliveryDelivered:  {"Delivered", "ok"},
	tenants.DeliveryDeadToken:  {"Dead token", "bad"},
	tenants.DeliveryFailed:     {"Failed", "bad"},
	tenants.DeliveryRetryLater: {"Provider unavailable", "warn"},
	tenants.DeliveryRefused:    {"Refused by pushgate", "warn"},
	tenants.DeliveryDuplicate:  {"Duplicate, not resent", "muted"},
}

var protocolWords = map[string]string{
	tenants.ProtocolMattermost: "Mattermost",
	tenants.ProtocolRocketChat: "Rocket.Chat",
	tenants.ProtocolTest:       "Test push",
}

// Deliveries shows the last 7 days of the workspace's delivery log, newest
// first, filtered by result and app, paged by keyset.
func (dash *Dashboard) Deliveries() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		v := view{Title: "Delivery log", Nav: "deliveries"}
		data := deliveriesData{}
		if dash.d.Deliveries == nil {
			data.Off = true
			v.Data = data
			dash.render(w, r, http.StatusOK, "deliveries", v)
			return
		}
		q, fields := parseDeliveryQuery(r.URL.Query())
		q.WorkspaceID = p.Workspace.ID
		data.Result, data.App = r.URL.Query().Get("result"), q.App
		data.Filtered = q.Result != 0 || q.App != ""
		data.Results = []option{{Value: "", Label: "Any result", Selected: q.Result == 0}}
		for _, res := range tenants.DeliveryResults() {
			data.Results = append(data.Results, option{Value: res.String(), Label: resultWords[res].label, Selected: res == q.Result})
		}
		data.Apps = []option{{Value: "", Label: "Any app", Selected: q.App == ""}}
		known := false
		for _, a := range dash.d.Apps {
			data.Apps = append(data.Apps, option{Value: a, Label: a, Selected: a == q.App})
			known = known || a == q.App
		}
		if q.App != "" && !known { // an app this gateway no longer serves still filters
			data.Apps = append(data.Apps, option{Value: q.App, Label: q.App, Selected: true})
		}
		if len(fields) > 0 {
			v.Error, v.Fields, v.Data = "Please correct the filter marked below.", fields, data
			dash.render(w, r, http.StatusBadRequest, "deliveries", v)
			return
		}
		page, err := dash.d.Deliveries.Deliveries(r.Context(), q)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		for _, d := range page.Entries {
			words := resultWords[d.Result]
			row := deliveryRow{At: d.At, Protocol: protocolWords[d.Protocol], Ref: d.Ref, App: d.App, Result: d.Result.String(),
				Label: words.label, Class: words.class, Reason: d.Reason, Dead: d.Result == tenants.DeliveryDeadToken}
			if d.TokenPrefix != "" {
				row.Token = d.TokenPrefix + "…"
			}
			data.Rows = append(data.Rows, row)
		}
		filters := url.Values{}
		if q.Result != 0 {
			filters.Set("result", q.Result.String())
		}
		if q.App != "" {
			filters.Set("app", q.App)
		}
		link := func(key string, d tenants.Delivery) string {
			u := url.Values{}
			for k, v := range filters {
				u[k] = v
			}
			u.Set(key, strconv.FormatInt(d.At.UnixMicro(), 10)+"-"+strconv.FormatInt(d.ID, 10))
			return "/deliveries?" + u.Encode()
		}
		if n := len(page.Entries); n > 0 {
			if page.Newer {
				data.NewerURL = link("after", page.Entries[0])
			}
			if page.Older {
				data.OlderURL = link("before", page.Entries[n-1])
			}
		}
		if q.Before != nil || q.After != nil {
			data.NewestURL = "/deliveries"
			if len(filters) > 0 {
				data.NewestURL += "?" + filters.Encode()
			}
		}
		v.Data = data
		dash.render(w, r, http.StatusOK, "deliveries", v)
	})
}

// parseDeliveryQuery reads the page's filters and cursor; fields holds an
// error per parameter that is not valid.
func parseDeliveryQuery(params url.Values) (tenants.DeliveryQuery, map[string]string) {
	q := tenants.DeliveryQuery{Limit: deliveriesPerPage}
	fields := map[string]string{}
	if v := params.Get("result"); v != "" {
		res, ok := tenants.ParseDeliveryResult(v)
		if !ok {
			fields["result"] = "Pick one of the listed results."
		}
		q.Result = res
	}
	if v := params.Get("app"); v != "" {
		if len(v) > tenants.DeliveryAppMax || strings.ContainsFunc(v, notAppIDRune) {
			fields["app"] = "Pick one of the listed apps."
		} else {
			q.App = v
		}
	}
	for _, key := range []string{"before", "after"} {
		v := params.Get(key)
		if v == "" {
			continue
		}
		c, ok := parseCursor(v)
		if !ok {
			fields["page"] = "This page link is not valid; start again from the newest entries."
			continue
		}
		if key == "before" {
			q.Before = c
		} else {
			q.After = c
		}
	}
	if q.Before != nil && q.After != nil {
		fields["page"] = "This page link is not valid; start again from the newest entries."
		q.After = nil
	}
	return q, fields
}

// parseCursor reads "<unix microseconds>-<id>".
func parseCursor(v string) (*tenants.DeliveryCursor, bool) {
	at, id, ok := strings.Cut(v, "-")
	if !ok {
		return nil, false
	}
	us, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || us < 0 || n < 0 {
		return nil, false
	}
	return &tenants.DeliveryCursor{At: time.UnixMicro(us).UTC(), ID: n}, true
}

// notAppIDRune is true for a character no app id has.
func notAppIDRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
}
