package sandbox

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// Apple's limits.
const (
	apnsMaxPayload     = 4096
	apnsMaxVoIPPayload = 5120
	apnsMaxCollapseID  = 64
	providerTokenLife  = time.Hour // APNs rejects provider tokens issued longer ago
)

// apnsRequest is what the sandbox keeps of an APNs request once it passed the checks.
type apnsRequest struct {
	token, topic, pushType string
	body                   []byte
}

// handleAPNs answers POST /3/device/{token} the way APNs does.
func (s *Server) handleAPNs(w http.ResponseWriter, r *http.Request) {
	s.apns.received.Add(1)
	n, why := s.readAPNs(r)
	if why == reasonDelivered {
		why = apnsOutcome(n.token)
	}
	if !s.wait(r.Context()) {
		return
	}
	id := r.Header.Get("apns-id")
	if id == "" || why == reasonBadMessageID {
		id = newUUID()
	}
	h := w.Header()
	h["Apns-Id"] = []string{id}
	if why != reasonDelivered {
		s.apns.reject(why)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "sandbox apns rejected",
				slog.String("reason", why.String()), slog.String("token", shortToken(n.token)))
		}
		writeAPNsError(w, why)
		return
	}
	s.apns.accept(reasonDelivered)
	if s.apnsHistory.enabled() {
		s.apnsHistory.add(Received{Token: n.token, Topic: n.topic, PushType: n.pushType, Headers: headerMap(r.Header), Body: n.body})
	}
	h["Apns-Unique-Id"] = []string{newUUID()}
	w.WriteHeader(http.StatusOK)
}

// apnsOutcome is the sandbox's answer for an acceptable request, chosen by token prefix.
func apnsOutcome(token string) reason {
	switch {
	case strings.HasPrefix(token, "unregistered"):
		return reasonUnregistered
	case strings.HasPrefix(token, "baddevice"):
		return reasonBadDeviceToken
	case strings.HasPrefix(token, "unavailable"):
		return reasonServiceUnavailable
	case strings.HasPrefix(token, "toomany"):
		return reasonTooManyRequests
	}
	return reasonDelivered
}

// readAPNs checks the request in about the order APNs does and reads the payload.
func (s *Server) readAPNs(r *http.Request) (apnsRequest, reason) {
	var n apnsRequest
	if r.ProtoMajor != 2 {
		return n, reasonHTTP2Required
	}
	if r.Method != http.MethodPost {
		return n, reasonMethodNotAllowed
	}
	n.token = strings.TrimPrefix(r.URL.Path, "/3/device/")
	if strings.Contains(n.token, "/") {
		return n, reasonBadPath
	}
	if n.token == "" {
		return n, reasonMissingDeviceToken
	}

	var certTopic string
	if authz := r.Header.Get("Authorization"); authz != "" {
		bearer, ok := cutPrefixFold(authz, "bearer ")
		if !ok {
			return n, reasonInvalidProviderToken
		}
		if why := s.checkProviderToken(bearer, time.Now()); why != reasonDelivered {
			return n, why
		}
	} else if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		if certTopic = certTopicOf(r); certTopic == "" {
			return n, reasonBadCertificate
		}
	} else {
		return n, reasonMissingProviderToken
	}

	n.pushType = r.Header.Get("apns-push-type")
	suffix, ok := topicSuffix(n.pushType)
	if !ok {
		return n, reasonInvalidPushType
	}
	n.topic = r.Header.Get("apns-topic")
	if n.topic == "" {
		if certTopic == "" {
			return n, reasonMissingTopic
		}
		// With a single-topic certificate APNs defaults to the certificate's topic.
		n.topic = certTopic + suffix
	}
	base, found := strings.CutSuffix(n.topic, suffix)
	switch {
	case !found, base == "":
		return n, reasonTopicDisallowed
	case certTopic != "" && base != certTopic:
		return n, reasonTopicDisallowed
	case certTopic == "" && len(s.apnsTopics) > 0 && !s.apnsTopics[base]:
		return n, reasonTopicDisallowed
	}

	if why := checkAPNsHeaders(r.Header); why != reasonDelivered {
		return n, why
	}

	limit := apnsMaxPayload
	if n.pushType == "voip" {
		limit = apnsMaxVoIPPayload
	}
	if r.ContentLength > int64(limit) {
		return n, reasonPayloadTooLarge
	}
	body, tooLarge, err := readBody(r.Body, r.ContentLength, limit)
	switch {
	case tooLarge:
		return n, reasonPayloadTooLarge
	case err != nil:
		return n, reasonBadPayload
	case len(body) == 0:
		return n, reasonPayloadEmpty
	}
	n.body = body
	return n, checkAPNsPayload(body, n.pushType)
}

