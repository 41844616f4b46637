package sandbox

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FCM's limits.
const (
	fcmMaxPayload = 4096      // data keys and values plus notification fields
	fcmMaxBody    = 256 << 10 // what the sandbox reads of a request at most
)

// fcmFailure is an FCM error answer: the outcome, and a message a person can act on;
// the zero value means no failure.
type fcmFailure struct {
	why     reason
	message string
	field   string // the request field at fault, for INVALID_ARGUMENT
}

// fcmMessage is what the sandbox needs of message: its target and payload size.
type fcmMessage struct {
	token, topic, condition string
	targets                 int // how many of token, topic and condition are set
	payloadSize             int // data keys and values plus notification fields, in bytes
}

// fcmSend is what the sandbox keeps of a messages:send request that passed the checks.
type fcmSend struct {
	project      string
	message      fcmMessage
	validateOnly bool
	body         []byte
}

// handleFCM answers POST /v1/projects/{project}/messages:send the way FCM HTTP v1 does.
func (s *Server) handleFCM(w http.ResponseWriter, r *http.Request) {
	s.fcm.received.Add(1)
	n, f := s.readFCM(r)
	if f.why == reasonDelivered && n.message.token != "" {
		f = fcmOutcome(n.message.token)
	}
	if !s.wait(r.Context()) {
		return
	}
	if f.why != reasonDelivered {
		s.fcm.reject(f.why)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "sandbox fcm rejected",
				slog.String("reason", f.why.String()), slog.String("token", shortToken(n.message.token)))
		}
		writeFCMError(w, f)
		return
	}

	b := make([]byte, 0, 64+len(n.project))
	b = append(b, `{"name":"projects/`...)
	b = append(b, n.project...)
	b = append(b, "/messages/"...)
	if n.validateOnly {
		s.fcm.accept(reasonValidated)
		b = append(b, "fake_message_id"...) // what FCM answers to a dry run
	} else {
		s.fcm.accept(reasonDelivered)
		b = append(b, "0:"...)
		b = strconv.AppendInt(b, time.Now().UnixMicro(), 10)
		b = append(b, '%')
		b = strconv.AppendUint(b, s.messageSeq.Add(1), 16)
		if s.fcmHistory.enabled() {
			s.fcmHistory.add(Received{Token: n.message.token, Topic: n.message.topic, Project: n.project, Headers: headerMap(r.Header), Body: n.body})
		}
	}
	b = append(b, `"}`...)
	w.Header()["Content-Type"] = []string{"application/json; charset=UTF-8"}
	_, _ = w.Write(b)
}

// fcmOutcome is the sandbox's answer for an acceptable message to a device token, chosen by prefix.
func fcmOutcome(token string) fcmFailure {
	switch {
	case strings.HasPrefix(token, "unregistered"):
		return fcmFailure{why: reasonFCMUnregistered, message: "Requested entity was not found."}
	case strings.HasPrefix(token, "baddevice"):
		return fcmFailure{why: reasonFCMInvalidArgument, message: "The registration token is not a valid FCM registration token", field: "message.token"}
	case strings.HasPrefix(token, "unavailable"):
		return fcmFailure{why: reasonFCMUnavailable, message: "The service is currently unavailable."}
	case strings.HasPrefix(token, "toomany"):
		return fcmFailure{why: reasonFCMQuotaExceeded, message: "Quota exceeded for sending messages to this device."}
	}
	return fcmFailure{}
}

