package gateway

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"
)

// fcmLimit is FCM's limit for the data payload (keys and values), in bytes.
const fcmLimit = 4096

const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// fcmProvider sends through the Firebase Admin SDK (HTTP v1) with the app's
// service account; the OAuth exchange goes to the account's own token_uri.
type fcmProvider struct {
	client    *messaging.Client
	transport *http.Transport
	rt        *probeTransport
}

// serviceAccount is the part of a service-account file pushgate checks up front.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
	TokenURI    string `json:"token_uri"`
}

func loadServiceAccount(path string) ([]byte, serviceAccount, error) {
	var sa serviceAccount
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, sa, err
	}
	if err := json.Unmarshal(raw, &sa); err != nil {
		return nil, sa, errors.New("not a JSON service-account file")
	}
	switch {
	case sa.Type != "service_account":
		return nil, sa, fmt.Errorf("type is %q, want \"service_account\"", sa.Type)
	case sa.ProjectID == "":
		return nil, sa, errors.New("project_id is missing")
	case sa.ClientEmail == "":
		return nil, sa, errors.New("client_email is missing")
	}
	if sa.TokenURI != "" {
		if u, err := url.Parse(sa.TokenURI); err != nil || u.Host == "" {
			return nil, sa, errors.New("token_uri is not an absolute URL")
		}
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return nil, sa, errors.New("private_key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	if _, ok := key.(*rsa.PrivateKey); err != nil || !ok {
		return nil, sa, errors.New("private_key is not an RSA private key")
	}
	return raw, sa, nil
}

// fcmEndpoint accepts a bare origin ("https://host:8443") or a full base URL ending in /v1.
func fcmEndpoint(endpoint string) string {
	endpoint = strings.TrimRight(endpoint, "/")
	if u, err := url.Parse(endpoint); err == nil && u.Path == "" {
		return endpoint + "/v1"
	}
	return endpoint
}

func newFCM(ctx context.Context, cfg AppConfig, opts Options) (*fcmProvider, error) {
	raw, sa, err := loadServiceAccount(cfg.ServiceAccountFile)
	if err != nil {
		return nil, fmt.Errorf("service_account_file %s: %w", cfg.ServiceAccountFile, err)
	}
	jwtCfg, err := google.JWTConfigFromJSON(raw, fcmScope)
	if err != nil {
		return nil, fmt.Errorf("service_account_file %s: %w", cfg.ServiceAccountFile, errors.New("cannot read the service account"))
	}
	tlsCfg, err := tlsConfig(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 20 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	// The token exchange runs outside any push's context, so it gets its own bound.
	tokenClient := &http.Client{Transport: tr, Timeout: opts.AttemptTimeout}
	tokens := jwtCfg.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, tokenClient))
	rt := &probeTransport{base: &oauth2.Transport{Source: tokens, Base: tr}}
	hc := &http.Client{Transport: rt}

	fopts := []option.ClientOption{option.WithHTTPClient(hc)}
	if cfg.Endpoint != "" {
		fopts = append(fopts, option.WithEndpoint(fcmEndpoint(cfg.Endpoint)))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: sa.ProjectID, ServiceAccountID: sa.ClientEmail}, fopts...)
	if err != nil {
		return nil, fmt.Errorf("firebase: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("firebase messaging: %w", err)
	}
	return &fcmProvider{client: client, transport: tr, rt: rt}, nil
}

func (p *fcmProvider) send(ctx context.Context, n *notification) Result {
	sctx, stop := context.WithCancel(ctx)
	n.probe = attemptProbe{oneShot: true, stop: stop}
	sctx = context.WithValue(sctx, probeKey{}, &n.probe)
	n.android = messaging.AndroidConfig{Priority: "high"}
	n.fcm = messaging.Message{Token: n.token, Data: n.data, Android: &n.android}
	name, err := p.client.Send(sctx, &n.fcm)
	stop()
	switch {
	case n.probe.captured && n.probe.status == 0:
		return fcmTransportResult(ctx, n.probe.err)
	case n.probe.captured:
		code, _ := fcmErrorCode(n.probe.status, n.probe.body)
		return Result{Outcome: RetryLater, Reason: code, RetryAfter: n.probe.retryAfter}
	case err == nil:
		return Result{Outcome: Delivered, ID: name}
	}
	return classifyFCM(ctx, err, n.probe.retryAfter)
}

func (p *fcmProvider) close() {
	p.transport.CloseIdleConnections()
}