// checkAPNsHeaders validates the optional apns-* headers' formats.
func checkAPNsHeaders(h http.Header) reason {
	switch h.Get("apns-priority") {
	case "", "10", "5", "1":
	default:
		return reasonBadPriority
	}
	if e := h.Get("apns-expiration"); e != "" {
		if _, err := strconv.ParseInt(e, 10, 64); err != nil {
			return reasonBadExpirationDate
		}
	}
	if id := h.Get("apns-id"); id != "" && !isUUID(id) {
		return reasonBadMessageID
	}
	if len(h.Get("apns-collapse-id")) > apnsMaxCollapseID {
		return reasonBadCollapseID
	}
	return reasonDelivered
}

// checkAPNsPayload requires a JSON dictionary, with an aps dictionary for user-visible and background pushes.
func checkAPNsPayload(body []byte, pushType string) reason {
	if !validObject(body) {
		return reasonBadPayload
	}
	switch pushType {
	case "", "alert", "background", "liveactivity":
		switch memberKind(body, "aps") {
		case 0, 'n':
			return reasonPayloadEmpty
		case '{':
		default:
			return reasonBadPayload
		}
	}
	return reasonDelivered
}

// topicSuffix is the apns-topic suffix Apple requires for a push type.
func topicSuffix(pushType string) (string, bool) {
	switch pushType {
	case "", "alert", "background", "mdm":
		return "", true
	case "voip":
		return ".voip", true
	case "complication":
		return ".complication", true
	case "fileprovider":
		return ".pushkit.fileprovider", true
	case "location":
		return ".location-query", true
	case "liveactivity":
		return ".push-type.liveactivity", true
	case "pushtotalk":
		return ".voip-ptt", true
	case "widgets":
		return ".push-type.widgets", true
	case "controls":
		return ".push-type.controls", true
	}
	return "", false
}

func apnsStatus(why reason) int {
	switch why {
	case reasonMissingProviderToken, reasonInvalidProviderToken, reasonExpiredProviderToken, reasonBadCertificate:
		return http.StatusForbidden
	case reasonBadPath:
		return http.StatusNotFound
	case reasonMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case reasonUnregistered:
		return http.StatusGone
	case reasonPayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case reasonTooManyRequests:
		return http.StatusTooManyRequests
	case reasonServiceUnavailable:
		return http.StatusServiceUnavailable
	case reasonHTTP2Required:
		return http.StatusHTTPVersionNotSupported
	}
	return http.StatusBadRequest
}

// writeAPNsError writes Apple's error body: {"reason":"…"}, with a timestamp for Unregistered.
func writeAPNsError(w http.ResponseWriter, why reason) {
	status := apnsStatus(why)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		h["Retry-After"] = []string{"1"}
	}
	b := make([]byte, 0, 64)
	b = append(b, `{"reason":"`...)
	b = append(b, why.String()...)
	b = append(b, '"')
	if why == reasonUnregistered {
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, time.Now().UnixMilli(), 10)
	}
	b = append(b, '}')
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func certTopicOf(r *http.Request) string {
	return certTopic(r.TLS.VerifiedChains[0][0])
}

