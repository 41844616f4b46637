package gateway

import "context"

// Prepared is a notification built and size-checked for one app. The caller
// decides (quota, duplicates) between building and sending, so a push that
// could never be sent costs no quota. Send or Release it exactly once.
type Prepared struct {
	a *App
	n *notification
}

// PrepareMattermost builds a Mattermost push for this app. When it cannot be
// sent (too large for the provider) it returns nil and the Failed result.
func (a *App) PrepareMattermost(p *MattermostPush, idOnly bool) (*Prepared, Result) {
	n := a.get()
	if a.kind == KindAPNs {
		buildMattermostAPNs(n, a.topic, p, idOnly)
	} else {
		buildMattermostFCM(n, p, idOnly)
	}
	return a.prepared(n)
}

// PrepareRocketChat builds a Rocket.Chat push for this app; voip (APNs only)
// makes it a PushKit push on <topic>.voip.
func (a *App) PrepareRocketChat(p *RocketChatPush, voip bool) (*Prepared, Result) {
	n := a.get()
	var err error
	if a.kind == KindAPNs {
		err = buildRocketChatAPNs(n, a.topic, p, voip, a.now())
	} else {
		err = buildRocketChatFCM(n, p)
	}
	if err != nil {
		n.token = p.Token
		res := a.finish(context.Background(), n, Result{Outcome: Failed, Reason: ReasonInvalidPayload + ": " + err.Error()})
		a.put(n)
		return nil, res
	}
	return a.prepared(n)
}

func (a *App) prepared(n *notification) (*Prepared, Result) {
	if res, ok := a.checkSize(n); !ok {
		res = a.finish(context.Background(), n, res)
		a.put(n)
		return nil, res
	}
	return &Prepared{a: a, n: n}, Result{}
}

// Send forwards the notification with the app's retry policy and releases it.
func (p *Prepared) Send(ctx context.Context) Result {
	a, n := p.a, p.n
	defer a.put(n)
	res := a.policy.run(ctx, func(ctx context.Context) Result { return a.attempt(ctx, n) })
	return a.finish(ctx, n, res)
}

// Release returns a notification that will not be sent.
func (p *Prepared) Release() { p.a.put(p.n) }
