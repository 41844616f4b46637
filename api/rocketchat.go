package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
)

// Stable error codes of the Rocket.Chat protocol's answers (listed in the README).
const (
	rcCodeInvalid       = 1001 // the request is malformed
	rcCodeUnknownTopic  = 1002 // no app serves options.topic, or no FCM app
	rcCodeUndeliverable = 1003 // the provider refused it for good, or it is too large
	rcCodeTerms         = 1004 // the current terms are not accepted
	rcCodeSuspended     = 1005 // the workspace is suspended
	rcCodeQuota         = 1006 // the monthly quota is used up
	rcCodeDeadToken     = 1007 // the device token is dead: delete it
	rcCodeUnauthorized  = 1008 // missing or wrong workspace token
	rcCodeMisdirected   = 1009 // the workspace lives in another region
	rcCodeRateLimited   = 1010 // a burst above the plan's rate: retry
	rcCodeUnavailable   = 1011 // the provider or a dependency is down: retry
	rcCodeInternal      = 1012 // our failure: retry
)

type rcError struct {
	Code   int    `json:"code"`
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// rcAnswer is the one place that maps an error to the Rocket.Chat status and
// stable code. 422 means "never retry", 429 and 5xx "retry later".
func rcAnswer(e *tenants.Error) (status, code int) {
	switch e.Code {
	case tenants.CodeInvalid:
		if e.Reason == "unknown_topic" {
			return http.StatusUnprocessableEntity, rcCodeUnknownTopic
		}
		return http.StatusUnprocessableEntity, rcCodeInvalid
	case tenants.CodeUndeliverable:
		return http.StatusUnprocessableEntity, rcCodeUndeliverable
	case tenants.CodeForbidden:
		if e.Reason == "suspended" {
			return http.StatusUnprocessableEntity, rcCodeSuspended
		}
		return http.StatusUnprocessableEntity, rcCodeTerms
	case tenants.CodeQuotaExceeded:
		return http.StatusUnprocessableEntity, rcCodeQuota
	case tenants.CodeUnauthorized:
		return http.StatusUnauthorized, rcCodeUnauthorized
	case tenants.CodeMisdirected:
		return http.StatusMisdirectedRequest, rcCodeMisdirected
	case tenants.CodeRateLimited:
		return http.StatusTooManyRequests, rcCodeRateLimited
	case tenants.CodeUnavailable:
		return http.StatusServiceUnavailable, rcCodeUnavailable
	}
	return http.StatusInternalServerError, rcCodeInternal
}

func (ps *pusher) writeRCError(w http.ResponseWriter, r *http.Request, err error, start time.Time) {
	e := tenants.AsError(err)
	status, code := rcAnswer(e)
	msg := e.Message
	if e.Code == tenants.CodeInternal {
		ps.log.Error("rocket.chat push failed", "request_id", RequestID(r.Context()), "err", err)
		msg = "internal error; quote request id " + RequestID(r.Context()) + " to support"
	}
	if e.RetryAfterSeconds > 0 && status != http.StatusUnprocessableEntity {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds))
	}
	writeJSON(w, status, rcError{Code: code, Error: msg, Status: status})
	ps.metrics.observe("rocketchat", string(e.Code), status, start)
}

// validateRC bounds a Rocket.Chat push's fields.
func validateRC(p *gateway.RocketChatPush) error {
	o := &p.Options
	switch {
	case p.Token == "":
		return tenants.FieldError("token", "is missing: the device token to push to")
	case len(p.Token) > 4096:
		return tenants.FieldError("token", "is %d bytes; at most 4096 are allowed", len(p.Token))
	case len(o.Title) > 1024:
		return tenants.FieldError("options.title", "is %d bytes; at most 1024 are allowed", len(o.Title))
	case len(o.Text) > 8192:
		return tenants.FieldError("options.text", "is %d bytes; at most 8192 are allowed", len(o.Text))
	case len(o.Topic) > 256:
		return tenants.FieldError("options.topic", "is %d bytes; at most 256 are allowed", len(o.Topic))
	case len(o.Sound) > 256 || len(o.APN.Category) > 256 || len(o.GCM.Style) > 64 || len(o.GCM.Image) > 2048:
		return tenants.FieldError("options", "sound, apn.category, gcm.style or gcm.image is too long")
	}
	return nil
}

