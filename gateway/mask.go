package gateway

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaskToken shortens a device token (or any secret-ish identifier) for logs:
// its first 6 characters, "…" and its length, e.g. "9f8e7d…64".
func MaskToken(s string) string {
	keep := 6
	if len(s) < 4*keep {
		keep = len(s) / 4 // short values keep at most a quarter
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + "…" + strconv.Itoa(len(s))
}

// scrub replaces every occurrence of token in msg by its masked form.
func scrub(msg, token string) string {
	if len(token) < 4 || !strings.Contains(msg, token) {
		return msg
	}
	return strings.ReplaceAll(msg, token, MaskToken(token))
}
