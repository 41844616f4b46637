package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/redisquota"
)

// parseWithArgs parses flags that may stand before, between or after the
// positional arguments, and checks the number of positional arguments.
func parseWithArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != len(names) {
		want := "no arguments"
		if len(names) > 0 {
			want = strings.Join(names, " ")
		}
		return nil, usageError{fmt.Sprintf("%s takes %s, got %d argument(s)", fs.Name(), want, len(pos))}
	}
	return pos, nil
}

// operatorActor names the person running the CLI in the audit log.
func operatorActor(getenv func(string) string) string {
	if u := getenv("USER"); u != "" {
		return "operator:cli:" + u
	}
	return "operator:cli"
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdWorkspace(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	subs := map[string]func(context.Context, []string, func(string) string, io.Writer, io.Writer) error{
		"create": wsCreate, "list": wsList, "show": wsShow, "rotate-token": wsRotate,
		"suspend": wsSetStatus(tenants.StatusSuspended), "resume": wsSetStatus(tenants.StatusActive), "set-plan": wsSetPlan,
		"claim-link":    wsClaimLink,
		"cloud-clients": wsCloudClients,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		fmt.Fprintln(stderr, "usage: pushgate workspace create|list|show|rotate-token|suspend|resume|set-plan|claim-link|cloud-clients [flags] [--json]")
		if len(args) == 0 {
			return usageError{"workspace needs a subcommand"}
		}
		return usageError{fmt.Sprintf("unknown workspace subcommand %q", args[0])}
	}
	return subs[args[0]](ctx, args[1:], getenv, stdout, stderr)
}

// cliEnv is what every workspace subcommand shares: flags, config, the service.
type cliEnv struct {
	fs     *flag.FlagSet
	load   func() (config, error)
	asJSON *bool
	// issuesTokens: the command signs tokens, so it needs the token key.
	issuesTokens bool
}

func newCLI(name string, stderr io.Writer, getenv func(string) string) cliEnv {
	fs := newFlagSet(name, stderr)
	return cliEnv{fs: fs, load: configFlags(fs, getenv), asJSON: fs.Bool("json", false, "print machine-readable JSON")}
}

// start parses args (with the positional arguments names), then opens the
// configuration and the tenancy service; done releases them.
func (c cliEnv) start(ctx context.Context, stderr io.Writer, args []string, names ...string) ([]string, *tenants.Service, config, func(), error) {
	pos, err := parseWithArgs(c.fs, args, names...)
	if err != nil {
		return nil, nil, config{}, nil, err
	}
	if len(names) > 0 && names[0] == "ID" && !tenants.ValidWorkspaceID(pos[0]) {
		return nil, nil, config{}, nil, usageError{fmt.Sprintf("%q is not a workspace id (ws_ and 20 lowercase letters and digits); `pushgate workspace list` shows them", pos[0])}
	}
	svc, cfg, done, err := c.open(ctx, stderr)
	return pos, svc, cfg, done, err
}

// open loads the configuration and the tenancy service; close releases it.
func (c cliEnv) open(ctx context.Context, stderr io.Writer) (*tenants.Service, config, func(), error) {
	cfg, err := c.load()
	if err != nil {
		return nil, cfg, nil, err
	}
	if err := resolveTokenKey(&cfg, false); err != nil && c.issuesTokens {
		return nil, cfg, nil, err
	}
	log := newLogger(stderr, cfg.LogFormat, "warn")
	var limits tenants.LimitPublisher
	closeRedis := func() {}
	if cfg.RedisURL != "" {
		// Plan changes are published to the quota store so every replica
		// applies them on its next push.
		if rdb, err := openRedis(ctx, cfg.RedisURL); err != nil {
			log.Warn("Redis is unreachable: a plan change made now reaches the replicas within a second instead of on their next push", "err", err)
		} else {
			limits = redisquota.New(rdb, redisquota.Options{Log: log})
			closeRedis = func() { _ = rdb.Close() }
		}
	}
	db, svc, err := openTenancy(ctx, cfg, log, false, limits, nil)
	if err != nil {
		closeRedis()
		return nil, cfg, nil, err
	}
	return svc, cfg, func() { db.Close(); closeRedis() }, nil
}

func wsCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("workspace create", stderr, getenv)
	c.issuesTokens = true
	name := c.fs.String("name", "", "workspace name (required)")
	email := c.fs.String("email", "", "contact email (required)")
	serverID := c.fs.String("server-id", "", "bind to one Mattermost installation (its Diagnostic ID)")
	plan := c.fs.String("plan", "free", "free, pro or enterprise")
	limit := c.fs.Int64("limit", -1, "enterprise only: a monthly limit instead of unlimited")
	privacy := c.fs.String("privacy", "full", "full, or id_only to strip message content before Apple and Google")
	accept := c.fs.Bool("accept-terms", false, "record that the contact accepted the current terms (operators creating on a customer's signed order)")
	_, svc, _, done, err := c.start(ctx, stderr, args)
	if err != nil {
		return err
	}
	defer done()
	req := tenants.RegisterRequest{Name: *name, ContactEmail: *email, ServerID: *serverID,
		Plan: tenants.Plan(*plan), Privacy: tenants.Privacy(*privacy)}
	if *limit >= 0 {
		req.QuotaLimit = limit
	}
	if *accept {
		t, err := svc.CurrentTerms(ctx)
		if err != nil {
			return err
		}
		req.AcceptTermsVersion = t.Version
	}
	reg, err := svc.Register(ctx, req, operatorActor(getenv), "cli")
	if err != nil {
		return cliError(err)
	}
	claim, err := svc.IssueClaimLink(ctx, reg.Workspace.ID, operatorActor(getenv))
	if err != nil {
		return fmt.Errorf("workspace %s is created, but its claim link is not (run `pushgate workspace claim-link %s`): %w", reg.Workspace.ID, reg.Workspace.ID, err)
	}
	out, err := api.NewRegistrationJSON(ctx, svc, reg, claim)
	if err != nil {
		return err
	}
	if *c.asJSON {
		return printJSON(stdout, out)
	}
	urls := svc.PushURLs(reg.Token)
	fmt.Fprintf(stdout, "created workspace %s (%s, plan %s, region %s)\n\ntoken (shown once, store it now):\n  %s\n\n"+
		"Mattermost: System Console > Push Notification Server > Manually enter Push Notification Service location:\n  %s\n"+
		"Rocket.Chat: OVERWRITE_SETTING_Cloud_Url=%[7]s and Admin > Push > Gateway: %[7]s, then Administration > Registration\n"+
		"  (a client that sets its own header may send the token as its Bearer token instead)\n",
		reg.Workspace.ID, reg.Workspace.Name, reg.Workspace.Plan, reg.Workspace.Region, reg.Token, urls.Mattermost, urls.RocketChat)
	fmt.Fprintf(stdout, "\nclaim link (creates the dashboard owner account; works once, until %s):\n  %s\n", claim.ExpiresAt.Format(time.RFC3339), claim.URL)
	if reg.Consent == nil {
		fmt.Fprintln(stdout, "\nThe workspace sends nothing until its admin accepts the current terms (POST /api/v1/workspace/consent).")
	}
	return nil
}

