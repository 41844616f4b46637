package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pushgate/pushgate/tenants"
)

// ownerLister lists a workspace's owner accounts (the SQL account store does).
type ownerLister interface {
	OwnersOf(ctx context.Context, workspaceID string) ([]tenants.OwnerAccount, error)
}

// opAuditEntries is how much of the audit log the workspace page shows.
const opAuditEntries = 50

type opWorkspaceData struct {
	Workspace   tenants.Workspace
	PeriodLabel string
	ResetsAt    time.Time
	Used        int64
	Limit       int64
	Unlimited   bool
	Percent     int64
	BarWidth    int64
	Over, Near  bool
	History     []monthRow
	Terms       tenants.TermsState
	Consents    []tenants.Consent
	Audit       []tenants.AuditEntry
	Owners      []tenants.OwnerAccount
	// NewToken is a just-rotated token, shown this once.
	NewToken  string
	Plans     []tenants.Plan
	MaxGrant  int64
	GraceMax  time.Duration
	Suspended bool
}

// workspaceFromURL reads the {id} of an operator page; a malformed id is 404.
func workspaceFromURL(r *http.Request) (string, error) {
	id := chi.URLParam(r, "id")
	if !tenants.ValidWorkspaceID(id) {
		return "", tenants.Errorf(tenants.CodeNotFound, "there is no workspace %q in this region", trimmed(id, 40))
	}
	return id, nil
}

// OperatorWorkspace shows one workspace to an operator: usage, terms and
// consent history, owners, audit log, and the actions.
func (dash *Dashboard) OperatorWorkspace() http.Handler {
	return dash.operator(func(w http.ResponseWriter, r *http.Request, _ *tenants.Session) {
		id, err := workspaceFromURL(r)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		v := view{Title: "Workspace", Nav: "operator"}
		switch r.URL.Query().Get("done") {
		case "suspend":
			v.Notice = "The workspace is suspended: its pushes are refused from now on."
		case "resume":
			v.Notice = "The workspace is resumed and may send again."
		case "plan":
			v.Notice = "The plan and limit are changed; every replica applies them to the next push."
		case "pushes":
			v.Notice = "The pushes are added to this month's limit."
		}
		dash.renderOpWorkspace(w, r, id, http.StatusOK, v, "")
	})
}

// renderOpWorkspace renders the workspace page with status and v's messages.
func (dash *Dashboard) renderOpWorkspace(w http.ResponseWriter, r *http.Request, id string, status int, v view, newToken string) {
	ctx := r.Context()
	p, err := dash.d.Tenants.PrincipalOf(ctx, id)
	if err != nil {
		dash.fail(w, r, "", view{}, err)
		return
	}
	d, err := dash.opWorkspaceData(ctx, p)
	if err != nil {
		dash.fail(w, r, "", view{}, err)
		return
	}
	d.NewToken = newToken
	v.Title, v.Nav, v.Data = p.Workspace.Name, "operator", d
	dash.render(w, r, status, "operator_workspace", v)
}

