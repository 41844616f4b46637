package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/pushgate/pushgate/tenants"
)

// decodeStrict reads one JSON object into v, refusing unknown fields, wrong
// types, trailing data and text that decoding would change, with an error
// that names the field. An empty body decodes as {} when allowEmpty is set.
func decodeStrict(r *http.Request, v any, allowEmpty bool) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return tenants.Errorf(tenants.CodeInvalid, "request body is empty; send a JSON object")
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return tenants.Errorf(tenants.CodeInvalid, "request body has data after the JSON object")
	}
	return nil
}

// checkJSONText refuses a JSON body with a string that encoding/json would
// silently turn into U+FFFD (invalid UTF-8, an unpaired surrogate escape),
// naming the field by its path (options.apn.title, tags[2]). A clean body
// costs one utf8.Valid pass, so the push protocols can call it on every body.
func checkJSONText(body []byte) error {
	if utf8.Valid(body) && !hasSurrogateEscape(body) {
		return nil
	}
	return findChangedString(body)
}

// hasSurrogateEscape reports whether body may hold a \uD800–\uDFFF escape.
func hasSurrogateEscape(body []byte) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`\u`))
		if j < 0 || i+j+3 >= len(body) {
			return false
		}
		i += j + 2
		if (body[i] == 'd' || body[i] == 'D') && strings.IndexByte("89abcdefABCDEF", body[i+1]) >= 0 {
			return true
		}
	}
}

// jsonFrame is one open object or array while scanning for a changed string.
type jsonFrame struct {
	array   bool
	index   int    // of the current element, in an array
	key     string // of the current member, in an object
	wantKey bool
}

// findChangedString walks body's strings, tracking where each sits, and
// reports the first one that is not valid UTF-8 or has a lone surrogate.
func findChangedString(body []byte) error {
	var stack []jsonFrame
	for i := 0; i < len(body); {
		var top *jsonFrame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch c := body[i]; {
		case c == '{' || c == '[':
			stack = append(stack, jsonFrame{array: c == '[', wantKey: c == '{'})
		case c == '}' || c == ']':
			if top != nil {
				stack = stack[:len(stack)-1]
			}
		case c == ',' && top != nil:
			if top.array {
				top.index++
			} else {
				top.wantKey = true
			}
		case c == ':' && top != nil:
			top.wantKey = false
		case c == '"':
			end := stringEnd(body, i)
			raw := body[i:end]
			isKey := top != nil && !top.array && top.wantKey
			if !unchangedByDecoding(raw) {
				where := jsonPath(stack, !isKey)
				if isKey {
					if where == "" {
						return tenants.Errorf(tenants.CodeInvalid, "a field name is not valid UTF-8; send the body UTF-8 encoded")
					}
					return &tenants.Error{Code: tenants.CodeInvalid, Field: where,
						Message: where + ": a field name in it is not valid UTF-8; send the body UTF-8 encoded"}
				}
				if where == "" {
					return tenants.Errorf(tenants.CodeInvalid, "request body is a string that is not valid UTF-8")
				}
				return tenants.FieldError(where, "is not valid UTF-8 (or has a lone UTF-16 surrogate escape); send the text UTF-8 encoded")
			}
			if isKey {
				_ = json.Unmarshal(raw, &top.key)
			}
			i = end
			continue
		}
		i++
	}
	return nil
}

// stringEnd is the index just past the string literal starting at body[start].
func stringEnd(body []byte, start int) int {
	for i := start + 1; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(body)
}

// unchangedByDecoding reports whether the string literal raw decodes to
// exactly what it says: valid UTF-8 and every surrogate escape paired.
func unchangedByDecoding(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r := hex4(raw, i+1)
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return false
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return false
			}
			if low := hex4(raw, i+3); low < 0xDC00 || low > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

// hex4 reads four hex digits at raw[i:], or -1.
func hex4(raw []byte, i int) rune {
	if i+4 > len(raw) {
		return -1
	}
	var r rune
	for _, c := range raw[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

// jsonPath names the current place in stack: keys joined by dots, array
// elements as [i]; withLast leaves out the innermost key when false.
func jsonPath(stack []jsonFrame, withLast bool) string {
	var b strings.Builder
	for n, f := range stack {
		last := n == len(stack)-1
		switch {
		case f.array:
			fmt.Fprintf(&b, "[%d]", f.index)
		case last && !withLast:
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
	}
	return b.String()
}

// jsonError turns a decoding error into an invalid-input error a person can act on.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return tenants.Errorf(tenants.CodeInvalid, "request body must be a JSON object, not %s", typeErr.Value)
		}
		return tenants.FieldError(field, "must be %s, got %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return tenants.Errorf(tenants.CodeInvalid, "request body is not valid JSON (at byte %d): %v", syntaxErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return tenants.FieldError(name, "is not a field of this request; check its spelling")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return tenants.Errorf(tenants.CodeInvalid, "request body is truncated JSON")
	}
	return tenants.Errorf(tenants.CodeInvalid, "request body is not valid JSON: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	}
	return fmt.Sprintf("a %s", k)
}

// maxJSONDepth bounds nesting in push bodies; real ones nest three levels.
const maxJSONDepth = 16

// checkDepth refuses JSON nested deeper than max, scanning once without decoding.
func checkDepth(body []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case escaped:
			escaped = false
		case inString:
			if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return tenants.Errorf(tenants.CodeInvalid, "request body nests deeper than %d levels", max)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// readBody reads a bounded body, answering an oversized one with an invalid-input error.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodyBytes {
		return nil, tooLarge(r.ContentLength)
	}
	body, err := readAll(r.Body, r.ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooLarge(-1)
		}
		return nil, tenants.Errorf(tenants.CodeInvalid, "reading the request body: %v", err)
	}
	if err := checkDepth(body, maxJSONDepth); err != nil {
		return nil, err
	}
	return body, nil
}

// readAll reads r whole into one allocation when its size is known (as
// chat servers send it), where io.ReadAll grows its buffer three times for a
// typical push.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > maxBodyBytes {
		return io.ReadAll(r)
	}
	// One byte more, so that the read that reports the end has room.
	b := make([]byte, 0, size+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than announced: let append grow it
		}
	}
}

// tooLarge is the error for a body over maxBodyBytes; size is -1 when unknown.
func tooLarge(size int64) error {
	msg := fmt.Sprintf("request body is larger than the limit of %d bytes", maxBodyBytes)
	if size > 0 {
		msg = fmt.Sprintf("request body is %d bytes; the limit is %d", size, maxBodyBytes)
	}
	return &tenants.Error{Code: tenants.CodeInvalid, Reason: "too_large", Message: msg}
}