// wsClaimLink issues a new claim link for a workspace without an owner account; earlier links stop working.
func wsClaimLink(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("workspace claim-link", stderr, getenv)
	pos, svc, _, done, err := c.start(ctx, stderr, args, "ID")
	if err != nil {
		return err
	}
	defer done()
	claim, err := svc.IssueClaimLink(ctx, pos[0], operatorActor(getenv))
	if err != nil {
		return cliError(err)
	}
	if *c.asJSON {
		return printJSON(stdout, map[string]any{"claim_url": claim.URL, "expires_at": claim.ExpiresAt})
	}
	fmt.Fprintf(stdout, "claim link of %s (works once, until %s; earlier ones no longer work):\n  %s\n", pos[0], claim.ExpiresAt.Format(time.RFC3339), claim.URL)
	return nil
}

// cliError makes a field error read naturally on the command line.
func cliError(err error) error {
	var e *tenants.Error
	if errors.As(err, &e) && e.Code != tenants.CodeInternal {
		return errors.New(e.Message)
	}
	return err
}

func wsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("workspace list", stderr, getenv)
	_, svc, cfg, done, err := c.start(ctx, stderr, args)
	if err != nil {
		return err
	}
	defer done()
	list, err := svc.Workspaces(ctx)
	if err != nil {
		return err
	}
	if *c.asJSON {
		out := make([]any, 0, len(list))
		for i := range list {
			out = append(out, api.NewWorkspaceJSON(&list[i], nil, nil, cfg.PublicURL))
		}
		return printJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPLAN\tSTATUS\tREGION\tCREATED")
	for _, w := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", w.ID, w.Name, w.Plan, w.Status, w.Region, w.CreatedAt.Format(time.DateOnly))
	}
	return tw.Flush()
}

func wsShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("workspace show", stderr, getenv)
	pos, svc, cfg, done, err := c.start(ctx, stderr, args, "ID")
	if err != nil {
		return err
	}
	defer done()
	ws, err := svc.Workspace(ctx, pos[0])
	if err != nil {
		return cliError(err)
	}
	consent, err := svc.LatestConsent(ctx, ws.ID)
	if err != nil {
		return err
	}
	st, err := svc.TermsState(ctx, &tenants.Principal{Workspace: *ws, Consent: consent})
	if err != nil {
		return err
	}
	urls := svc.PushURLs("")
	out := api.NewWorkspaceJSON(ws, &urls, &st, cfg.PublicURL)
	if *c.asJSON {
		return printJSON(stdout, withStripeIDs(out, ws.Billing))
	}
	limit := "unlimited"
	if out.MonthlyLimit != nil {
		limit = strconv.FormatInt(*out.MonthlyLimit, 10) + " a month"
	}
	fmt.Fprintf(stdout, "%s  %s\n  contact   %s\n  region    %s\n  plan      %s (%s)\n  status    %s\n  privacy   %s\n  server_id %s\n  terms     %s (accepted %q, current %q)\n  created   %s\n",
		ws.ID, ws.Name, ws.ContactEmail, ws.Region, ws.Plan, limit, ws.Status, ws.Privacy, orNone(ws.ServerID),
		st.Status, st.Accepted, st.Current.Version, ws.CreatedAt.Format(time.RFC3339))
	period := tenants.PeriodOf(time.Now())
	batches, err := svc.OverageBatches(ctx, ws.ID, period)
	if err != nil {
		return err
	}
	printBilling(stdout, ws)
	printOverage(stdout, period, batches)
	return nil
}

// printOverage adds this month's metered overage reports to `workspace show`.
func printOverage(w io.Writer, p tenants.Period, batches []tenants.OverageBatch) {
	if len(batches) == 0 {
		return
	}
	var reported, pending int64
	for _, b := range batches {
		if b.ReportedAt != nil {
			reported += b.Quantity
		} else {
			pending += b.Quantity
		}
	}
	fmt.Fprintf(w, "  overage   %s: %d pushes reported to Stripe in %d batches, %d waiting to be sent\n", p, reported, len(batches), pending)
}