// checkProviderToken checks an APNs provider token (ES256 JWT), verifying each distinct token once.
func (s *Server) checkProviderToken(bearer string, now time.Time) reason {
	e, ok := s.providerTokens.get(bearer)
	if !ok {
		iat, err := s.verifyProviderToken(bearer)
		if err != nil {
			return reasonInvalidProviderToken
		}
		e = providerToken{iat: iat, seen: now.UnixNano()}
		s.providerTokens.put(bearer, e)
	}
	if now.Sub(time.Unix(e.iat, 0)) > providerTokenLife || s.expiredByControl(e) {
		return reasonExpiredProviderToken
	}
	return reasonDelivered
}

// ExpireProviderTokens makes APNs answer 403 ExpiredProviderToken to every
// provider token issued before now, as Apple does to a token it no longer
// honours. A token's iat has whole seconds: one issued in the current second
// counts as older only when the sandbox saw it before this call.
func (s *Server) ExpireProviderTokens() {
	s.providerTokensExpired.Store(time.Now().UnixNano())
}

// expiredByControl reports whether ExpireProviderTokens expired the token.
func (s *Server) expiredByControl(e providerToken) bool {
	cut := s.providerTokensExpired.Load()
	if cut == 0 {
		return false
	}
	sec := cut / int64(time.Second)
	return e.iat < sec || (e.iat == sec && e.seen < cut)
}

type providerClaims struct {
	Issuer   string `json:"iss"`
	IssuedAt int64  `json:"iat"`
}

// Valid is checked by the sandbox itself, with Apple's rules.
func (providerClaims) Valid() error { return nil }

// verifyProviderToken returns the token's iat when it is a well-formed ES256 JWT signed by a configured key.
func (s *Server) verifyProviderToken(bearer string) (int64, error) {
	var claims providerClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithoutClaimsValidation())
	if len(s.apnsKeys) == 0 {
		tok, parts, err := p.ParseUnverified(bearer, &claims)
		if err != nil {
			return 0, err
		}
		if tok.Method.Alg() != jwt.SigningMethodES256.Alg() {
			return 0, errors.New("not ES256")
		}
		if kid, _ := tok.Header["kid"].(string); kid == "" {
			return 0, errors.New("no kid")
		}
		if sig, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || len(sig) != 64 {
			return 0, errors.New("malformed ES256 signature")
		}
	} else {
		_, err := p.ParseWithClaims(bearer, &claims, func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if k := s.apnsKeys[kid]; k != nil {
				return k, nil
			}
			return nil, errors.New("unknown kid")
		})
		if err != nil {
			return 0, err
		}
	}
	if claims.Issuer == "" || claims.IssuedAt == 0 {
		return 0, errors.New("missing iss or iat")
	}
	return claims.IssuedAt, nil
}

// maxCachedProviderTokens bounds the verified-token cache; clients reuse a token for up to an hour.
const maxCachedProviderTokens = 4096

// jwtCache remembers verified provider tokens, so that the ECDSA check runs
// once per token rather than once per push.
type jwtCache struct {
	m atomic.Pointer[sync.Map]
	n atomic.Int64
}

// providerToken is what the sandbox keeps of a verified provider token: its
// iat, and when it first saw it (Unix nanoseconds).
type providerToken struct {
	iat, seen int64
}

func newJWTCache() *jwtCache {
	c := &jwtCache{}
	c.m.Store(new(sync.Map))
	return c
}

func (c *jwtCache) get(token string) (providerToken, bool) {
	v, ok := c.m.Load().Load(token)
	if !ok {
		return providerToken{}, false
	}
	return v.(providerToken), true
}

func (c *jwtCache) put(token string, e providerToken) {
	if c.n.Add(1) > maxCachedProviderTokens {
		c.m.Store(new(sync.Map))
		c.n.Store(1)
	}
	c.m.Load().LoadOrStore(token, e)
}

// readBody reads at most limit bytes, sized by the Content-Length hint when there is one.
func readBody(body io.Reader, size int64, limit int) (b []byte, tooLarge bool, err error) {
	capacity := 512
	if size >= 0 && size <= int64(limit) {
		capacity = int(size) + 1 // room to see EOF without growing
	}
	buf := make([]byte, 0, capacity)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, true, nil
		}
		if err == io.EOF {
			return buf, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// newUUID returns a random (version 4) UUID in canonical form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
