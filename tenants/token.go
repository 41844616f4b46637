package tenants

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash/crc32"
	"strings"
)

// Workspace tokens look like pgw_us_<40 random base62><6 base62 checksum>:
// the prefix lets secret scanners recognise a leaked token, the region lets
// another region's gateway refuse it without a database, and the checksum
// rejects typos without a lookup.
const (
	tokenPrefix    = "pgw_"
	tokenRandomLen = 40
	tokenCheckLen  = 6
	// TokenLen is the length of every workspace token.
	TokenLen = len(tokenPrefix) + 3 + tokenRandomLen + tokenCheckLen
	base62   = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// NewToken returns a fresh token for a workspace of region.
func NewToken(region string) (string, error) {
	var b strings.Builder
	b.Grow(TokenLen)
	b.WriteString(tokenPrefix)
	b.WriteString(region)
	b.WriteByte('_')
	buf := make([]byte, tokenRandomLen)
	// Rejection sampling keeps every character uniformly likely.
	for n := 0; n < tokenRandomLen; {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, c := range buf {
			if c < 248 && n < tokenRandomLen { // 248 = 4*62
				b.WriteByte(base62[c%62])
				n++
			}
		}
	}
	body := b.String()
	return body + checksum(body), nil
}

func checksum(s string) string {
	sum := crc32.ChecksumIEEE([]byte(s))
	out := make([]byte, tokenCheckLen)
	for i := tokenCheckLen - 1; i >= 0; i-- {
		out[i] = base62[sum%62]
		sum /= 62
	}
	return string(out)
}

// TokenRegion returns the region a well-formed token was issued in, and
// whether the token is well formed (prefix, region, alphabet, checksum).
func TokenRegion(token string) (string, bool) {
	if len(token) != TokenLen || !strings.HasPrefix(token, tokenPrefix) || token[len(tokenPrefix)+2] != '_' {
		return "", false
	}
	region := token[len(tokenPrefix) : len(tokenPrefix)+2]
	for i := len(tokenPrefix) + 3; i < len(token); i++ {
		if strings.IndexByte(base62, token[i]) < 0 {
			return "", false
		}
	}
	body := token[:len(token)-tokenCheckLen]
	if checksum(body) != token[len(token)-tokenCheckLen:] {
		return "", false
	}
	return region, true
}

// HashToken returns the stored form of a token. Tokens carry 238 bits of
// randomness, so a fast hash is enough; only the hash is ever stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SameHash compares two token hashes in constant time.
func SameHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// TokenHint is the part of a token that is safe to show and log: its prefix,
// region and first four random characters.
func TokenHint(token string) string {
	n := len(tokenPrefix) + 3 + 4
	if len(token) < n {
		return "pgw_…"
	}
	return token[:n] + "…"
}

// RedactTokens replaces every workspace token in s by its hint, so that a
// token pasted into an error or a URL never reaches a log in full.
func RedactTokens(s string) string {
	i := strings.Index(s, tokenPrefix)
	if i < 0 {
		return s
	}
	var b strings.Builder
	for i >= 0 {
		b.WriteString(s[:i])
		end := i + len(tokenPrefix)
		for end < len(s) && (s[end] == '_' || strings.IndexByte(base62, s[end]) >= 0) {
			end++
		}
		b.WriteString(TokenHint(s[i:end]))
		s = s[end:]
		i = strings.Index(s, tokenPrefix)
	}
	b.WriteString(s)
	return b.String()
}
