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
	sum := checksum(body)
	return body + string(sum[:]), nil
}

// checksum is the base62 CRC-32 (IEEE) of a token's body, computed over the
// string itself: crc32.ChecksumIEEE would need a copy of it on the heap.
func checksum(body string) [tokenCheckLen]byte {
	sum := ^uint32(0)
	for i := 0; i < len(body); i++ {
		sum = crc32.IEEETable[byte(sum)^body[i]] ^ sum>>8
	}
	sum = ^sum
	var out [tokenCheckLen]byte
	for i := tokenCheckLen - 1; i >= 0; i-- {
		out[i] = base62[sum%62]
		sum /= 62
	}
	return out
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
	sum := checksum(token[:len(token)-tokenCheckLen])
	if string(sum[:]) != token[len(token)-tokenCheckLen:] {
		return "", false
	}
	return region, true
}

// HashToken returns the stored form of a token. Tokens carry 238 bits of
// randomness, so a fast hash is enough; only the hash is ever stored.
func HashToken(token string) string {
	sum := tokenDigest(token)
	return hex.EncodeToString(sum[:])
}

// tokenDigest is the SHA-256 of a token, HashToken before hex; a
// well-formed token is copied on the stack, so it costs no allocation.
func tokenDigest(token string) [sha256.Size]byte {
	var buf [TokenLen]byte
	return sha256.Sum256(append(buf[:0], token...))
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
