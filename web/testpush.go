package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/tenants"
)

// TestApp is a push app the test push page offers.
type TestApp struct {
	ID string
	// Provider is "Apple" or "Google".
	Provider string
}

// TestPushResult is the provider's answer to a test push.
type TestPushResult struct {
	Result tenants.DeliveryResult
	// Reason is the provider's reason code, if it gave one.
	Reason string
	// ID is the provider's id of a delivered notification.
	ID string
}

// TestPusher sends one test notification through the same pipeline as a
// real push: admission, the quota, delivery and the delivery log.
type TestPusher interface {
	TestApps() []TestApp
	TestPush(ctx context.Context, p *tenants.Principal, appID, deviceToken string) (TestPushResult, error)
}

// Test pushes are for people trying a phone: a handful a minute per workspace.
const (
	testPushesPerMinute = 10
	testPushBurst       = 5
	maxTestTokenLen     = 4096
)

type testPushData struct {
	Apps   []option
	Token  string
	Answer *testAnswer
}

type testAnswer struct {
	Class, Title, Detail string
}

// testPushLimits bounds each workspace's test pushes.
type testPushLimits struct {
	mu  sync.Mutex
	lim map[string]*rate.Limiter
}

func (t *testPushLimits) allow(workspaceID string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lim == nil || len(t.lim) >= 10_000 { // forgetting all limits now and then bounds the map
		t.lim = map[string]*rate.Limiter{}
	}
	l, ok := t.lim[workspaceID]
	if !ok {
		l = rate.NewLimiter(rate.Every(time.Minute/testPushesPerMinute), testPushBurst)
		t.lim[workspaceID] = l
	}
	return l.AllowN(now, 1)
}

// TestPushPage shows the form: a device token and an app.
func (dash *Dashboard) TestPushPage(tp TestPusher) http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		dash.renderTestPush(w, r, http.StatusOK, tp, view{}, "", "", nil)
	})
}

func (dash *Dashboard) renderTestPush(w http.ResponseWriter, r *http.Request, status int, tp TestPusher, v view, app, token string, a *testAnswer) {
	v.Title, v.Nav = "Test push", "test-push"
	data := testPushData{Token: token, Answer: a}
	for _, ta := range tp.TestApps() {
		data.Apps = append(data.Apps, option{Value: ta.ID, Label: ta.ID + " (" + ta.Provider + ")", Selected: ta.ID == app})
	}
	v.Data = data
	dash.render(w, r, status, "testpush", v)
}

// SendTestPush sends the test push and shows the provider's answer in plain words.
func (dash *Dashboard) SendTestPush(tp TestPusher) http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		app := r.PostFormValue("app")
		token := strings.TrimSpace(r.PostFormValue("token"))
		fields := map[string]string{}
		var provider string
		for _, a := range tp.TestApps() {
			if a.ID == app {
				provider = a.Provider
			}
		}
		if provider == "" {
			fields["app"] = "Pick the app installed on the phone."
		}
		switch {
		case token == "":
			fields["token"] = "Paste the device token of the phone."
		case len(token) > maxTestTokenLen:
			fields["token"] = "A device token is at most 4096 characters."
		case strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }):
			fields["token"] = "A device token has no spaces or line breaks; paste it again."
		}
		if len(fields) > 0 {
			if len(token) > maxTestTokenLen {
				token = ""
			}
			dash.renderTestPush(w, r, http.StatusBadRequest, tp, view{Error: "Please correct the field marked below.", Fields: fields}, app, token, nil)
			return
		}
		if !dash.testLimits.allow(p.Workspace.ID, dash.d.Now()) {
			dash.renderTestPush(w, r, http.StatusTooManyRequests, tp,
				view{Error: "That is many test pushes in a short time. Wait a minute and send again."}, app, token, nil)
			return
		}
		res, err := tp.TestPush(r.Context(), p, app, token)
		if err != nil {
			e := tenants.AsError(err)
			status := statusOf(e.Code)
			if status == http.StatusInternalServerError {
				dash.fail(w, r, "", view{}, err)
				return
			}
			dash.renderTestPush(w, r, status, tp, view{}, app, token,
				&testAnswer{Class: "bad", Title: "Not sent", Detail: e.Message})
			return
		}
		dash.renderTestPush(w, r, http.StatusOK, tp, view{}, app, token, answerOf(res, provider))
	})
}

// answerOf puts the provider's answer in plain words.
func answerOf(res TestPushResult, provider string) *testAnswer {
	said := ""
	if res.Reason != "" {
		said = " (" + provider + " said: " + res.Reason + ")"
	}
	switch res.Result {
	case tenants.DeliveryDelivered:
		detail := provider + " accepted the notification"
		if res.ID != "" {
			detail += " (id " + res.ID + ")"
		}
		return &testAnswer{Class: "ok", Title: "Delivered",
			Detail: detail + ". If the phone shows nothing, check the app's notification settings on the phone."}
	case tenants.DeliveryDeadToken:
		return &testAnswer{Class: "bad", Title: "The device token is dead",
			Detail: "the app was uninstalled or the token belongs to another app" + said + ". Sign in again in the app on the phone to get a new token."}
	case tenants.DeliveryRetryLater:
		return &testAnswer{Class: "warn", Title: provider + " is unavailable, try again",
			Detail: provider + " could not take the notification right now" + said + ". Try again in a minute."}
	}
	return &testAnswer{Class: "bad", Title: provider + " refused the notification",
		Detail: "It will not succeed as sent" + said + "."}
}
