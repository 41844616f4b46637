package tenants

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"math/big"
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
		if region, ok := tokenRegion(token); !ok || region != "us" {
			t.Fatalf("tokenRegion(new token) = %q, %v", region, ok)
		}
		typo := body[:10] + strings.ToUpper(body[10:11]) + body[11:] + token[len(body):]
		if _, ok := tokenRegion(typo); ok && typo != token {
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

func mustTokenKey(t testing.TB, s string) TokenKey {
	t.Helper()
	k, err := ParseTokenKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	testSecretA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaAAAA"
	testSecretB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbBBBB"
)

func TestParseTokenKey(t *testing.T) {
	for _, bad := range []string{"", "k1", "k1:short", "k:" + testSecretA, "k12:" + testSecretA, "k-:" + testSecretA} {
		t.Run("refused: "+RedactTokens(bad), func(t *testing.T) {
			if _, err := ParseTokenKey(bad); err == nil {
				t.Fatalf("ParseTokenKey(%q) accepted it", bad)
			}
		})
	}
	t.Run("a two-character id and a 32-byte secret are accepted", func(t *testing.T) {
		k := mustTokenKey(t, "k1:"+testSecretA)
		if k.ID != "k1" || k.String() != "k1:"+testSecretA {
			t.Fatalf("parsed %q as %q", "k1:"+testSecretA, k.String())
		}
	})
}

func TestTokenKeysCheck(t *testing.T) {
	a := mustTokenKey(t, "ka:"+testSecretA)
	b := mustTokenKey(t, "kb:"+testSecretB)
	keys := &TokenKeys{Current: a}
	signed, err := keys.NewToken("us")
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := NewToken("us")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a new token is signed, of the current length and region", func(t *testing.T) {
		if len(signed) != TokenLen || !strings.HasPrefix(signed, "pgw_us_ka") {
			t.Fatalf("new token %s… has length %d", TokenHint(signed), len(signed))
		}
		if got := keys.Check(signed); got != TokenSigned {
			t.Fatalf("Check(new token) = %v, want signed", got)
		}
		if region, ok := tokenRegion(signed); !ok || region != "us" {
			t.Fatalf("tokenRegion(new token) = %q, %v", region, ok)
		}
	})
	t.Run("a legacy token with a valid checksum is legacy", func(t *testing.T) {
		if got := keys.Check(legacy); got != TokenLegacy {
			t.Fatalf("Check(legacy) = %v, want legacy", got)
		}
	})
	t.Run("every one-character change of a signed token is forged", func(t *testing.T) {
		for i := tokenHead; i < len(signed); i++ {
			c := byte('x')
			if signed[i] == c {
				c = 'y'
			}
			bad := signed[:i] + string(c) + signed[i+1:]
			if got := keys.Check(bad); got != TokenForged {
				t.Fatalf("changing character %d gave %v, want forged", i, got)
			}
		}
	})
	t.Run("a token signed by another key is forged", func(t *testing.T) {
		other, _ := (&TokenKeys{Current: mustTokenKey(t, "ka:"+testSecretB)}).NewToken("us")
		if got := keys.Check(other); got != TokenForged {
			t.Fatalf("Check(token of a same-id other key) = %v, want forged", got)
		}
	})
	t.Run("a legacy token with a wrong checksum is forged", func(t *testing.T) {
		bad := legacy[:len(legacy)-1] + "x"
		if legacy[len(legacy)-1] == 'x' {
			bad = legacy[:len(legacy)-1] + "y"
		}
		if got := keys.Check(bad); got != TokenForged {
			t.Fatalf("Check(bad checksum) = %v, want forged", got)
		}
	})
	t.Run("anything else is malformed", func(t *testing.T) {
		for _, s := range []string{"", "pgw_us_", strings.Repeat("x", TokenLen), signed[:TokenLen-1], signed + "x", "pgw_us-" + signed[7:], strings.Replace(signed, "a", "-", 1)} {
			if got := keys.Check(s); got != TokenMalformed {
				t.Fatalf("Check(%q) = %v, want malformed", s, got)
			}
		}
	})
	t.Run("after a key rotation, tokens of the previous key still check and new ones use the new key", func(t *testing.T) {
		rotated := &TokenKeys{Current: b, Previous: []TokenKey{a}}
		if got := rotated.Check(signed); got != TokenSigned {
			t.Fatalf("token of the previous key: %v, want signed", got)
		}
		fresh, _ := rotated.NewToken("de")
		if !strings.HasPrefix(fresh, "pgw_de_kb") || rotated.Check(fresh) != TokenSigned {
			t.Fatalf("token after rotation %s… does not use key kb", TokenHint(fresh))
		}
		if got := keys.Check(fresh); got != TokenForged {
			t.Fatalf("a gateway without the new key took its token as %v, want forged", got)
		}
		retired := &TokenKeys{Current: b}
		if got := retired.Check(signed); got != TokenForged {
			t.Fatalf("token of a retired key: %v, want forged", got)
		}
	})
	t.Run("the MAC is the first 128 bits of HMAC-SHA256 over the body, in base62", func(t *testing.T) {
		body := signed[:len(signed)-tokenMACLen]
		m := hmac.New(sha256.New, []byte(testSecretA))
		m.Write([]byte(body))
		sum := m.Sum(nil)
		var want strings.Builder
		for half := range 2 {
			v := new(big.Int).SetBytes(sum[half*8 : half*8+8])
			s := v.Text(62)
			want.WriteString(strings.Repeat("0", 11-len(s)) + s)
		}
		if got := signed[len(body):]; got != translate62(want.String()) {
			t.Fatalf("MAC = %s, want %s", got, translate62(want.String()))
		}
	})
}

// translate62 maps math/big's base-62 digits (0-9a-zA-Z) to the token alphabet (0-9A-Za-z).
func translate62(s string) string {
	const bigDigits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(base62[strings.IndexByte(bigDigits, s[i])])
	}
	return b.String()
}

// tokenRegion returns the region a token was issued in and whether it is
// well formed, its checksum checked when it is a legacy token.
func tokenRegion(token string) (string, bool) {
	region, ok := tokenShape(token)
	if !ok || (len(token) == LegacyTokenLen && !validChecksum(token)) {
		return "", false
	}
	return region, true
}