// readFCM checks the path, the OAuth token, the project and the message.
func (s *Server) readFCM(r *http.Request) (fcmSend, fcmFailure) {
	var n fcmSend
	project, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/projects/"), "/messages:send")
	if !ok || !validProjectID(project) || r.Method != http.MethodPost {
		return n, fcmFailure{why: reasonFCMNotFound, message: "Requested entity was not found."}
	}
	n.project = project

	bearer, ok := cutPrefixFold(r.Header.Get("Authorization"), "bearer ")
	if !ok || !s.checkAccessToken(bearer, time.Now()) {
		return n, fcmFailure{why: reasonFCMUnauthenticated, message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."}
	}
	if len(s.fcmProjects) > 0 && !s.fcmProjects[project] {
		return n, fcmFailure{why: reasonFCMPermissionDenied, message: "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/" + project + "' (or it may not exist)."}
	}

	body, tooLarge, err := readBody(r.Body, r.ContentLength, fcmMaxBody)
	switch {
	case tooLarge:
		return n, invalidArgument("Message is too big", "message")
	case err != nil:
		return n, invalidArgument("Invalid JSON payload received. The request body could not be read.", "")
	}
	n.body = body

	var f fcmFailure
	n.message, n.validateOnly, f = parseFCMRequest(body)
	return n, f
}

// parseFCMRequest checks a messages:send body the way FCM does: unknown fields
// are refused (proto JSON takes snake_case and camelCase names), exactly one
// target, data values are strings, reserved data keys and the payload limit.
func parseFCMRequest(body []byte) (m fcmMessage, validateOnly bool, f fcmFailure) {
	if !validObject(body) {
		return m, false, invalidArgument("Invalid JSON payload received. The request body is not a JSON object.", "")
	}
	var msg []byte
	eachMember(body, func(name, v []byte) bool {
		switch string(name) {
		case "message":
			msg = v
		case "validate_only", "validateOnly":
			switch string(v) {
			case "true":
				validateOnly = true
			case "false", "null":
			default:
				f = invalidValue("validate_only", "TYPE_BOOL", v)
			}
		default:
			f = unknownName(name, "")
		}
		return f.why == reasonDelivered
	})
	if f.why != reasonDelivered {
		return m, false, f
	}
	if len(msg) == 0 || msg[0] != '{' {
		return m, false, invalidArgument("Request contains an invalid argument: message is required.", "message")
	}

	dataSize, androidDataSize, hasAndroidData := 0, 0, false
	eachMember(msg, func(name, v []byte) bool {
		switch string(name) {
		case "token", "topic", "condition", "name":
			s, ok := jsonString(v)
			if !ok && string(v) != "null" {
				f = invalidValue("message."+string(name), "TYPE_STRING", v)
				break
			}
			switch string(name) {
			case "token":
				m.token = string(s)
			case "topic":
				m.topic = string(s)
			case "condition":
				m.condition = string(s)
			}
		case "data":
			dataSize, f = fcmDataSize(v, "message.data")
		case "notification":
			if f = requireObject(v, "message.notification"); f.why == reasonDelivered && v[0] == '{' {
				m.payloadSize += len(v)
			}
		case "android":
			if f = requireObject(v, "message.android"); f.why != reasonDelivered || v[0] != '{' {
				break
			}
			eachMember(v, func(name, v []byte) bool {
				switch string(name) {
				case "data":
					androidDataSize, f = fcmDataSize(v, "message.android.data")
					hasAndroidData = v[0] == '{'
				case "notification":
					if f = requireObject(v, "message.android.notification"); f.why == reasonDelivered && v[0] == '{' {
						m.payloadSize += len(v)
					}
				}
				return f.why == reasonDelivered
			})
		case "webpush", "apns", "fcm_options", "fcmOptions":
			f = requireObject(v, "message."+string(name))
		default:
			f = unknownName(name, "message")
		}
		return f.why == reasonDelivered
	})
	if f.why != reasonDelivered {
		return m, false, f
	}

	for _, t := range [...]string{m.token, m.topic, m.condition} {
		if t != "" {
			m.targets++
		}
	}
	switch m.targets {
	case 0:
		return m, false, invalidArgument("Recipient of the message is not set.", "message")
	case 1:
	default:
		return m, false, invalidArgument("Exactly one of message.token, message.topic or message.condition must be set.", "message")
	}
	if hasAndroidData { // android.data replaces message.data on Android
		dataSize = androidDataSize
	}
	if m.payloadSize += dataSize; m.payloadSize > fcmMaxPayload {
		return m, false, invalidArgument("Message is too big", "message")
	}
	return m, validateOnly, fcmFailure{}
}

// fcmDataSize checks a data map (string values, no reserved keys) and returns its size in bytes.
func fcmDataSize(v []byte, field string) (size int, f fcmFailure) {
	if f = requireObject(v, field); f.why != reasonDelivered || v[0] != '{' {
		return 0, f
	}
	eachMember(v, func(k, val []byte) bool {
		s, ok := jsonString(val)
		switch {
		case !ok:
			f = invalidValue(field+"["+string(k)+"]", "TYPE_STRING", val)
		case string(k) == "from", string(k) == "notification", string(k) == "message_type",
			bytes.HasPrefix(k, []byte("google")), bytes.HasPrefix(k, []byte("gcm")):
			f = invalidArgument("Invalid data payload key: "+string(k), field)
		default:
			size += len(k) + len(s)
		}
		return f.why == reasonDelivered
	})
	return size, f
}

func requireObject(v []byte, field string) fcmFailure {
	if v[0] == '{' || string(v) == "null" {
		return fcmFailure{}
	}
	return invalidValue(field, "TYPE_MESSAGE", v)
}

// invalidValue words a type error like Google's proto JSON parser does.
func invalidValue(field, wantType string, got []byte) fcmFailure {
	if len(got) > 40 {
		got = append(got[:40:40], "…"...)
	}
	return invalidArgument("Invalid value at '"+field+"' ("+wantType+"), "+string(got), field)
}

func unknownName(name []byte, at string) fcmFailure {
	where := ""
	if at != "" {
		where = " at '" + at + "'"
	}
	return invalidArgument(`Invalid JSON payload received. Unknown name "`+string(name)+`"`+where+": Cannot find field.", "")
}

func invalidArgument(message, field string) fcmFailure {
	return fcmFailure{why: reasonFCMInvalidArgument, message: message, field: field}
}

// validProjectID accepts project ids and numbers; it also keeps the name safe to echo unescaped.
func validProjectID(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// fcmErrorKind maps an outcome to the HTTP status, Google API status and FCM error code.
func fcmErrorKind(why reason) (status int, apiStatus, errorCode string) {
	switch why {
	case reasonFCMUnregistered:
		return http.StatusNotFound, "NOT_FOUND", "UNREGISTERED"
	case reasonFCMInvalidArgument:
		return http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT"
	case reasonFCMUnavailable:
		return http.StatusServiceUnavailable, "UNAVAILABLE", "UNAVAILABLE"
	case reasonFCMQuotaExceeded:
		return http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"
	case reasonFCMUnauthenticated:
		return http.StatusUnauthorized, "UNAUTHENTICATED", ""
	case reasonFCMPermissionDenied:
		return http.StatusForbidden, "PERMISSION_DENIED", ""
	}
	return http.StatusNotFound, "NOT_FOUND", ""
}

type googleError struct {
	Error googleErrorBody `json:"error"`
}

type googleErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []any  `json:"details,omitempty"`
}

type fcmErrorDetail struct {
	Type      string `json:"@type"`
	ErrorCode string `json:"errorCode"`
}

type badRequestDetail struct {
	Type            string           `json:"@type"`
	FieldViolations []fieldViolation `json:"fieldViolations"`
}

type fieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// writeFCMError writes Google's error JSON, with the FcmError detail the Firebase SDKs classify by.
func writeFCMError(w http.ResponseWriter, f fcmFailure) {
	status, apiStatus, errorCode := fcmErrorKind(f.why)
	e := googleError{Error: googleErrorBody{Code: status, Message: f.message, Status: apiStatus}}
	if errorCode != "" {
		e.Error.Details = append(e.Error.Details, fcmErrorDetail{Type: "type.googleapis.com/google.firebase.fcm.v1.FcmError", ErrorCode: errorCode})
	}
	if f.field != "" {
		e.Error.Details = append(e.Error.Details, badRequestDetail{
			Type:            "type.googleapis.com/google.rpc.BadRequest",
			FieldViolations: []fieldViolation{{Field: f.field, Description: f.message}},
		})
	}
	body, _ := json.Marshal(e)
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=UTF-8"}
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		h["Retry-After"] = []string{"1"}
	case http.StatusUnauthorized:
		h["Www-Authenticate"] = []string{`Bearer realm="https://accounts.google.com/"`}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
