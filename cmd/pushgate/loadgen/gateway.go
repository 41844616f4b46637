package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Protocols a gateway is driven through.
const (
	ProtocolMattermost = "mattermost"
	ProtocolRocketChat = "rocketchat"
)

// Defaults of the request mix: the dev sandbox apps' platforms and topic.
const (
	DefaultIOSPlatform     = "apple_rn-v2"
	DefaultAndroidPlatform = "android_rn"
	DefaultTopic           = "app.pushgate.dev"
)

// GatewayConfig describes pushes sent to a running gateway over HTTP/1.1.
type GatewayConfig struct {
	// URL is the gateway's base URL, such as http://127.0.0.1:8086.
	URL      string
	Protocol string
	// Tokens are the workspaces' tokens; Mix.Workspaces is set to their number.
	Tokens []string
	Mix    Mix
	// IOSPlatform and AndroidPlatform are the Mattermost platforms of the mix.
	IOSPlatform, AndroidPlatform string
	// Topic is the Rocket.Chat APNs topic (the iOS app's bundle id).
	Topic string
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
}

// Gateway sends Mattermost or Rocket.Chat pushes to a gateway.
type Gateway struct {
	base     *url.URL
	timeout  time.Duration
	mu       sync.Mutex
	conns    []*h1conn
	mix      Mix
	protocol string
	// Per workspace, and for Rocket.Chat per kind (0 APNs, 1 FCM).
	targets                      [][2]endpoint
	iosPlatform, androidPlatform string
	topic                        string // JSON-quoted
	createdAt                    string
}

// endpoint is where one workspace's pushes of one kind go.
type endpoint struct {
	// head is the request up to the value of Content-Length.
	head     []byte
	serverID string
}

// requestHead renders the start of a POST to u, up to the value of Content-Length.
func requestHead(u *url.URL, header ...string) []byte {
	b := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pushgate-bench\r\n", u.RequestURI(), u.Host)
	for i := 0; i+1 < len(header); i += 2 {
		b = fmt.Appendf(b, "%s: %s\r\n", header[i], header[i+1])
	}
	return append(b, "Content-Length: "...)
}

