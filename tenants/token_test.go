package tenants

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"strings"
	"testing"
)

// Tokens already issued must stay valid: the checksum is still the CRC-32 (IEEE) of the body.
func TestChecksumIsCRC32OfTheBody(t *testing.T) {
	for range 100 {
		token, err := NewToken("us")
		if err != nil {
			t.Fatal(err)
		}
		body := token[:len(token)-tokenCheckLen]
		sum := crc32.ChecksumIEEE([]byte(body))
		want := make([]byte, tokenCheckLen)
		for i := tokenCheckLen - 1; i >= 0; i-- {
			want[i] = base62[sum%62]
			sum /= 62
		}
		if got := token[len(token)-tokenCheckLen:]; got != string(want) {
			t.Fatalf("checksum of %s… = %s, want %s", TokenHint(token), got, want)
		}
		if region, ok := TokenRegion(token); !ok || region != "us" {
			t.Fatalf("TokenRegion(new token) = %q, %v", region, ok)
		}
		typo := body[:10] + strings.ToUpper(body[10:11]) + body[11:] + token[len(body):]
		if _, ok := TokenRegion(typo); ok && typo != token {
			t.Fatalf("a token with a typo passed its checksum")
		}
	}
}

// Stored hashes must stay valid: HashToken is still the hex SHA-256 of the token.
func TestHashTokenIsTheHexSHA256(t *testing.T) {
	for _, token := range []string{"pgw_us_0123456789abcdefghijABCDEFGHIJ0123456789xxxxxx", "short", strings.Repeat("x", 300)} {
		sum := sha256.Sum256([]byte(token))
		if got, want := HashToken(token), hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("HashToken(%q) = %s, want %s", token, got, want)
		}
	}
}