// handleRocketChatPush serves /push/apn/send (apns) and /push/gcm/send (fcm).
func handleRocketChatPush(ps *pusher, kind string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		token := bearerToken(r)
		if token == "" {
			ps.writeRCError(w, r, &tenants.Error{Code: tenants.CodeUnauthorized, Reason: "token_missing",
				Message: "send your workspace token as Authorization: Bearer pgw_…"}, start)
			return
		}
		p, err := ps.tenants.Authenticate(r.Context(), token)
		if err != nil {
			ps.writeRCError(w, r, err, start)
			return
		}
		body, err := readBody(r)
		if err != nil {
			ps.writeRCError(w, r, err, start)
			return
		}
		var msg gateway.RocketChatPush
		if err := json.Unmarshal(body, &msg); err != nil {
			ps.writeRCError(w, r, jsonError(err), start)
			return
		}
		if err := validateRC(&msg); err != nil {
			ps.writeRCError(w, r, err, start)
			return
		}
		app, voip, err := ps.rcApp(kind, msg.Options.Topic)
		if err != nil {
			ps.writeRCError(w, r, err, start)
			return
		}
		// The duplicate key is taken before id_only strips the payload.
		key := ""
		note := deliveryNote{protocol: tenants.ProtocolRocketChat, app: app.ID(), token: msg.Token}
		if id, typ := msg.Options.MessageRef(); id != "" {
			key = dedupeKey("rc", msg.Token, id, typ)
			note.ref = id
		} else if n := msg.Options.NotID; n != nil && ps.deliveries != nil {
			note.ref = "notId " + strconv.Itoa(*n)
		}
		if p.Workspace.Privacy == tenants.PrivacyIDOnly {
			if err := msg.StripContent(); err != nil {
				ps.writeRCError(w, r, tenants.FieldError("options.payload", "is not a JSON object: %v", err), start)
				return
			}
		}
		prep, res := app.PrepareRocketChat(&msg, voip)
		if prep == nil {
			ps.logDelivery(p, note, tenants.DeliveryFailed, res.Reason)
			ps.writeRCError(w, r, tenants.Errorf(tenants.CodeUndeliverable, "not sent: %s", res.Reason), start)
			return
		}
		out, err := ps.push(r.Context(), p, key, note, prep)
		if err != nil {
			ps.writeRCError(w, r, err, start)
			return
		}
		if out.duplicate {
			writeJSON(w, http.StatusOK, map[string]bool{"duplicate": true})
			ps.metrics.observe("rocketchat", "duplicate", http.StatusOK, start)
			return
		}
		res = out.res
		status := http.StatusOK
		switch res.Outcome {
		case gateway.Delivered:
			writeJSON(w, http.StatusOK, map[string]string{"id": res.ID})
		case gateway.DeadToken:
			status = http.StatusNotAcceptable
			writeJSON(w, status, rcError{Code: rcCodeDeadToken, Error: "the device token is no longer valid (" + res.Reason + "): delete it", Status: status})
		case gateway.RetryLater:
			status = http.StatusServiceUnavailable
			if res.Throttled {
				status = http.StatusTooManyRequests
			}
			if res.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int((res.RetryAfter+time.Second-1)/time.Second)))
			}
			writeJSON(w, status, rcError{Code: rcCodeUnavailable, Error: "the provider could not take it now (" + res.Reason + "); retry later", Status: status})
		default:
			status = http.StatusUnprocessableEntity
			writeJSON(w, status, rcError{Code: rcCodeUndeliverable, Error: "not delivered: " + res.Reason, Status: status})
		}
		ps.metrics.observe("rocketchat", res.Outcome.String(), status, start)
	})
}

// rcApp picks the app for a Rocket.Chat push: the APNs app whose topic is
// options.topic (a ".voip" suffix means VoIP), or the default FCM app.
func (ps *pusher) rcApp(kind, topic string) (*gateway.App, bool, error) {
	if kind == gateway.KindFCM {
		app, ok := ps.apps.DefaultFCM()
		if !ok {
			return nil, false, &tenants.Error{Code: tenants.CodeInvalid, Reason: "unknown_topic",
				Message: "this gateway serves no Android (FCM) app"}
		}
		return app, false, nil
	}
	if topic == "" {
		return nil, false, &tenants.Error{Code: tenants.CodeInvalid, Reason: "unknown_topic", Field: "options.topic",
			Message: "options.topic is missing: set Rocket.Chat's APN topic (the iOS app's bundle id)"}
	}
	app, voip, ok := ps.apps.APNsByTopic(topic)
	if !ok {
		var served []string
		for _, a := range ps.apps.Apps() {
			if a.Kind() == gateway.KindAPNs {
				served = append(served, a.Topic())
			}
		}
		return nil, false, &tenants.Error{Code: tenants.CodeInvalid, Reason: "unknown_topic", Field: "options.topic",
			Message: "options.topic " + strconv.Quote(topic) + " matches no iOS app of this gateway; it serves " + strings.Join(served, ", ")}
	}
	return app, voip, nil
}
