package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

const (
	sessionCookie = "pushgate_session"
	// csrfCookie carries the CSRF token of forms shown before sign-in (double submit).
	csrfCookie = "pushgate_csrf"
	sessionTTL = 12 * time.Hour
)

// contentSecurityPolicy allows only this origin's own stylesheet and script:
// no inline script, no framing, forms post only here.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

type ctxKey int

const (
	sessionKey ctxKey = iota
	csrfKey
)

func sessionFrom(ctx context.Context) *tenants.Session {
	s, _ := ctx.Value(sessionKey).(*tenants.Session)
	return s
}

func csrfFrom(ctx context.Context) string {
	c, _ := ctx.Value(csrfKey).(string)
	return c
}

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// Protect sets the security headers of every page and finds the request's
// session and CSRF token.
func (dash *Dashboard) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if dash.secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		ctx := r.Context()
		if c, err := r.Cookie(dash.cookieName(sessionCookie)); err == nil && len(c.Value) <= 64 {
			s, err := dash.d.Accounts.Session(ctx, hashSessionID(c.Value), dash.d.Now().UTC())
			switch {
			case err == nil:
				ctx = context.WithValue(ctx, sessionKey, s)
				ctx = context.WithValue(ctx, csrfKey, s.CSRF)
			case tenants.ErrorCode(err) != tenants.CodeNotFound:
				dash.fail(w, r, "", view{}, err)
				return
			}
		}
		if csrfFrom(ctx) == "" {
			token := ""
			if c, err := r.Cookie(dash.cookieName(csrfCookie)); err == nil && len(c.Value) == 43 {
				token = c.Value
			} else if token, err = randomToken(); err == nil {
				http.SetCookie(w, dash.cookie(csrfCookie, token, 0))
			}
			ctx = context.WithValue(ctx, csrfKey, token)
		}
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			h.Set("Cache-Control", "no-store") // pages show tokens and usage
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// CheckCSRF refuses a form post without the token of its session (or, before
// sign-in, of its CSRF cookie), or one a browser says came from another site.
func (dash *Dashboard) CheckCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		site := r.Header.Get("Sec-Fetch-Site")
		want := csrfFrom(r.Context())
		got := r.PostFormValue("csrf")
		if site == "cross-site" || site == "same-site" || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			dash.render(w, r, http.StatusForbidden, "error", view{Title: "Form expired",
				Error: "This form was not sent from this page or it expired. Go back, reload the page and send it again."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cookieName adds the __Host- prefix over https, so that browsers refuse the
// cookie from a subdomain or over plain http.
func (dash *Dashboard) cookieName(name string) string {
	if dash.secure {
		return "__Host-" + name
	}
	return name
}

func (dash *Dashboard) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: dash.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: dash.secure, SameSite: http.SameSiteLaxMode}
}

// startSession stores a new session for an account and sets its cookie.
func (dash *Dashboard) startSession(w http.ResponseWriter, r *http.Request, s tenants.Session) (*http.Request, error) {
	id, err := randomToken()
	if err != nil {
		return r, tenants.Internal(err, "creating a session")
	}
	if s.CSRF, err = randomToken(); err != nil {
		return r, tenants.Internal(err, "creating a session")
	}
	if old := sessionFrom(r.Context()); old != nil {
		// Signing in again replaces the session rather than keeping two alive.
		if err := dash.d.Accounts.DeleteSession(r.Context(), old.IDHash); err != nil {
			return r, err
		}
	}
	now := dash.d.Now().UTC()
	s.IDHash, s.CreatedAt, s.ExpiresAt = hashSessionID(id), now, now.Add(sessionTTL)
	if err := dash.d.Accounts.CreateSession(r.Context(), s); err != nil {
		return r, err
	}
	http.SetCookie(w, dash.cookie(sessionCookie, id, int(sessionTTL/time.Second)))
	ctx := context.WithValue(r.Context(), sessionKey, &s)
	return r.WithContext(context.WithValue(ctx, csrfKey, s.CSRF)), nil
}
