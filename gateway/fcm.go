package gateway

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// fcmLimit is FCM's limit for the data payload (keys and values), in bytes.
const fcmLimit = 4096

const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// fcmMessage is one FCM message: the data-only payload the official apps read.
type fcmMessage struct {
	messageCommon
	data  map[string]string
	limit int
}

func (n *fcmMessage) size() (int, int, string) {
	return fcmDataSize(n.data), n.limit, "FCM data payload"
}

func (n *fcmMessage) reset() bool {
	if !n.resetCommon() {
		return false
	}
	n.limit = 0
	clear(n.data)
	return true
}

// fcmProvider speaks FCM's HTTP v1 API itself with the app's service account:
// one POST of the message, built without reflection, per attempt, and no
// retries of its own (App's retry policy is the only retry loop). The OAuth
// exchange goes to the account's own token_uri; the access token is reused
// until shortly before it expires.
type fcmProvider struct {
	url    *url.URL // <endpoint>/projects/<project_id>/messages:send
	tokens atomic.Pointer[fcmTokens]
	authz  atomic.Pointer[fcmAuthorization]
	// newTokens builds an empty token cache from the service-account file as it is now.
	newTokens func() *fcmTokens
	dropMu    sync.Mutex // guards replacing tokens and dropLimit
	dropLimit refreshLimiter
	now       func() time.Time
	m         *appMetrics
	rt        http.RoundTripper
	transport *http.Transport
}

// fcmTokens is one cache of access tokens, replaced whole when FCM refuses its token.
type fcmTokens struct {
	src oauth2.TokenSource
}

// fcmAuthorization is the Authorization header of one access token.
type fcmAuthorization struct {
	token  *oauth2.Token
	header []string
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

// fcmFields are the apps-file keys of kind fcm.
var fcmFields = []string{"service_account_file", "default"}

func validateFCM(a AppConfig, bad func(field, format string, args ...any)) {
	if a.ServiceAccountFile == "" {
		bad("service_account_file", "is required for kind fcm")
	}
}

// fcmEndpoint accepts a bare origin ("https://host:8443") or a full base URL ending in /v1.
func fcmEndpoint(endpoint string) string {
	endpoint = strings.TrimRight(endpoint, "/")
	if u, err := url.Parse(endpoint); err == nil && u.Path == "" {
		return endpoint + "/v1"
	}
	return endpoint
}

func openFCM(cfg AppConfig, env providerEnv) (provider, error) {
	p, err := newFCM(cfg, env)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func newFCM(cfg AppConfig, env providerEnv) (*fcmProvider, error) {
	opts := env.opts
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
	endpoint := fcmDefaultEndpoint
	if cfg.Endpoint != "" {
		endpoint = fcmEndpoint(cfg.Endpoint)
	}
	u, err := url.Parse(endpoint + "/projects/" + url.PathEscape(sa.ProjectID) + "/messages:send")
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q is not an absolute URL", cfg.Endpoint)
	}
	tr := &http.Transport{
		// Only Options.Proxy, never the process environment: cmd decides.
		Proxy:                 httpProxy(opts.Proxy),
		DialContext:           opts.dial,
		TLSClientConfig:       tlsCfg,
		ForceAttemptHTTP2:     true,
		HTTP2:                 &http.HTTP2Config{SendPingTimeout: pingAfter, PingTimeout: pingTimeout},
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Answers are a few hundred bytes: no Accept-Encoding to encode, no gzip reader to set up.
		DisableCompression: true,
	}
	// The token exchange runs outside any push's context, so it gets its own
	// bound. JWTConfig's source is already a reusing one.
	tokenClient := &http.Client{Transport: tr, Timeout: opts.AttemptTimeout}
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, tokenClient)
	p := &fcmProvider{url: u, rt: tr, transport: tr, now: opts.Now, m: env.m, dropLimit: refreshLimiter{interval: fcmRefreshInterval}}
	p.newTokens = func() *fcmTokens {
		// A file fixed since the start is used; one that broke since is not.
		if raw, fresh, err := loadServiceAccount(cfg.ServiceAccountFile); err == nil && fresh.ProjectID == sa.ProjectID {
			if c, err := google.JWTConfigFromJSON(raw, fcmScope); err == nil {
				jwtCfg = c // only under dropMu, or before the provider is shared
			}
		}
		return &fcmTokens{src: jwtCfg.TokenSource(tokenCtx)}
	}
	p.tokens.Store(&fcmTokens{src: jwtCfg.TokenSource(tokenCtx)})
	return p, nil
}

