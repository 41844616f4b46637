package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
)

// Mattermost's PushResponse statuses.
const (
	mmOK     = "OK"
	mmRemove = "REMOVE"
	mmFail   = "FAIL"
)

type mmResponse struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

var (
	mmOKBody     = []byte(`{"status":"OK"}` + "\n")
	mmRemoveBody = []byte(`{"status":"REMOVE"}` + "\n")
)

// mmStatus is the one place that maps error codes to Mattermost HTTP
// statuses: those of the JSON APIs, except that a push the provider refused
// is a FAIL with 200, as the reference proxy answers. The body is always a
// FAIL PushResponse.
func mmStatus(code tenants.Code) int {
	if code == tenants.CodeUndeliverable {
		return http.StatusOK
	}
	return apiStatus(code)
}

func writeMM(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeMMError answers FAIL with the status of the error's code.
func (ps *pusher) writeMMError(w http.ResponseWriter, r *http.Request, err error, start time.Time) {
	e := tenants.AsError(err)
	status := mmStatus(e.Code)
	if e.Reason == "too_large" {
		status = http.StatusRequestEntityTooLarge
	}
	msg := e.Message
	if e.Code == tenants.CodeInternal {
		ps.log.Error("mattermost push failed", "request_id", RequestID(r.Context()), "err", err)
		msg = "internal error; quote request id " + RequestID(r.Context()) + " to support"
	}
	if e.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds))
	}
	body, _ := json.Marshal(mmResponse{Status: mmFail, Error: msg})
	writeMM(w, status, append(body, '\n'))
	ps.metrics.observe("mattermost", string(e.Code), status, start)
}

// mmToken is the workspace token of a Mattermost request: in the path for
// stock servers, or as a Bearer token.
func mmToken(r *http.Request) string {
	if t := chi.URLParam(r, "token"); t != "" {
		return t
	}
	return bearerToken(r)
}

// Bounds on Mattermost fields; message and channel_name are truncated instead.
var mmFieldLimits = [...]struct {
	name string
	max  int
	get  func(*gateway.MattermostPush) string
}{
	{"ack_id", 64, func(p *gateway.MattermostPush) string { return p.AckID }},
	{"platform", 64, func(p *gateway.MattermostPush) string { return p.Platform }},
	{"server_id", 64, func(p *gateway.MattermostPush) string { return p.ServerID }},
	{"device_id", 4096, func(p *gateway.MattermostPush) string { return p.DeviceID }},
	{"post_id", 64, func(p *gateway.MattermostPush) string { return p.PostID }},
	{"category", 64, func(p *gateway.MattermostPush) string { return p.Category }},
	{"sound", 64, func(p *gateway.MattermostPush) string { return p.Sound }},
	{"team_id", 64, func(p *gateway.MattermostPush) string { return p.TeamID }},
	{"channel_id", 64, func(p *gateway.MattermostPush) string { return p.ChannelID }},
	{"root_id", 64, func(p *gateway.MattermostPush) string { return p.RootID }},
	{"type", 32, func(p *gateway.MattermostPush) string { return p.Type }},
	{"sub_type", 32, func(p *gateway.MattermostPush) string { return p.SubType }},
	{"transport", 32, func(p *gateway.MattermostPush) string { return p.Transport }},
	{"sender_id", 64, func(p *gateway.MattermostPush) string { return p.SenderID }},
	{"sender_name", 256, func(p *gateway.MattermostPush) string { return p.SenderName }},
	{"override_username", 256, func(p *gateway.MattermostPush) string { return p.OverrideUsername }},
	{"override_icon_url", 2048, func(p *gateway.MattermostPush) string { return p.OverrideIconURL }},
	{"from_webhook", 16, func(p *gateway.MattermostPush) string { return p.FromWebhook }},
	{"version", 16, func(p *gateway.MattermostPush) string { return p.Version }},
	{"signature", 4096, func(p *gateway.MattermostPush) string { return p.Signature }},
}

// validateMM checks a Mattermost push the way the reference proxy does, plus
// bounds on every field.
func validateMM(p *gateway.MattermostPush) error {
	switch {
	case p.ServerID == "":
		return tenants.FieldError("server_id", "is missing: the Mattermost server's Diagnostic ID")
	case p.DeviceID == "":
		return tenants.FieldError("device_id", "is missing: the device token of the mobile app")
	case p.Platform == "":
		return tenants.FieldError("platform", "is missing: apple, apple_rn, android, android_rn …")
	}
	for _, f := range &mmFieldLimits {
		if v := f.get(p); len(v) > f.max {
			return tenants.FieldError(f.name, "is %d bytes; at most %d are allowed", len(v), f.max)
		}
	}
	if len(p.Message) > 64<<10 || len(p.ChannelName) > 4096 {
		return tenants.FieldError("message", "is too long")
	}
	return nil
}

