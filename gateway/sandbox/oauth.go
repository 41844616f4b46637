package sandbox

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

const (
	jwtBearerGrant    = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	accessTokenLife   = time.Hour
	accessTokenPrefix = "ya29.sandbox." // ya29. is what Google's access tokens start with
	accessTokenMACLen = 16
	maxAssertionLife  = time.Hour + time.Minute // Google: exp at most 60 minutes after iat
	clockSkew         = 5 * time.Minute
	maxTokenForm      = 64 << 10
)

// The Google OAuth scopes that allow sending FCM messages.
const (
	scopeFirebaseMessaging = "https://www.googleapis.com/auth/firebase.messaging"
	scopeCloudPlatform     = "https://www.googleapis.com/auth/cloud-platform"
)

// handleToken is Google's OAuth 2 token endpoint for the service-account JWT grant (RFC 7523).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.oauth.received.Add(1)
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	if err := r.ParseForm(); err != nil {
		s.writeOAuthError(w, reasonInvalidRequest, "The request body is not a valid form.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != jwtBearerGrant {
		s.writeOAuthError(w, reasonUnsupportedGrantType, "Invalid grant_type: "+gt)
		return
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		s.writeOAuthError(w, reasonInvalidRequest, "Missing required parameter: assertion")
		return
	}
	now := time.Now()
	email, why, desc := s.checkAssertion(assertion, now)
	if why != reasonIssued {
		s.writeOAuthError(w, why, desc)
		return
	}
	s.oauth.accept(reasonIssued)
	body, _ := json.Marshal(struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}{s.issueAccessToken(email, now, now.Add(accessTokenLife)), int(accessTokenLife / time.Second), "Bearer"})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	_, _ = w.Write(body)
}

type assertionClaims struct {
	Issuer    string           `json:"iss"`
	Scope     string           `json:"scope"`
	Audience  jwt.ClaimStrings `json:"aud"`
	ExpiresAt int64            `json:"exp"`
	IssuedAt  int64            `json:"iat"`
}

// Valid is checked by the sandbox itself, with Google's rules.
func (assertionClaims) Valid() error { return nil }

// checkAssertion verifies a service account's signed JWT the way Google's token endpoint does.
func (s *Server) checkAssertion(assertion string, now time.Time) (email string, why reason, desc string) {
	var claims assertionClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation())
	if len(s.fcmAccounts) == 0 {
		tok, parts, err := p.ParseUnverified(assertion, &claims)
		if err != nil || tok.Method.Alg() != jwt.SigningMethodRS256.Alg() || parts[2] == "" {
			return "", reasonInvalidGrant, "Invalid JWT: the assertion is not a well-formed RS256 JWT."
		}
	} else {
		errUnknown := errors.New("account not found")
		_, err := p.ParseWithClaims(assertion, &claims, func(*jwt.Token) (any, error) {
			if k := s.fcmAccounts[claims.Issuer]; k != nil {
				return k, nil
			}
			return nil, errUnknown
		})
		switch {
		case errors.Is(err, errUnknown):
			return "", reasonInvalidGrant, "Invalid grant: account not found"
		case err != nil:
			return "", reasonInvalidGrant, "Invalid JWT Signature."
		}
	}
	if claims.Issuer == "" {
		return "", reasonInvalidGrant, "Invalid grant: account not found"
	}
	if len(claims.Audience) == 0 {
		return "", reasonInvalidGrant, "Invalid JWT: Failed audience check."
	}
	iat, exp := time.Unix(claims.IssuedAt, 0), time.Unix(claims.ExpiresAt, 0)
	if claims.IssuedAt == 0 || claims.ExpiresAt == 0 || !exp.After(now) || iat.After(now.Add(clockSkew)) || exp.Sub(iat) > maxAssertionLife {
		return "", reasonInvalidGrant, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	if !allowsMessaging(claims.Scope) {
		return "", reasonInvalidScope, "Invalid OAuth scope or ID token audience provided."
	}
	return claims.Issuer, reasonIssued, ""
}

func allowsMessaging(scope string) bool {
	for _, sc := range strings.Fields(scope) {
		if sc == scopeFirebaseMessaging || sc == scopeCloudPlatform {
			return true
		}
	}
	return false
}

func (s *Server) writeOAuthError(w http.ResponseWriter, why reason, desc string) {
	s.oauth.reject(why)
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{why.String(), desc})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(body)
}

// issueAccessToken signs (expiry, issue time, account) instead of storing
// tokens, so nothing grows with use.
func (s *Server) issueAccessToken(email string, issued, exp time.Time) string {
	payload := binary.BigEndian.AppendUint64(make([]byte, 0, 16+len(email)), uint64(exp.Unix()))
	payload = binary.BigEndian.AppendUint64(payload, uint64(issued.UnixNano()))
	payload = append(payload, email...)
	m := s.mac()
	m.Write(payload)
	sum := m.Sum(nil)
	s.macs.Put(m)
	return accessTokenPrefix + base64.RawURLEncoding.EncodeToString(payload) + "." +
		base64.RawURLEncoding.EncodeToString(sum[:accessTokenMACLen])
}

// RevokeAccessTokens makes FCM answer 401 UNAUTHENTICATED to every access
// token issued before now, as Google does after a service-account key is
// disabled; the token endpoint keeps issuing new ones.
func (s *Server) RevokeAccessTokens() {
	s.accessTokensRevoked.Store(time.Now().UnixNano())
}

// checkAccessToken reports whether tok is an unexpired, unrevoked access token this sandbox (or its persisted CA) issued.
func (s *Server) checkAccessToken(tok string, now time.Time) bool {
	rest, ok := strings.CutPrefix(tok, accessTokenPrefix)
	if !ok {
		return false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return false
	}
	var pbuf [256]byte
	payload, err := base64.RawURLEncoding.AppendDecode(pbuf[:0], []byte(rest[:dot]))
	if err != nil || len(payload) < 16 {
		return false
	}
	var mbuf [32]byte
	got, err := base64.RawURLEncoding.AppendDecode(mbuf[:0], []byte(rest[dot+1:]))
	if err != nil || len(got) != accessTokenMACLen {
		return false
	}
	m := s.mac()
	m.Write(payload)
	var sbuf [32]byte
	want := m.Sum(sbuf[:0])
	s.macs.Put(m)
	if !hmac.Equal(got, want[:accessTokenMACLen]) {
		return false
	}
	issued := int64(binary.BigEndian.Uint64(payload[8:16]))
	return now.Unix() < int64(binary.BigEndian.Uint64(payload[:8])) && issued >= s.accessTokensRevoked.Load()
}