// dropTokens replaces the token cache that FCM refused a token of, unless
// another push already did or the last replacement is too recent.
func (p *fcmProvider) dropTokens(refused *fcmTokens) refreshResult {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	if p.tokens.Load() != refused {
		return refreshDone
	}
	if !p.dropLimit.allow(p.now()) {
		return refreshRateLimited
	}
	p.tokens.Store(p.newTokens())
	return refreshed
}

// httpProxy adapts Options.Proxy to http.Transport's.
func httpProxy(proxy func(*url.URL) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	if proxy == nil {
		return nil
	}
	return func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
}

// fcmDefaultEndpoint is FCM's HTTP v1 base URL.
const fcmDefaultEndpoint = "https://fcm.googleapis.com/v1"

func (p *fcmProvider) newMessage() providerMessage {
	return &fcmMessage{data: make(map[string]string, 24)}
}

func (p *fcmProvider) buildMattermost(m providerMessage, push *MattermostPush, idOnly bool) {
	buildMattermostFCM(m.(*fcmMessage), push, idOnly)
}

func (p *fcmProvider) buildRocketChat(m providerMessage, push *RocketChatPush, _ bool, _ time.Time) error {
	return buildRocketChatFCM(m.(*fcmMessage), push)
}

func (p *fcmProvider) send(ctx context.Context, m providerMessage) Result {
	n := m.(*fcmMessage)
	tokens := p.tokens.Load()
	authz, err := p.authorization(tokens)
	if err != nil {
		res := fcmTransportResult(ctx, err)
		var re *oauth2.RetrieveError
		if res.Outcome == Failed && errors.As(err, &re) {
			// The token endpoint refused the service account: read its file again, in case it was fixed.
			p.m.refreshed(p.dropTokens(tokens))
		}
		return res
	}
	body := appendFCMRequest(make([]byte, 0, fcmRequestSize(n)), n)
	h := http.Header{
		"Authorization": authz,
		"Content-Type":  {"application/json"},
		// Version 2 is the format whose errors carry the FcmError detail.
		"X-Goog-Api-Format-Version": {"2"},
	}
	req := postRequest(ctx, p.url, h, body)
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return fcmTransportResult(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := readAnswer(resp.Body, &n.answer)
	if err != nil {
		return transportResult(ctx, err)
	}
	if resp.StatusCode == http.StatusOK {
		name, ok := fcmMessageName(answer)
		if !ok {
			return Result{Outcome: RetryLater, Reason: ReasonTransport + ": FCM answered 200 without a message name"}
		}
		return Result{Outcome: Delivered, ID: name}
	}
	var retryAfter time.Duration
	if resp.StatusCode >= 400 {
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	res := classifyFCM(resp.StatusCode, answer, retryAfter)
	if resp.StatusCode == http.StatusUnauthorized && res.Reason == "UNAUTHENTICATED" {
		p.m.refreshed(p.dropTokens(tokens))
	}
	return res
}

// fcmMessageName reads the name out of FCM's answer to a send,
// {"name": "projects/<project>/messages/<id>"}, without reflection.
func fcmMessageName(answer []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(bytes.TrimLeft(answer, " \t\r\n"), []byte("{"))
	if ok {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		rest, ok = bytes.CutPrefix(rest, []byte(`"name"`))
	}
	if ok {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		rest, ok = bytes.CutPrefix(rest, []byte(":"))
	}
	if ok {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		rest, ok = bytes.CutPrefix(rest, []byte(`"`))
	}
	if ok {
		// A name is a resource path: a backslash (an escape) sends it the long way.
		if end := bytes.IndexAny(rest, `"\`); end >= 0 && rest[end] == '"' {
			return string(rest[:end]), true
		}
	}
	var v struct {
		Name *string `json:"name"`
	}
	if json.Unmarshal(answer, &v) != nil || v.Name == nil {
		return "", false
	}
	return *v.Name, true
}

// authorization is the Authorization header for the current access token,
// fetching a new token when the last one is about to expire.
func (p *fcmProvider) authorization(tokens *fcmTokens) ([]string, error) {
	tok, err := tokens.src.Token()
	if err != nil {
		return nil, err
	}
	if a := p.authz.Load(); a != nil && a.token == tok {
		return a.header, nil
	}
	a := &fcmAuthorization{token: tok, header: []string{tok.Type() + " " + tok.AccessToken}}
	p.authz.Store(a)
	return a.header, nil
}

// fcmRequestSize is the length of appendFCMRequest's output.
func fcmRequestSize(n *fcmMessage) int {
	size := len(`{"message":{"android":{"priority":"high"},"token":}}`) + jsonStringLen(n.token)
	if len(n.data) > 0 {
		size += len(`"data":{},`) + len(n.data) - 1 // the commas between entries
		for k, v := range n.data {
			size += jsonStringLen(k) + 1 + jsonStringLen(v)
		}
	}
	return size
}

// appendFCMRequest appends the body of a messages:send request: the message
// laid out as the Firebase Admin SDK lays it out (data keys sorted, then
// android, then token).
func appendFCMRequest(b []byte, n *fcmMessage) []byte {
	var buf [32]string
	keys := buf[:0]
	for k := range n.data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, `{"message":{`...)
	if len(keys) > 0 {
		b = append(b, `"data":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, n.data[k])
		}
		b = append(b, `},`...)
	}
	b = append(b, `"android":{"priority":"high"},"token":`...)
	b = appendJSONString(b, n.token)
	return append(b, `}}`...)
}

func (p *fcmProvider) close() {
	p.transport.CloseIdleConnections()
}

// classifyFCM turns an FCM error answer into an Outcome, by the answer's
// FcmError code where it has one (as the Firebase Admin SDKs do), else by
// its Google status, else by the HTTP status.
func classifyFCM(status int, body []byte, retryAfter time.Duration) Result {
	e := parseFCMError(body)
	message := e.Error.Message
	if message == "" {
		message = "FCM answered " + strconv.Itoa(status)
	}
	switch e.fcmCode() {
	case "UNREGISTERED":
		return Result{Outcome: DeadToken, Reason: "UNREGISTERED"}
	case "SENDER_ID_MISMATCH":
		// The token belongs to another Firebase project: our configuration, not a dead token.
		return Result{Outcome: Failed, Reason: "SENDER_ID_MISMATCH: " + message}
	case "QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL":
		return Result{Outcome: RetryLater, Reason: e.fcmCode(), RetryAfter: retryAfter,
			Throttled: e.fcmCode() == "QUOTA_EXCEEDED" || status == http.StatusTooManyRequests}
	case "THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR":
		return Result{Outcome: Failed, Reason: "THIRD_PARTY_AUTH_ERROR: " + message}
	case "INVALID_ARGUMENT":
		return fcmInvalidArgument(message, e)
	case "":
		if status == http.StatusUnauthorized {
			// Our access token was refused: the send drops it, the next attempt gets a new one.
			return Result{Outcome: RetryLater, Reason: "UNAUTHENTICATED"}
		}
	}
	if e.Error.Status == "INVALID_ARGUMENT" || (e.Error.Status == "" && status == http.StatusBadRequest) {
		return fcmInvalidArgument(message, e)
	}
	code := e.code(status)
	if status == http.StatusTooManyRequests || status >= 500 {
		return Result{Outcome: RetryLater, Reason: code, RetryAfter: retryAfter, Throttled: status == http.StatusTooManyRequests}
	}
	return Result{Outcome: Failed, Reason: code + ": " + message}
}

// fcmInvalidArgument classifies INVALID_ARGUMENT, which FCM answers both for
// a malformed registration token (which never becomes valid: remove it) and
// for a bad message (ours). It says which in the message and by naming
// message.token in a BadRequest field violation.
func fcmInvalidArgument(message string, e fcmError) Result {
	if strings.Contains(strings.ToLower(message), "registration token") {
		return Result{Outcome: DeadToken, Reason: "INVALID_ARGUMENT"}
	}
	for _, d := range e.Error.Details {
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				return Result{Outcome: DeadToken, Reason: "INVALID_ARGUMENT"}
			}
		}
	}
	return Result{Outcome: Failed, Reason: "INVALID_ARGUMENT: " + message}
}

// fcmError is Google's error answer as FCM sends it (API format version 2).
type fcmError struct {
	Error struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

// parseFCMError reads what it can of an error answer; anything else (an HTML
// page from a proxy, say) leaves it empty.
func parseFCMError(body []byte) fcmError {
	var e fcmError
	_ = json.Unmarshal(body, &e)
	return e
}

// fcmCode is the FcmError detail's code, "" without one.
func (e *fcmError) fcmCode() string {
	for _, d := range e.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" && d.ErrorCode != "" {
			return d.ErrorCode
		}
	}
	return ""
}

// code is the most specific code of the answer: the FcmError detail, else
// the Google status, else the HTTP status.
func (e *fcmError) code(status int) string {
	if c := e.fcmCode(); c != "" {
		return c
	}
	if e.Error.Status != "" {
		return e.Error.Status
	}
	return "HTTP " + strconv.Itoa(status)
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

// fcmDataSize is the size FCM counts against its limit: the bytes of the data keys and values.
func fcmDataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}
