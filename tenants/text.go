package tenants

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// CheckText refuses a one-line text field that would be stored or shown
// other than as sent: invalid UTF-8, control characters (NUL, which
// PostgreSQL cannot store, included), bidirectional controls that reorder
// what a reader sees, and line or paragraph separators.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return FieldError(field, "is not valid UTF-8; send the text UTF-8 encoded")
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return FieldError(field, "contains the control character %s; send one line of visible text", codePoint(r))
		case unicode.Is(unicode.Bidi_Control, r):
			return FieldError(field, "contains the invisible bidirectional control %s, which changes how the text reads", codePoint(r))
		case r == '\u2028' || r == '\u2029':
			return FieldError(field, "contains the line separator %s; send one line of text", codePoint(r))
		}
	}
	return nil
}

func codePoint(r rune) string { return fmt.Sprintf("U+%04X", r) }