func (dash *Dashboard) opWorkspaceData(ctx context.Context, p *tenants.Principal) (*opWorkspaceData, error) {
	ws := p.Workspace
	now := dash.d.Now().UTC()
	period := tenants.PeriodOf(now)
	u, err := dash.d.Quotas.Usage(ctx, ws.ID, period)
	if err != nil {
		return nil, err
	}
	d := &opWorkspaceData{Workspace: ws, PeriodLabel: period.Start().Format("January 2006"), ResetsAt: period.End(),
		Used: u.Used, Limit: ws.LimitIn(period), Plans: allPlans, MaxGrant: tenants.MaxGrantedPushes,
		Suspended: ws.Status == tenants.StatusSuspended}
	d.Unlimited = d.Limit == tenants.Unlimited
	if !d.Unlimited {
		d.Percent = min(u.Used*100/max(d.Limit, 1), 100)
		d.BarWidth = min(u.Used*1000/max(d.Limit, 1), 1000)
		if u.Used > 0 {
			d.BarWidth = max(d.BarWidth, 6)
		}
		d.Over = u.Used >= d.Limit
		d.Near = !d.Over && d.Percent >= 80
	}
	if d.History, err = dash.twelveMonths(ctx, ws.ID, period, u); err != nil {
		return nil, err
	}
	if d.Terms, err = dash.d.Tenants.TermsState(ctx, p); err != nil {
		return nil, err
	}
	if d.Consents, err = dash.d.Tenants.Consents(ctx, ws.ID); err != nil {
		return nil, err
	}
	if d.Audit, err = dash.d.Tenants.AuditLog(ctx, ws.ID, opAuditEntries); err != nil {
		return nil, err
	}
	if ol, ok := dash.d.Accounts.(ownerLister); ok {
		if d.Owners, err = ol.OwnersOf(ctx, ws.ID); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// opAction is one operator action on a workspace, read from its form.
type opAction struct {
	Name     string // the path's last segment
	Button   string // what the confirm button says
	Question string
	Effect   string
	Danger   bool
	// Hidden are the form's fields, posted again with the confirmation.
	Hidden map[string]string
	run    func(ctx context.Context, by tenants.Actor) (token string, err error)
}

// Operator actions and their form fields.
const (
	ActionSuspend = "suspend"
	ActionResume  = "resume"
	ActionPlan    = "plan"
	ActionToken   = "token"
	ActionPushes  = "pushes"
)

// readOpAction checks an action's form; a bad field is a FieldError.
func (dash *Dashboard) readOpAction(name string, ws *tenants.Workspace, r *http.Request) (*opAction, error) {
	svc := dash.d.Tenants
	a := &opAction{Name: name, Hidden: map[string]string{}}
	switch name {
	case ActionSuspend, ActionResume:
		st := tenants.StatusSuspended
		a.Button, a.Question, a.Danger = "Yes, suspend it", "Suspend "+ws.Name+"?", true
		a.Effect = "Every push of this workspace is refused with 403 from the next request on, on every replica, until it is resumed. Its owners can still sign in and read their usage."
		if name == ActionResume {
			st = tenants.StatusActive
			a.Button, a.Question, a.Danger = "Yes, resume it", "Resume "+ws.Name+"?", false
			a.Effect = "The workspace may send again from the next push on."
		}
		a.run = func(ctx context.Context, by tenants.Actor) (string, error) {
			_, err := svc.UpdateBy(ctx, ws.ID, by, "workspace."+name, tenants.WorkspaceChange{Status: &st})
			return "", err
		}
	case ActionPlan:
		plan := tenants.Plan(r.PostFormValue("plan"))
		if !plan.Valid() {
			return nil, tenants.FieldError("plan", "choose free, pro or enterprise")
		}
		var limit *int64
		if s := strings.TrimSpace(r.PostFormValue("limit")); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return nil, tenants.FieldError("limit", "must be a whole number of pushes a month, or empty for the plan's")
			}
			if plan != tenants.PlanEnterprise {
				return nil, tenants.FieldError("limit", "a custom limit is only for the enterprise plan; %s has %s a month", plan, thousands(tenants.PlanLimit(plan, nil)))
			}
			limit = &n
			a.Hidden["limit"] = s
		}
		a.Hidden["plan"] = string(plan)
		a.Button, a.Question = "Yes, change the plan", "Move "+ws.Name+" to "+string(plan)+"?"
		if l := tenants.PlanLimit(plan, limit); l == tenants.Unlimited {
			a.Effect = "The workspace's monthly limit becomes unlimited."
		} else {
			a.Effect = "The workspace's monthly limit becomes " + thousands(l) + " pushes (plus pushes added this month). It applies to the next push on every replica."
		}
		if ws.Billing.SubscriptionID != "" {
			a.Effect += " The workspace has a Stripe subscription: its next billing event may set the plan again."
		}
		a.run = func(ctx context.Context, by tenants.Actor) (string, error) {
			_, err := svc.UpdateBy(ctx, ws.ID, by, "workspace.set_plan", tenants.WorkspaceChange{Plan: &plan, QuotaLimit: &limit})
			return "", err
		}
	case ActionToken:
		minutes, err := strconv.Atoi(r.PostFormValue("grace_minutes"))
		if err != nil || minutes < 0 || minutes > 24*60 {
			return nil, tenants.FieldError("grace_minutes", "choose how long the old token keeps working")
		}
		grace := time.Duration(minutes) * time.Minute
		a.Hidden["grace_minutes"] = strconv.Itoa(minutes)
		a.Button, a.Question, a.Danger = "Yes, issue a new token", "Rotate the token of "+ws.Name+"?", true
		a.Effect = "A new token is shown once on the next page. The old token stops working at once: the workspace's chat server sends nothing until its admin pastes the new push URL."
		if grace > 0 {
			a.Effect = "A new token is shown once on the next page. The old token keeps working for " + grace.String() + ", time for the workspace's admin to paste the new push URL."
		}
		a.run = func(ctx context.Context, by tenants.Actor) (string, error) {
			return svc.RotateTokenBy(ctx, ws.ID, by, grace)
		}
	case ActionPushes:
		s := strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("pushes"), ",", ""))
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > tenants.MaxGrantedPushes {
			return nil, tenants.FieldError("pushes", "must be a whole number between 1 and %s", thousands(tenants.MaxGrantedPushes))
		}
		if tenants.PlanLimit(ws.Plan, ws.QuotaLimit) == tenants.Unlimited {
			return nil, tenants.FieldError("pushes", "this workspace has no monthly limit, so added pushes would change nothing")
		}
		note := r.PostFormValue("note")
		if len(note) > 200 {
			return nil, tenants.FieldError("note", "at most 200 characters")
		}
		a.Hidden["pushes"], a.Hidden["note"] = strconv.FormatInt(n, 10), note
		period := tenants.PeriodOf(dash.d.Now())
		a.Button, a.Question = "Yes, add them", fmt.Sprintf("Add %s pushes to %s?", thousands(n), ws.Name)
		a.Effect = fmt.Sprintf("The limit of %s rises from %s to %s, for this month only; it resets with the quota on %s.",
			period.Start().Format("January 2006"), thousands(ws.LimitIn(period)), thousands(ws.LimitIn(period)+n), period.End().Format("2 January 2006"))
		a.run = func(ctx context.Context, by tenants.Actor) (string, error) {
			_, err := svc.GrantPushes(ctx, ws.ID, by, n, note)
			return "", err
		}
	default:
		return nil, tenants.Errorf(tenants.CodeNotFound, "there is no operator action %q", name)
	}
	return a, nil
}

