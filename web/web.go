// Package web is the dashboard: server-rendered pages for workspace owners
// (sign-up, sign-in, usage, connecting a chat server) and operators, mounted
// by api's routes file.
package web

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/web/mail"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// UsageHistory reads archived months of a workspace, newest first.
type UsageHistory interface {
	UsageHistory(ctx context.Context, workspaceID string, months int) ([]tenants.Usage, error)
}

// Deps is what the dashboard needs from the rest of the program.
type Deps struct {
	Tenants  *tenants.Service
	Accounts tenants.AccountStore
	Quotas   tenants.QuotaStore
	// History is nil when no months are archived (tests).
	History   UsageHistory
	Region    string
	PublicURL string
	// RegistrationOpen allows sign-up; closed, only existing owners sign in.
	RegistrationOpen bool
	// SignUpsPerHour bounds the sign-ups from one address (default 10).
	SignUpsPerHour int
	Log            *slog.Logger
	Now            func() time.Time
	// Mail sends the one-time links; nil writes them to the log.
	Mail mail.Sender
	// Billing sells plans and packages; nil when billing is off.
	Billing *billing.Service
	// Health is what the operator's region health page shows.
	Health Health
	// Deliveries reads the delivery log; nil when it is off.
	Deliveries DeliveryReader
	// QuotaEvents reads the 80%/100% events for the overview; nil shows none.
	QuotaEvents QuotaEventReader
	// Apps are the push app ids the delivery log filters by.
	Apps []string
}

// Dashboard serves the pages; its handler makers are routed by api.
type Dashboard struct {
	d      Deps
	pages  map[string]*template.Template
	secure bool // cookies are Secure when the public URL is https
	assets http.Handler
	mails  sync.WaitGroup // mails still being sent after their answer
	// testLimits bounds each workspace's test pushes.
	testLimits testPushLimits
}

// The pages, one template file each, all inside layout.html.
var pageNames = []string{"signup", "signin", "overview", "connect", "account", "operator", "error",
	"forgot", "reset", "accept", "billing",
	"operator_workspace", "operator_confirm", "operator_health",
	"deliveries", "testpush",
	"cloud", "cloudconfirm"}

// New parses every template once, so a broken template fails the start, not a request.
func New(d Deps) (*Dashboard, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Mail == nil {
		d.Mail = mail.Log{Log: d.Log}
	}
	if d.SignUpsPerHour == 0 {
		d.SignUpsPerHour = 10
	}
	dash := &Dashboard{d: d, pages: map[string]*template.Template{}, secure: strings.HasPrefix(d.PublicURL, "https://")}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", name, err)
		}
		dash.pages[name] = t
	}
	sub, err := fs.Sub(assetFiles, "assets")
	if err != nil {
		return nil, err
	}
	dash.assets = http.StripPrefix("/assets/", http.FileServer(http.FS(sub)))
	return dash, nil
}

var funcs = template.FuncMap{
	"thousands": thousands,
	"add":       func(a, b int) int { return a + b },
	"sub":       func(a, b int) int { return a - b },
	"date":      func(t time.Time) string { return t.UTC().Format("2 January 2006") },
	"datetime":  func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
	"list":      func(s ...string) []string { return s },
	"int64":     func(n int) int64 { return int64(n) },
	"regionName": func(r string) string {
		switch r {
		case "us":
			return "United States (us)"
		case "de":
			return "Germany (de)"
		}
		return r
	},
}

// thousands writes n with thin separators, as people read counts.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	Session *tenants.Session
	CSRF    string
	Region  string
	// Error is a message for the whole form; Fields holds one per field name.
	Error  string
	Fields map[string]string
	Notice string
	Data   any
}

// render writes page with status; a template error is logged and becomes a
// plain 500, since half a page is already gone.
func (dash *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	v.Session = sessionFrom(r.Context())
	v.Region = dash.d.Region
	if v.CSRF == "" {
		v.CSRF = csrfFrom(r.Context())
	}
	var b strings.Builder
	if err := dash.pages[page].Execute(&b, v); err != nil {
		dash.d.Log.Error("rendering a dashboard page", "page", page, "err", err)
		http.Error(w, "internal error while rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail renders err: a bad field as 400 (or its own status) on the form page,
// anything internal as a generic 500 page that is logged.
func (dash *Dashboard) fail(w http.ResponseWriter, r *http.Request, page string, v view, err error) {
	e := tenants.AsError(err)
	status := statusOf(e.Code)
	if status == http.StatusInternalServerError || page == "" {
		if status == http.StatusInternalServerError {
			dash.d.Log.Error("dashboard request failed", "path", r.URL.Path, "err", err)
			e = &tenants.Error{Message: "Something went wrong on our side. Try again in a moment."}
		}
		dash.render(w, r, status, "error", view{Title: "Error", Error: e.Message})
		return
	}
	v.Error = e.Message
	if e.Field != "" {
		if v.Fields == nil {
			v.Fields = map[string]string{}
		}
		// The message sits under its field, so the API's "field: " prefix goes.
		v.Fields[e.Field] = strings.TrimPrefix(e.Message, e.Field+": ")
		v.Error = "Please correct the field marked below."
	}
	dash.render(w, r, status, page, v)
}

func statusOf(c tenants.Code) int {
	switch c {
	case tenants.CodeInvalid:
		return http.StatusBadRequest
	case tenants.CodeUnauthorized:
		return http.StatusUnauthorized
	case tenants.CodeForbidden:
		return http.StatusForbidden
	case tenants.CodeNotFound:
		return http.StatusNotFound
	case tenants.CodeConflict:
		return http.StatusConflict
	case tenants.CodeRateLimited, tenants.CodeQuotaExceeded:
		return http.StatusTooManyRequests
	case tenants.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Assets serves the embedded stylesheet and script.
func (dash *Dashboard) Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		dash.assets.ServeHTTP(w, r)
	})
}

// Home sends a visitor to the page for who they are.
func (dash *Dashboard) Home() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s := sessionFrom(r.Context()); {
		case s == nil:
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
		case s.Kind == tenants.SessionOperator:
			http.Redirect(w, r, "/operator", http.StatusSeeOther)
		default:
			http.Redirect(w, r, "/overview", http.StatusSeeOther)
		}
	})
}
