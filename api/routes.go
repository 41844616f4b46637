package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pushgate/pushgate/gateway"
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
	r.Method(http.MethodGet, "/readyz", handleReadyz(d.Ready, readyzDetail(d.Operator), d.Log))
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