type opConfirmData struct {
	Workspace tenants.Workspace
	Action    *opAction
}

// OperatorAction serves the form of one action: without confirm=yes it
// shows what will happen and asks; with it, it acts and writes the audit
// log with the operator's email.
func (dash *Dashboard) OperatorAction(name string) http.Handler {
	return dash.operator(func(w http.ResponseWriter, r *http.Request, s *tenants.Session) {
		ctx := r.Context()
		id, err := workspaceFromURL(r)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		ws, err := dash.d.Tenants.Workspace(ctx, id)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		a, err := dash.readOpAction(name, ws, r)
		if err != nil {
			e := tenants.AsError(err)
			dash.renderOpWorkspace(w, r, id, statusOf(e.Code), view{Error: "Please correct the field marked below.",
				Fields: map[string]string{e.Field: e.Message}}, "")
			return
		}
		if r.PostFormValue("confirm") != "yes" {
			dash.render(w, r, http.StatusOK, "operator_confirm", view{Title: "Confirm", Nav: "operator",
				Data: opConfirmData{Workspace: *ws, Action: a}})
			return
		}
		token, err := a.run(ctx, tenants.OperatorActor(s.Email, "operator"))
		if err != nil {
			e := tenants.AsError(err)
			if e.Code == tenants.CodeInternal || e.Code == tenants.CodeNotFound {
				dash.fail(w, r, "", view{}, err)
				return
			}
			v := view{Error: e.Message}
			if e.Field != "" {
				v.Error, v.Fields = "Please correct the field marked below.", map[string]string{e.Field: e.Message}
			}
			dash.renderOpWorkspace(w, r, id, statusOf(e.Code), v, "")
			return
		}
		if name == ActionToken {
			// The token is shown on this answer only, never behind a redirect.
			dash.renderOpWorkspace(w, r, id, http.StatusOK, view{Notice: "A new token is issued. Copy it now and hand it to the workspace's admin: it is shown only this once."}, token)
			return
		}
		http.Redirect(w, r, "/operator/workspaces/"+id+"?done="+name, http.StatusSeeOther)
	})
}
