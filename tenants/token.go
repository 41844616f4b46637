package tenants

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
)

// Workspace tokens come in two formats, told apart by their length:
//
//	signed  pgw_us_<key id: 2><random: 27><MAC: 22>   58 characters
//	legacy  pgw_us_<random: 40><CRC-32: 6>            53 characters
//
// The prefix lets secret scanners recognise a leaked token, the region lets
// another region's gateway refuse it without a database, and the MAC, a
// truncated HMAC-SHA256 under a key only the gateway holds, lets it refuse a
// forged token without a query. Legacy tokens carry a public checksum only;
// they stay valid until their workspace rotates, unless refused by setting.
const (
	tokenPrefix = "pgw_"
	// accessTokenPrefix marks a Rocket.Chat Cloud access token: the same
	// format and length, so one cache, one MAC and one limit serve both.
	accessTokenPrefix = "pgc_"
	tokenHead         = len(tokenPrefix) + 3 // pgw_us_

	tokenKeyIDLen    = 2
	tokenSignedRand  = 27 // 160 bits
	tokenMACLen      = 22 // 128 bits of HMAC-SHA256
	tokenMACBytes    = 16
	tokenRandomLen   = 40 // legacy
	tokenCheckLen    = 6  // legacy
	minTokenKeyBytes = 32

	// TokenLen is the length of a token in the current, signed format.
	TokenLen = tokenHead + tokenKeyIDLen + tokenSignedRand + tokenMACLen
	// LegacyTokenLen is the length of a token in the legacy, checksummed format.
	LegacyTokenLen = tokenHead + tokenRandomLen + tokenCheckLen

	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// TokenKey is one MAC key for workspace tokens; its ID is written into every
// token it signs, so a key can be retired while its successor signs new ones.
type TokenKey struct {
	ID     string
	secret []byte
}

// ParseTokenKey reads "ID:SECRET": ID is two letters or digits, SECRET at
// least 32 bytes (for example `openssl rand -base64 32`).
func ParseTokenKey(s string) (TokenKey, error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return TokenKey{}, fmt.Errorf("expected ID:SECRET such as k1:$(openssl rand -base64 32), got no colon")
	}
	if len(id) != tokenKeyIDLen || !isBase62(id) {
		return TokenKey{}, fmt.Errorf("the key id %q must be exactly %d letters or digits, such as k1", id, tokenKeyIDLen)
	}
	if len(secret) < minTokenKeyBytes {
		return TokenKey{}, fmt.Errorf("the secret of key %s is %d bytes; at least %d are needed (openssl rand -base64 32)", id, len(secret), minTokenKeyBytes)
	}
	return TokenKey{ID: id, secret: []byte(secret)}, nil
}

// NewTokenKey returns a random key with the given id, for `serve --dev` and tests.
func NewTokenKey(id string) (TokenKey, error) {
	var b [33]byte
	if _, err := rand.Read(b[:]); err != nil {
		return TokenKey{}, err
	}
	return ParseTokenKey(id + ":" + hex.EncodeToString(b[:]))
}

// String is the key in the form ParseTokenKey reads, for writing it to a file.
func (k TokenKey) String() string { return k.ID + ":" + string(k.secret) }

// TokenKind is what TokenKeys.Check finds a token to be.
type TokenKind int

// The kinds of token: only signed and legacy ones are worth a lookup.
const (
	TokenMalformed TokenKind = iota // not a pgw_ token at all
	TokenForged                     // well formed, but its MAC or checksum is wrong, or its key unknown
	TokenSigned                     // MAC valid under a configured key
	TokenLegacy                     // the legacy format with a valid checksum
)

func (k TokenKind) String() string {
	return [...]string{"malformed", "forged", "signed", "legacy"}[k]
}

// TokenKeys signs new tokens with Current and still checks tokens signed by
// Previous, so keys can be rotated without invalidating issued tokens.
type TokenKeys struct {
	Current  TokenKey
	Previous []TokenKey
}

func (ks *TokenKeys) key(id string) (TokenKey, bool) {
	if ks.Current.ID == id {
		return ks.Current, true
	}
	for _, k := range ks.Previous {
		if k.ID == id {
			return k, true
		}
	}
	return TokenKey{}, false
}

// NewToken returns a fresh token of region signed with the current key.
func (ks *TokenKeys) NewToken(region string) (string, error) {
	return ks.newToken(tokenPrefix, region)
}

func (ks *TokenKeys) newToken(prefix, region string) (string, error) {
	var b strings.Builder
	b.Grow(TokenLen)
	b.WriteString(prefix)
	b.WriteString(region)
	b.WriteByte('_')
	b.WriteString(ks.Current.ID)
	if err := writeRandom62(&b, tokenSignedRand); err != nil {
		return "", err
	}
	body := b.String()
	mac := tokenMAC(ks.Current.secret, body)
	return body + string(mac[:]), nil
}