// NewGateway prepares every workspace's endpoints; connections are made per worker.
func NewGateway(cfg GatewayConfig) (*Gateway, error) {
	if len(cfg.Tokens) == 0 {
		return nil, errors.New("no workspace tokens")
	}
	base, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("gateway URL %q is not an absolute http(s) URL", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	g := &Gateway{
		mix:             cfg.Mix,
		protocol:        cfg.Protocol,
		iosPlatform:     orDefault(cfg.IOSPlatform, DefaultIOSPlatform),
		androidPlatform: orDefault(cfg.AndroidPlatform, DefaultAndroidPlatform),
		createdAt:       time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		base:            base,
		timeout:         cfg.Timeout,
	}
	for _, p := range []string{g.iosPlatform, g.androidPlatform} {
		if !plainText(p, `"\`) {
			return nil, fmt.Errorf("platform %q: only printable characters without quotes or backslashes", p)
		}
	}
	topic, _ := json.Marshal(orDefault(cfg.Topic, DefaultTopic))
	g.topic = string(topic)
	g.mix.Workspaces = len(cfg.Tokens)
	g.mix.init()
	for i, tok := range cfg.Tokens {
		if !plainText(tok, "/?#%") {
			return nil, fmt.Errorf("workspace token #%d is empty or not URL-safe", i+1)
		}
		serverID := string(g.mix.AppendID(nil, 's', uint64(i)))
		var eps [2]endpoint
		switch cfg.Protocol {
		case ProtocolMattermost:
			// Like Mattermost: the token in the path, no credentials, no Content-Type.
			u := *base
			u.Path += "/mm/" + tok + "/api/v1/send_push"
			eps[0] = endpoint{head: requestHead(&u), serverID: serverID}
			eps[1] = eps[0]
		case ProtocolRocketChat:
			h := []string{"Authorization", "Bearer " + tok, "Content-Type", "application/json"}
			apn, gcm := *base, *base
			apn.Path += "/push/apn/send"
			gcm.Path += "/push/gcm/send"
			eps[0] = endpoint{head: requestHead(&apn, h...), serverID: serverID}
			eps[1] = endpoint{head: requestHead(&gcm, h...), serverID: serverID}
		default:
			return nil, fmt.Errorf("protocol %q: use %s or %s", cfg.Protocol, ProtocolMattermost, ProtocolRocketChat)
		}
		g.targets = append(g.targets, eps)
	}
	return g, nil
}

// orDefault returns v, or def when v is empty.
func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// plainText reports whether s is non-empty printable ASCII without spaces or any of the bytes in not.
func plainText(s, not string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || strings.IndexByte(not, s[i]) >= 0 {
			return false
		}
	}
	return s != ""
}

// Close closes the workers' connections; call it after the run.
func (g *Gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.close()
	}
	g.conns = nil
}

// NewSender returns a worker's sender with its own keep-alive connection.
func (g *Gateway) NewSender(int) Sender {
	c := newH1Conn(g.base, g.timeout)
	g.mu.Lock()
	g.conns = append(g.conns, c)
	g.mu.Unlock()
	return &gatewaySender{g: g, conn: c, resp: make([]byte, 512)}
}

// gatewaySender is one worker's sender; its buffers are reused from request to request.
type gatewaySender struct {
	g         *Gateway
	conn      *h1conn
	body, req []byte
	resp      []byte
}

func (s *gatewaySender) Send(ctx context.Context, seq uint64) Outcome {
	g := s.g
	sh := g.mix.Shape(seq)
	kind := 0
	if !sh.IOS {
		kind = 1
	}
	ep := &g.targets[sh.Workspace][kind]
	if g.protocol == ProtocolMattermost {
		s.body = g.appendMattermost(s.body[:0], ep, sh)
	} else {
		s.body = g.appendRocketChat(s.body[:0], sh)
	}
	s.req = append(s.req[:0], ep.head...)
	s.req = strconv.AppendInt(s.req, int64(len(s.body)), 10)
	s.req = append(s.req, "\r\n\r\n"...)
	s.req = append(s.req, s.body...)
	status, n, err := s.conn.do(ctx, s.req, s.resp)
	if err != nil {
		return Outcome{HTTPStatus: status, Err: err}
	}
	o := Outcome{HTTPStatus: status}
	if g.protocol == ProtocolMattermost {
		o.Status = mattermostStatus(s.resp[:n])
	} else {
		o.Status = rocketChatStatus(status)
	}
	if o.Status != StatusOK && o.Status != StatusRemove {
		o.Reason = errorField(s.resp[:n])
	}
	return o
}

// mattermostStatus finds the status of a Mattermost answer, {"status":"OK"} and the like.
func mattermostStatus(body []byte) Status {
	const key = `"status":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return StatusOther
	}
	rest := body[i+len(key):]
	switch {
	case bytes.HasPrefix(rest, []byte(`OK"`)):
		return StatusOK
	case bytes.HasPrefix(rest, []byte(`REMOVE"`)):
		return StatusRemove
	case bytes.HasPrefix(rest, []byte(`FAIL"`)):
		return StatusFail
	}
	return StatusOther
}

// rocketChatStatus maps Rocket.Chat's status-only answers onto the Mattermost ones:
// 200 delivered, 406 dead token, anything else not delivered.
func rocketChatStatus(code int) Status {
	switch code {
	case http.StatusOK:
		return StatusOK
	case http.StatusNotAcceptable:
		return StatusRemove
	}
	return StatusFail
}

// appendMattermost appends the body of a Mattermost send_push, shaped like
// cmd/pushgate/testdata/samples/mattermost-message.json, with fresh ids.
func (g *Gateway) appendMattermost(b []byte, ep *endpoint, sh Shape) []byte {
	platform := g.androidPlatform
	if sh.IOS {
		platform = g.iosPlatform
	}
	b = append(b, `{"ack_id":"`...)
	b = g.mix.AppendID(b, 'a', sh.Seq)
	b = append(b, `","platform":"`...)
	b = append(b, platform...)
	b = append(b, `","server_id":"`...)
	b = append(b, ep.serverID...)
	b = append(b, `","device_id":"`...)
	b = g.mix.AppendDeviceToken(b, sh)
	b = append(b, `","post_id":"`...)
	b = g.mix.AppendID(b, 'p', sh.Seq)
	b = append(b, mattermostTail...)
	return b
}

const mattermostTail = `","category":"CAN_REPLY","message":"alice: the build is green","badge":3,` +
	`"team_id":"t4ghiycm7g7bb41ihg85pqgah","channel_id":"et3ghiycm7g7bb41ihg85pqgah","channel_name":"town-square",` +
	`"type":"message","sender_id":"g774dzud4tgaxgphso4wm8xrxe","sender_name":"alice","version":"v2",` +
	`"is_crt_enabled":true,"is_id_loaded":false,"signature":"eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl"}`

// appendRocketChat appends the body of a Rocket.Chat push, shaped like
// cmd/pushgate/testdata/samples/rocketchat-message.json, with a fresh message id (the
// gateway's duplicate key) and unique id.
func (g *Gateway) appendRocketChat(b []byte, sh Shape) []byte {
	b = append(b, `{"token":"`...)
	b = g.mix.AppendDeviceToken(b, sh)
	b = append(b, `","options":{"createdAt":"`...)
	b = append(b, g.createdAt...)
	b = append(b, `","createdBy":"<SERVER>","sent":false,"sending":0,"from":"push","title":"general",`+
		`"text":"bob: deploy at 5?","userId":"hG7fq2ZbJH4kP","badge":2,"sound":"default","notId":-1398311196,`+
		`"apn":{"category":"MESSAGE"},"gcm":{"style":"inbox","image":"https://chat.example.org/images/logo/android-chrome-192x192.png"},`+
		`"payload":{"host":"https://chat.example.org/","messageId":"`...)
	b = g.mix.AppendID(b, 'm', sh.Seq)
	b = append(b, `","notificationType":"message","rid":"GENERAL","sender":{"_id":"u1","username":"bob","name":"Bob"},`+
		`"senderName":"bob","type":"c","name":"general","messageType":""},"topic":`...)
	b = append(b, g.topic...)
	b = append(b, `,"uniqueId":"`...)
	b = g.mix.AppendID(b, 'u', sh.Seq)
	b = append(b, `"}}`...)
	return b
}

// errorField returns the "error" string of a JSON answer (both protocols use it), or "".
func errorField(body []byte) string {
	var v struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.Error
}