// mmAuthenticated authenticates a Mattermost request, then reads its body:
// a bad token is answered before anything is read.
func (ps *pusher) mmAuthenticated(r *http.Request) (*tenants.Principal, []byte, error) {
	p, err := ps.tenants.Authenticate(r.Context(), mmToken(r))
	if err != nil {
		return nil, nil, err
	}
	body, err := readBody(r)
	return p, body, err
}

func handleMattermostPush(ps *pusher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		p, body, err := ps.mmAuthenticated(r)
		if err != nil {
			ps.writeMMError(w, r, err, start)
			return
		}
		var msg gateway.MattermostPush
		if err := gateway.DecodeMattermost(body, &msg); err != nil {
			ps.writeMMError(w, r, jsonError(err), start)
			return
		}
		if err := validateMM(&msg); err != nil {
			ps.writeMMError(w, r, err, start)
			return
		}
		if bound := p.Workspace.ServerID; bound != "" && msg.ServerID != bound {
			ps.writeMMError(w, r, &tenants.Error{Code: tenants.CodeForbidden, Reason: "server_id_mismatch", Field: "server_id",
				Message: "this workspace is bound to the Mattermost server " + bound + "; server_id " + msg.ServerID + " may not send with its token"}, start)
			return
		}
		app, ok := ps.apps.App(msg.Platform)
		if !ok {
			ps.writeMMError(w, r, &tenants.Error{Code: tenants.CodeInvalid, Field: "platform", Reason: "unknown_platform",
				Message: "platform " + strconv.Quote(msg.Platform) + " is not served by this gateway; it serves " + ps.platformList()}, start)
			return
		}
		note := deliveryNote{protocol: tenants.ProtocolMattermost, ref: msg.AckID, app: app.ID(), token: msg.DeviceID}
		prep, res := app.PrepareMattermost(&msg, p.Workspace.Privacy == tenants.PrivacyIDOnly)
		if prep == nil {
			ps.logDelivery(p, note, tenants.DeliveryFailed, res.Reason)
			ps.writeMMError(w, r, tenants.Errorf(tenants.CodeUndeliverable, "not sent: %s", res.Reason), start)
			return
		}
		key := ""
		if msg.AckID != "" {
			key = dedupeKey("mm", msg.DeviceID, msg.AckID)
		}
		out, err := ps.push(r.Context(), p, key, note, prep)
		if err != nil {
			ps.writeMMError(w, r, err, start)
			return
		}
		if out.duplicate {
			writeMM(w, http.StatusOK, mmOKBody)
			ps.metrics.observe("mattermost", "duplicate", http.StatusOK, start)
			return
		}
		res = out.res
		switch res.Outcome {
		case gateway.Delivered:
			writeMM(w, http.StatusOK, mmOKBody)
		case gateway.DeadToken:
			writeMM(w, http.StatusOK, mmRemoveBody)
		default:
			body, _ := json.Marshal(mmResponse{Status: mmFail, Error: "not delivered: " + res.Reason})
			writeMM(w, http.StatusOK, append(body, '\n'))
		}
		ps.metrics.observe("mattermost", res.Outcome.String(), http.StatusOK, start)
	})
}

// mmAck is Mattermost's PushNotificationAck.
type mmAck struct {
	ID         string `json:"id"`
	ReceivedAt int64  `json:"received_at"`
	Platform   string `json:"platform"`
	Type       string `json:"type"`
	PostID     string `json:"post_id"`
	IsIDLoaded bool   `json:"is_id_loaded"`
}

func handleMattermostAck(ps *pusher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		p, body, err := ps.mmAuthenticated(r)
		if err != nil {
			ps.writeMMError(w, r, err, start)
			return
		}
		var ack mmAck
		if err := json.Unmarshal(body, &ack); err != nil {
			ps.writeMMError(w, r, jsonError(err), start)
			return
		}
		switch {
		case ack.ID == "":
			ps.writeMMError(w, r, tenants.FieldError("id", "is missing: the ack_id of the push being acknowledged"), start)
			return
		case ack.ReceivedAt == 0:
			ps.writeMMError(w, r, tenants.FieldError("received_at", "is missing: when the device received the push, in ms"), start)
			return
		}
		// A receipt is bookkeeping: failing to count it never fails the request.
		if err := ps.quotas.RecordAck(r.Context(), p.Workspace.ID, ps.now().UTC()); err != nil {
			ps.log.Warn("recording an ack failed", "workspace", p.Workspace.ID, "err", err)
		}
		writeMM(w, http.StatusOK, mmOKBody)
		ps.metrics.observe("mattermost_ack", "ok", http.StatusOK, start)
	})
}

// platformList names the platforms this gateway serves, for error messages.
func (ps *pusher) platformList() string {
	out := ""
	for i, a := range ps.apps.Apps() {
		if i > 0 {
			out += ", "
		}
		out += a.ID()
	}
	return out
}