// Check says whether token is signed by one of the keys, a legacy token
// with a valid checksum, or neither; it never touches a database.
func (ks *TokenKeys) Check(token string) TokenKind {
	if _, ok := tokenShape(token); !ok {
		return TokenMalformed
	}
	if len(token) == LegacyTokenLen {
		if validChecksum(token) {
			return TokenLegacy
		}
		return TokenForged
	}
	k, ok := ks.key(token[tokenHead : tokenHead+tokenKeyIDLen])
	if !ok {
		return TokenForged
	}
	body := token[:len(token)-tokenMACLen]
	want := tokenMAC(k.secret, body)
	if subtle.ConstantTimeCompare(want[:], []byte(token[len(body):])) != 1 {
		return TokenForged
	}
	return TokenSigned
}

// tokenMAC is the base62 form of the first 128 bits of HMAC-SHA256(secret, body).
func tokenMAC(secret []byte, body string) [tokenMACLen]byte {
	m := hmac.New(sha256.New, secret)
	var buf [TokenLen]byte
	m.Write(append(buf[:0], body...))
	var sum [sha256.Size]byte
	full := m.Sum(sum[:0])
	var out [tokenMACLen]byte
	// Each 64-bit half fits in 11 base62 digits (62^11 > 2^64).
	for half := range 2 {
		v := binary.BigEndian.Uint64(full[half*8:])
		for i := 10; i >= 0; i-- {
			out[half*11+i] = base62[v%62]
			v /= 62
		}
	}
	return out
}

// NewToken returns a fresh token of region in the legacy format, whose
// checksum anyone can compute; a Service without keys issues these.
func NewToken(region string) (string, error) {
	return newLegacyToken(tokenPrefix, region)
}

func newLegacyToken(prefix, region string) (string, error) {
	var b strings.Builder
	b.Grow(LegacyTokenLen)
	b.WriteString(prefix)
	b.WriteString(region)
	b.WriteByte('_')
	if err := writeRandom62(&b, tokenRandomLen); err != nil {
		return "", err
	}
	body := b.String()
	sum := checksum(body)
	return body + string(sum[:]), nil
}

// writeRandom62 appends n uniformly random base62 characters.
func writeRandom62(b *strings.Builder, n int) error {
	buf := make([]byte, n)
	// Rejection sampling keeps every character uniformly likely.
	for written := 0; written < n; {
		if _, err := rand.Read(buf); err != nil {
			return err
		}
		for _, c := range buf {
			if c < 248 && written < n { // 248 = 4*62
				b.WriteByte(base62[c%62])
				written++
			}
		}
	}
	return nil
}

// checksum is the base62 CRC-32 (IEEE) of a legacy token's body, computed
// over the string itself: crc32.ChecksumIEEE would need a copy on the heap.
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

func validChecksum(token string) bool {
	sum := checksum(token[:len(token)-tokenCheckLen])
	return string(sum[:]) == token[len(token)-tokenCheckLen:]
}

// tokenShape returns the region of a token of either format's length,
// prefix and alphabet, without checking its MAC or checksum.
func tokenShape(token string) (string, bool) {
	if (len(token) != TokenLen && len(token) != LegacyTokenLen) || !(strings.HasPrefix(token, tokenPrefix) || isAccessToken(token)) || token[tokenHead-1] != '_' {
		return "", false
	}
	if !isBase62(token[len(tokenPrefix):tokenHead-1]) || !isBase62(token[tokenHead:]) {
		return "", false
	}
	return token[len(tokenPrefix) : tokenHead-1], true
}

// isAccessToken says whether token has the prefix of a Rocket.Chat Cloud access token.
func isAccessToken(token string) bool { return strings.HasPrefix(token, accessTokenPrefix) }

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// HashToken returns the stored form of a token. Tokens carry at least 160
// bits of randomness, so a fast hash is enough; only the hash is ever stored.
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

// TokenHint is the part of a token that is safe to show and log: its prefix,
// region and first four characters after them.
func TokenHint(token string) string {
	n := tokenHead + 4
	if len(token) < n {
		return "pgw_…"
	}
	return token[:n] + "…"
}

// RedactTokens replaces every workspace token in s by its hint, so that a
// token pasted into an error or a URL never reaches a log in full.
func RedactTokens(s string) string {
	i := nextToken(s)
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
		i = nextToken(s)
	}
	b.WriteString(s)
	return b.String()
}

// nextToken is the index of the first workspace or access token prefix in s, or -1.
func nextToken(s string) int {
	i, j := strings.Index(s, tokenPrefix), strings.Index(s, accessTokenPrefix)
	if i < 0 || j >= 0 && j < i {
		return j
	}
	return i
}
