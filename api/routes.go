package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/web"
)

// addRoutes is the map of the HTTP surface: every path, its method and the
// middleware around it.
func addRoutes(d Deps, m *httpMetrics, ps *pusher) http.Handler {
	r := chi.NewRouter()
	if d.TrustProxy {
		r.Use(trustForwardedFor)
	}
	r.Use(recoverPanics(d.Log), newRequestIDs().middleware, m.instrument, limitBody(maxBodyBytes))

	r.Method(http.MethodGet, "/healthz", handleHealthz())
	operator := d.Operator
	if operator == nil && d.Tenants != nil {
		operator = operatorKeyCheck(d.Tenants)
	}
	r.Method(http.MethodGet, "/readyz", handleReadyz(d.Ready, readyzDetail(operator), d.Log))
	r.Method(http.MethodGet, "/version", handleVersion(d.Version))
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}))

	// Every route that takes a workspace token limits failed authentications
	// per client address, answering in its protocol's shape.
	authLimit := newAuthFailureLimit(d.AuthFailuresPerMinute, d.Tenants.Vouch, d.Now, d.Registry)
	mmLimit := authLimit.middleware(mmToken, func(w http.ResponseWriter, r *http.Request, err error) { ps.writeMMError(w, r, err, time.Now()) })
	rcLimit := authLimit.middleware(bearerToken, func(w http.ResponseWriter, r *http.Request, err error) { ps.writeRCError(w, r, err, time.Now()) })
	apiLimit := authLimit.middleware(bearerToken, func(w http.ResponseWriter, r *http.Request, err error) { writeAPIError(w, r, d.Log, err) })

	// Push protocols. Mattermost servers carry the token in the path (they
	// append /api/v1/send_push to the configured URL and send no credentials).
	r.With(mmLimit).Method(http.MethodPost, "/mm/{token}/api/v1/send_push", handleMattermostPush(ps))
	r.With(mmLimit).Method(http.MethodPost, "/mm/{token}/api/v1/ack", handleMattermostAck(ps))
	r.With(mmLimit).Method(http.MethodPost, "/api/v1/send_push", handleMattermostPush(ps))
	r.With(mmLimit).Method(http.MethodPost, "/api/v1/ack", handleMattermostAck(ps))
	r.With(rcLimit).Method(http.MethodPost, "/push/apn/send", handleRocketChatPush(ps, gateway.KindAPNs))
	r.With(rcLimit).Method(http.MethodPost, "/push/gcm/send", handleRocketChatPush(ps, gateway.KindFCM))

	// Terms, registration and the workspace API.
	r.Method(http.MethodGet, "/api/v1/terms", handleTerms(d.Tenants, d.Log))
	r.Method(http.MethodGet, "/terms", handleTermsPage())
	r.Method(http.MethodPost, "/api/v1/workspaces",
		handleRegister(d.Tenants, d.RegistrationOpen, newIPLimiter(d.RegistrationsPerHour, d.RegistrationsPerHour), d.Log))
	r.Group(func(r chi.Router) {
		r.Use(apiLimit, requireWorkspace(d.Tenants, d.Log))
		r.Method(http.MethodGet, "/api/v1/workspace", handleGetWorkspace(d.Tenants, d.PublicURL, d.Log))
		r.Method(http.MethodPatch, "/api/v1/workspace", handleUpdateWorkspace(d.Tenants, d.Log))
		r.Method(http.MethodPost, "/api/v1/workspace/consent", handleConsent(d.Tenants, d.Log))
		r.Method(http.MethodPost, "/api/v1/workspace/token", handleRotateToken(d.Tenants, d.Log))
		r.Method(http.MethodGet, "/api/v1/workspace/usage", handleUsage(d.Quotas, d.History, d.Now, d.Log))
		r.Method(http.MethodPost, "/api/v1/workspace/billing/checkout", handleCheckout(d.Billing, d.Log))
		r.Method(http.MethodPost, "/api/v1/workspace/billing/package", handleBuyPackage(d.Billing, d.Log))
		r.Method(http.MethodPost, "/api/v1/workspace/billing/portal", handlePortal(d.Billing, d.Log))
		r.Method(http.MethodPost, "/api/v1/workspace/claim", handleClaimLink(d.Tenants, d.Log))
	})

	// The operator API: an operator API key, every action audited as the operator with source "api".
	r.Route("/api/v1/admin", func(r chi.Router) {
		r.Use(apiLimit, requireOperatorKey(d.Tenants, d.Log))
		r.Method(http.MethodGet, "/workspaces", handleAdminListWorkspaces(d.Tenants, d.Log))
		r.Method(http.MethodGet, "/workspaces/{id}", handleAdminShowWorkspace(d.Tenants, d.Quotas, d.Owners, d.Now, d.Log))
		r.Method(http.MethodGet, "/workspaces/{id}/audit", handleAdminAudit(d.Tenants, d.Log))
		r.Method(http.MethodPost, "/workspaces/{id}/suspend", handleAdminSetStatus(d.Tenants, tenants.StatusSuspended, d.Log))
		r.Method(http.MethodPost, "/workspaces/{id}/resume", handleAdminSetStatus(d.Tenants, tenants.StatusActive, d.Log))
		r.Method(http.MethodPost, "/workspaces/{id}/plan", handleAdminSetPlan(d.Tenants, d.Log))
		r.Method(http.MethodPost, "/workspaces/{id}/token", handleAdminRotateToken(d.Tenants, d.Log))
		r.Method(http.MethodPost, "/workspaces/{id}/pushes", handleAdminAddPushes(d.Tenants, d.Log))
	})

	// Rocket.Chat Cloud registration (cloud.go): what a stock Rocket.Chat
	// server calls on its Cloud_Url to register and get push access tokens.
	cloudLimit := newIPLimiter(d.RegistrationsPerHour, d.RegistrationsPerHour)
	r.Method(http.MethodPost, "/api/v2/register/workspace/pre-intent", handleCloudPreIntent(cloudLimit, d.Log))
	r.Method(http.MethodPost, "/api/v2/register/workspace/intent", handleCloudIntent(d.Tenants, cloudLimit, d.Log))
	r.Method(http.MethodGet, "/api/v2/register/workspace/poll", handleCloudPoll(d.Tenants, d.Now, d.Log))
	r.Method(http.MethodPost, "/api/oauth/token", handleCloudToken(d.Tenants, d.Log))
	r.Group(func(r chi.Router) {
		r.Use(rcLimit, requireCloudClient(d.Tenants, d.Log))
		r.Method(http.MethodPost, "/api/v2/workspaces/{workspace}/sync", handleCloudSync())
		r.Method(http.MethodPost, "/api/v2/workspaces/{workspace}/client", handleCloudClientSync(d.Quotas, d.UpgradeURL, d.Now, d.Log))
		r.Method(http.MethodGet, "/api/v2/workspaces/{workspace}/license", handleCloudLicense(d.Now))
		r.Method(http.MethodPost, "/api/v3/comms/workspace", handleCloudComms(d.Quotas, d.UpgradeURL, d.Now, d.Log))
	})

	// Stripe's signed webhooks.
	r.Method(http.MethodPost, "/webhooks/stripe", handleStripeWebhook(d.Billing, d.Log))

	// The dashboard (web/): pages for workspace owners and operators; every form post carries a CSRF token.
	if dash := d.Dashboard; dash != nil {
		r.Group(func(r chi.Router) {
			r.Use(dash.Protect)
			r.Method(http.MethodGet, "/", dash.Home())
			r.Method(http.MethodGet, "/assets/*", dash.Assets())
			r.Method(http.MethodGet, "/signup", dash.SignUpPage())
			r.Method(http.MethodGet, "/signin", dash.SignInPage())
			r.Method(http.MethodGet, "/overview", dash.Overview())
			r.Method(http.MethodGet, "/connect", dash.Connect())
			r.Method(http.MethodGet, "/account", dash.Account())
			r.Method(http.MethodGet, "/operator", dash.Operator())
			r.Method(http.MethodGet, "/forgot", dash.ForgotPage())
			r.Method(http.MethodGet, "/reset/{token}", dash.ResetPage())
			r.Method(http.MethodGet, "/claim/{token}", dash.AcceptPage(tenants.LinkClaim))
			r.Method(http.MethodGet, "/invite/{token}", dash.AcceptPage(tenants.LinkInvite))
			r.Method(http.MethodGet, "/billing", dash.BillingPage())
			// Over-quota errors send admins to upgrade_url, by default /upgrade.
			r.Method(http.MethodGet, "/upgrade", http.RedirectHandler("/billing", http.StatusSeeOther))
			r.Method(http.MethodGet, "/operator/health", dash.OperatorHealth())
			r.Method(http.MethodGet, "/operator/workspaces/{id}", dash.OperatorWorkspace())
			r.Method(http.MethodGet, "/deliveries", dash.Deliveries())
			r.Method(http.MethodGet, "/test-push", dash.TestPushPage(testPusher{ps}))
			r.Method(http.MethodGet, "/cloud", dash.Cloud())
			r.Method(http.MethodGet, "/cloud/confirm", dash.CloudConfirmPage())
			r.Group(func(r chi.Router) {
				r.Use(dash.CheckCSRF)
				r.Method(http.MethodPost, "/signup", dash.SignUp())
				r.Method(http.MethodPost, "/signin", dash.SignIn())
				r.Method(http.MethodPost, "/signout", dash.SignOut())
				r.Method(http.MethodPost, "/overview/terms", dash.AcceptTerms())
				r.Method(http.MethodPost, "/connect/token", dash.RotateToken())
				r.Method(http.MethodPost, "/connect/settings", dash.UpdateSettings())
				r.Method(http.MethodPost, "/account/password", dash.ChangePassword())
				r.Method(http.MethodPost, "/forgot", dash.Forgot())
				r.Method(http.MethodPost, "/reset/{token}", dash.Reset())
				r.Method(http.MethodPost, "/claim/{token}", dash.Accept(tenants.LinkClaim))
				r.Method(http.MethodPost, "/invite/{token}", dash.Accept(tenants.LinkInvite))
				r.Method(http.MethodPost, "/account/invites", dash.Invite())
				r.Method(http.MethodPost, "/account/invites/{id}/revoke", dash.RevokeInvite())
				r.Method(http.MethodPost, "/account/owners/{id}/remove", dash.RemoveOwner())
				r.Method(http.MethodPost, "/billing/checkout", dash.Upgrade())
				r.Method(http.MethodPost, "/billing/portal", dash.ManageBilling())
				r.Method(http.MethodPost, "/billing/package", dash.BuyPackage())
				for _, action := range []string{web.ActionSuspend, web.ActionResume, web.ActionPlan, web.ActionToken, web.ActionPushes} {
					r.Method(http.MethodPost, "/operator/workspaces/{id}/"+action, dash.OperatorAction(action))
				}
				r.Method(http.MethodPost, "/test-push", dash.SendTestPush(testPusher{ps}))
				r.Method(http.MethodPost, "/cloud/confirm", dash.CloudConfirm())
				r.Method(http.MethodPost, "/cloud/manual", dash.CloudManual())
				r.Method(http.MethodPost, "/cloud/rotate", dash.CloudRotate())
				r.Method(http.MethodPost, "/cloud/revoke", dash.CloudRevoke())
			})
		})
	}

	r.NotFound(handleNotFound())
	r.MethodNotAllowed(handleMethodNotAllowed())
	return r
}
