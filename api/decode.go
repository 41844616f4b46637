package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/pushgate/pushgate/tenants"
)

// decodeStrict reads one JSON object into v, refusing unknown fields, wrong
// types and trailing data, with an error that names the field. An empty body
// decodes as {} when allowEmpty is set.
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
