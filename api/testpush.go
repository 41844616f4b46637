package api

import (
	"context"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/web"
)

// testPusher sends the dashboard's test pushes through the pipeline every
// push takes, so a test push is admitted, counted and logged like any other.
type testPusher struct{ ps *pusher }

// testPushText is what the phone shows; it names no one's message.
const testPushText = "Test notification from pushgate: this device receives your workspace's pushes."

func (t testPusher) TestApps() []web.TestApp {
	if t.ps.apps == nil {
		return nil
	}
	apps := t.ps.apps.Apps()
	out := make([]web.TestApp, 0, len(apps))
	for _, a := range apps {
		provider := "Google"
		if a.Kind() == gateway.KindAPNs {
			provider = "Apple"
		}
		out = append(out, web.TestApp{ID: a.ID(), Provider: provider})
	}
	return out
}

func (t testPusher) TestPush(ctx context.Context, p *tenants.Principal, appID, deviceToken string) (web.TestPushResult, error) {
	ps := t.ps
	if ps.apps == nil {
		return web.TestPushResult{}, tenants.FieldError("app", "is not served: this gateway serves no push apps")
	}
	app, ok := ps.apps.App(appID)
	if !ok {
		return web.TestPushResult{}, tenants.FieldError("app", "is not served by this gateway; it serves %s", ps.platformList())
	}
	msg := gateway.MattermostPush{Platform: appID, DeviceID: deviceToken, Type: gateway.MattermostTypeTest, Message: testPushText}
	note := deliveryNote{protocol: tenants.ProtocolTest, app: app.ID(), token: deviceToken}
	prep, res := app.PrepareMattermost(&msg, p.Workspace.Privacy == tenants.PrivacyIDOnly)
	if prep == nil {
		ps.logDelivery(p, note, tenants.DeliveryFailed, res.Reason)
		return web.TestPushResult{Result: tenants.DeliveryFailed, Reason: res.Reason}, nil
	}
	// No duplicate key: every test push is sent.
	out, err := ps.push(ctx, p, "", note, prep)
	if err != nil {
		return web.TestPushResult{}, err
	}
	return web.TestPushResult{Result: deliveryResult(out.res.Outcome), Reason: out.res.Reason, ID: out.res.ID}, nil
}