// classifyFCM turns a Firebase SDK error into an Outcome. It needs the error
// exactly as the SDK returned it: the messaging.Is* checks do not unwrap.
func classifyFCM(ctx context.Context, err error, retryAfter time.Duration) Result {
	resp := errorutils.HTTPResponse(err)
	var body []byte
	if resp != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	}
	switch {
	case messaging.IsUnregistered(err):
		return Result{Outcome: DeadToken, Reason: "UNREGISTERED"}
	case messaging.IsSenderIDMismatch(err):
		// The token belongs to another Firebase project: our configuration, not a dead token.
		return Result{Outcome: Failed, Reason: "SENDER_ID_MISMATCH: " + err.Error()}
	case messaging.IsQuotaExceeded(err):
		return Result{Outcome: RetryLater, Reason: "QUOTA_EXCEEDED", RetryAfter: retryAfter}
	case messaging.IsUnavailable(err):
		return Result{Outcome: RetryLater, Reason: "UNAVAILABLE", RetryAfter: retryAfter}
	case messaging.IsInternal(err):
		return Result{Outcome: RetryLater, Reason: "INTERNAL", RetryAfter: retryAfter}
	case messaging.IsThirdPartyAuthError(err):
		return Result{Outcome: Failed, Reason: "THIRD_PARTY_AUTH_ERROR: " + err.Error()}
	case messaging.IsInvalidArgument(err) || errorutils.IsInvalidArgument(err):
		// FCM answers INVALID_ARGUMENT both for a malformed registration token
		// (which never becomes valid: remove it) and for a bad message (ours).
		if badRegistrationToken(err.Error(), body) {
			return Result{Outcome: DeadToken, Reason: "INVALID_ARGUMENT"}
		}
		return Result{Outcome: Failed, Reason: "INVALID_ARGUMENT: " + err.Error()}
	}
	if resp == nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return contextResult(ctx, err)
		}
		if errorutils.IsUnknown(err) || errorutils.IsUnavailable(err) || errorutils.IsDeadlineExceeded(err) {
			return Result{Outcome: RetryLater, Reason: ReasonTransport + ": " + err.Error()}
		}
		// The SDK refused the message before sending it.
		return Result{Outcome: Failed, Reason: ReasonInvalidPayload + ": " + err.Error()}
	}
	code, _ := fcmErrorCode(resp.StatusCode, body)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return Result{Outcome: RetryLater, Reason: code, RetryAfter: retryAfter}
	}
	return Result{Outcome: Failed, Reason: code + ": " + err.Error()}
}

// badRegistrationToken reports whether an INVALID_ARGUMENT answer is about
// the registration token: FCM says so in the message and names message.token
// in a BadRequest field violation.
func badRegistrationToken(message string, body []byte) bool {
	if strings.Contains(strings.ToLower(message), "registration token") {
		return true
	}
	var e struct {
		Error struct {
			Details []struct {
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	for _, d := range e.Error.Details {
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				return true
			}
		}
	}
	return false
}

// fcmTransportResult classifies an error that kept an FCM request (or its
// OAuth token exchange) from getting an answer.
func fcmTransportResult(ctx context.Context, err error) Result {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := re.ErrorCode
		if code == "" {
			// the JWT grant does not parse the answer; its "error" is a short OAuth code
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(re.Body, &e) == nil && len(e.Error) <= 64 {
				code = e.Error
			}
		}
		reason := ReasonAuth + ": token endpoint answered " + strconv.Itoa(status)
		if code != "" {
			reason += " " + code
		}
		if status == http.StatusTooManyRequests || status >= 500 {
			return Result{Outcome: RetryLater, Reason: reason}
		}
		return Result{Outcome: Failed, Reason: reason}
	}
	return transportResult(ctx, err)
}

// fcmErrorCode extracts the most specific code of an FCM error answer: the
// FcmError detail, else the Google status, else the HTTP status.
func fcmErrorCode(status int, body []byte) (code, message string) {
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Message string `json:"message"`
			Details []struct {
				Type      string `json:"@type"`
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	for _, d := range e.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" && d.ErrorCode != "" {
			return d.ErrorCode, e.Error.Message
		}
	}
	if e.Error.Status != "" {
		return e.Error.Status, e.Error.Message
	}
	return "HTTP " + strconv.Itoa(status), e.Error.Message
}

// fcmDataSize is the size FCM counts against its limit: the bytes of the data keys and values.
func fcmDataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}
