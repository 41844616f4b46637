package sandbox

import (
	"bytes"
	"encoding/json"
)

// The payload checks walk the JSON themselves instead of decoding it into
// values: after json.Valid (a flat state machine) they only skip bytes, which
// keeps reflection and stack growth off the per-request goroutines.

// validObject reports whether b is one valid JSON object.
func validObject(b []byte) bool {
	i := skipSpace(b, 0)
	return i < len(b) && b[i] == '{' && json.Valid(b)
}

// eachMember calls fn with each member's unescaped name and raw value, in
// order, until fn returns false. obj must be a valid JSON object.
func eachMember(obj []byte, fn func(name, value []byte) bool) {
	i := skipSpace(obj, 0) + 1 // past '{'
	for {
		i = skipSpace(obj, i)
		if obj[i] == '}' {
			return
		}
		end := skipString(obj, i)
		name, _ := jsonString(obj[i:end])
		i = skipSpace(obj, skipSpace(obj, end)+1) // past ':'
		vend := skipValue(obj, i)
		if !fn(name, obj[i:vend]) {
			return
		}
		i = skipSpace(obj, vend)
		if obj[i] == ',' {
			i++
		}
	}
}

// memberKind returns the first byte of the value of the top-level member key
// in obj (the last one if repeated, as encoding/json does), or 0 when absent.
func memberKind(obj []byte, key string) byte {
	var kind byte
	eachMember(obj, func(name, value []byte) bool {
		if string(name) == key {
			kind = value[0]
		}
		return true
	})
	return kind
}

// jsonString returns the contents of the JSON string literal q; ok is false when q is no string.
func jsonString(q []byte) (s []byte, ok bool) {
	if len(q) < 2 || q[0] != '"' {
		return nil, false
	}
	inner := q[1 : len(q)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, true
	}
	var u string
	if json.Unmarshal(q, &u) != nil {
		return nil, false
	}
	return []byte(u), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\r' && b[i] != '\n' {
		i++
	}
	return i
}
