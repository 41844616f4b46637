package gateway

import "context"

// Prepared is a notification built and size-checked for one app. The caller
// decides (quota, duplicates) between building and sending, so a push that
// could never be sent costs no quota. Send or Release it exactly once.
type Prepared struct {
	m providerMessage // its app is m.common().app
}

// PrepareMattermost builds a Mattermost push for this app. When it cannot be
// sent (too large for the provider) it returns nil and the Failed result.
func (a *App) PrepareMattermost(p *MattermostPush, idOnly bool) (*Prepared, Result) {
	m := a.get()
	a.prov.buildMattermost(m, p, idOnly)
	return a.prepared(m)
}

// PrepareRocketChat builds a Rocket.Chat push for this app; voip (APNs only)
// makes it a PushKit push on <topic>.voip.
func (a *App) PrepareRocketChat(p *RocketChatPush, voip bool) (*Prepared, Result) {
	m := a.get()
	if err := a.prov.buildRocketChat(m, p, voip, a.now()); err != nil {
		m.common().token = p.Token
		res := a.finish(context.Background(), m, Result{Outcome: Failed, Reason: ReasonInvalidPayload + ": " + err.Error()})
		a.put(m)
		return nil, res
	}
	return a.prepared(m)
}

func (a *App) prepared(m providerMessage) (*Prepared, Result) {
	if res, ok := checkSize(m); !ok {
		res = a.finish(context.Background(), m, res)
		a.put(m)
		return nil, res
	}
	return &Prepared{m: m}, Result{}
}

// Send forwards the notification with the app's retry policy and releases it.
func (p *Prepared) Send(ctx context.Context) Result {
	m := p.m
	a := m.common().app
	defer a.put(m)
	res := a.policy.run(ctx, func(ctx context.Context) Result { return a.attempt(ctx, m) })
	return a.finish(ctx, m, res)
}

// Release returns a notification that will not be sent.
func (p *Prepared) Release() { p.m.common().app.put(p.m) }