// printBilling adds a workspace's Stripe subscription, grace and packages to `workspace show`.
func printBilling(w io.Writer, ws *tenants.Workspace) {
	b := ws.Billing
	switch {
	case b.SubscriptionID != "":
		end := ""
		if b.CurrentPeriodEnd != nil {
			end = ", period ends " + b.CurrentPeriodEnd.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  billing   %s subscription %s%s (customer %s, subscription %s)\n", orNone(string(b.Plan)), b.Status, end, b.CustomerID, b.SubscriptionID)
	case b.CustomerID != "":
		fmt.Fprintf(w, "  billing   no subscription (customer %s)\n", b.CustomerID)
	default:
		fmt.Fprintln(w, "  billing   none")
	}
	if b.GraceUntil != nil {
		state := "payment failed; the plan falls back to free then"
		if b.GraceEnded {
			state = "ended: the plan fell back to free"
		}
		fmt.Fprintf(w, "  grace     until %s (%s)\n", b.GraceUntil.Format(time.RFC3339), state)
	}
	if ws.PackagePushes > 0 {
		fmt.Fprintf(w, "  packages  %d pushes bought for %s\n", ws.PackagePushes, ws.PackagePeriod)
	}
}

// withStripeIDs is a workspace's JSON with the Stripe customer and
// subscription ids, which operators see and workspace admins do not.
func withStripeIDs(out any, b tenants.Billing) any {
	raw, err := json.Marshal(out)
	if err != nil {
		return out
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return out
	}
	if bj, ok := m["billing"].(map[string]any); ok {
		bj["customer_id"], bj["subscription_id"] = b.CustomerID, b.SubscriptionID
	}
	return m
}

func orNone(s string) string {
	if s == "" {
		return "(any)"
	}
	return s
}

func wsRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("workspace rotate-token", stderr, getenv)
	c.issuesTokens = true
	grace := c.fs.Duration("grace", 0, "keep the old token working this long (at most 24h); default: it stops at once")
	pos, svc, _, done, err := c.start(ctx, stderr, args, "ID")
	if err != nil {
		return err
	}
	defer done()
	token, err := svc.RotateToken(ctx, pos[0], operatorActor(getenv), *grace)
	if err != nil {
		return cliError(err)
	}
	urls := svc.PushURLs(token)
	if *c.asJSON {
		return printJSON(stdout, map[string]any{"id": pos[0], "token": token, "push_urls": urls,
			"old_token_valid_until": time.Now().UTC().Add(*grace)})
	}
	fmt.Fprintf(stdout, "new token for %s (shown once):\n  %s\nMattermost push URL: %s\n", pos[0], token, urls.Mattermost)
	if *grace > 0 {
		fmt.Fprintf(stdout, "the old token keeps working for %s\n", *grace)
	} else {
		fmt.Fprintln(stdout, "the old token no longer works (other replicas within the auth cache TTL)")
	}
	return nil
}

func wsSetStatus(status tenants.Status) func(context.Context, []string, func(string) string, io.Writer, io.Writer) error {
	verb := map[tenants.Status]string{tenants.StatusSuspended: "suspend", tenants.StatusActive: "resume"}[status]
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		c := newCLI("workspace "+verb, stderr, getenv)
		pos, svc, cfg, done, err := c.start(ctx, stderr, args, "ID")
		if err != nil {
			return err
		}
		defer done()
		ws, err := svc.Update(ctx, pos[0], operatorActor(getenv), "workspace."+verb, tenants.WorkspaceChange{Status: &status})
		if err != nil {
			return cliError(err)
		}
		if *c.asJSON {
			return printJSON(stdout, api.NewWorkspaceJSON(ws, nil, nil, cfg.PublicURL))
		}
		fmt.Fprintf(stdout, "workspace %s is now %s\n", ws.ID, ws.Status)
		return nil
	}
}

func wsSetPlan(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("workspace set-plan", stderr, getenv)
	limit := c.fs.Int64("limit", -1, "enterprise only: a monthly limit instead of unlimited")
	pos, svc, cfg, done, err := c.start(ctx, stderr, args, "ID", "PLAN")
	if err != nil {
		return err
	}
	defer done()
	plan := tenants.Plan(pos[1])
	change := tenants.WorkspaceChange{Plan: &plan}
	if *limit >= 0 {
		l := limit
		change.QuotaLimit = &l
	}
	ws, err := svc.Update(ctx, pos[0], operatorActor(getenv), "workspace.set_plan", change)
	if err != nil {
		return cliError(err)
	}
	if *c.asJSON {
		return printJSON(stdout, api.NewWorkspaceJSON(ws, nil, nil, cfg.PublicURL))
	}
	fmt.Fprintf(stdout, "workspace %s is now on plan %s\n", ws.ID, ws.Plan)
	return nil
}
