package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// errSlowPath sends a body the fast decoder does not handle to encoding/json.
var errSlowPath = errors.New("mattermost push: not on the fast path")

// DecodeMattermost decodes a send_push body. Bodies of the shape real
// servers send (one flat object, known fields of the right types, unknown
// fields of any shape) take a scanner whose strings share one copy of the
// body (only escaped ones are copied again); anything else goes through
// encoding/json, so results and errors are exactly encoding/json's either
// way (a differential test checks it).
func DecodeMattermost(body []byte, p *MattermostPush) error {
	var fast MattermostPush
	if decodeMattermostFast(body, &fast) == nil {
		*p = fast
		return nil
	}
	*p = MattermostPush{}
	return json.Unmarshal(body, p)
}

// mmScanner walks one JSON document.
type mmScanner struct {
	b []byte
	// str is b as a string: the decoded strings are slices of it.
	str string
	i   int
}

func (s *mmScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *mmScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func decodeMattermostFast(body []byte, p *MattermostPush) error {
	s := &mmScanner{b: body, str: string(body)}
	if s.peek() != '{' {
		return errSlowPath
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return s.end()
	}
	for {
		if s.peek() != '"' {
			return errSlowPath
		}
		key, ok := s.key()
		if !ok || s.peek() != ':' {
			return errSlowPath
		}
		s.i++
		s.ws()
		if err := s.field(key, p); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return s.end()
		default:
			return errSlowPath
		}
	}
}

// end accepts only whitespace after the object, as json.Unmarshal does.
func (s *mmScanner) end() error {
	if s.peek() != 0 || s.i != len(s.b) {
		return errSlowPath
	}
	return nil
}

// key reads an object key without copying it; keys with escapes take the slow path.
func (s *mmScanner) key() ([]byte, bool) {
	s.i++
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], utf8.Valid(s.b[start : s.i-1])
		case c == '\\' || c < 0x20:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// field stores the value at the scanner into the field named key.
func (s *mmScanner) field(key []byte, p *MattermostPush) error {
	var dst *string
	switch string(key) {
	case "ack_id":
		dst = &p.AckID
	case "platform":
		dst = &p.Platform
	case "server_id":
		dst = &p.ServerID
	case "device_id":
		dst = &p.DeviceID
	case "post_id":
		dst = &p.PostID
	case "category":
		dst = &p.Category
	case "sound":
		dst = &p.Sound
	case "message":
		dst = &p.Message
	case "team_id":
		dst = &p.TeamID
	case "channel_id":
		dst = &p.ChannelID
	case "root_id":
		dst = &p.RootID
	case "channel_name":
		dst = &p.ChannelName
	case "type":
		dst = &p.Type
	case "sub_type":
		dst = &p.SubType
	case "transport":
		dst = &p.Transport
	case "sender_id":
		dst = &p.SenderID
	case "sender_name":
		dst = &p.SenderName
	case "override_username":
		dst = &p.OverrideUsername
	case "override_icon_url":
		dst = &p.OverrideIconURL
	case "from_webhook":
		dst = &p.FromWebhook
	case "version":
		dst = &p.Version
	case "signature":
		dst = &p.Signature
	case "badge":
		tok, ok := s.number()
		if !ok {
			return errSlowPath
		}
		n, err := strconv.Atoi(tok)
		if err != nil {
			return errSlowPath
		}
		p.Badge = n
		return nil
	case "cont_ava":
		start := s.i
		if !s.skip() {
			return errSlowPath
		}
		raw := bytes.TrimSpace(s.b[start:s.i])
		if raw[0] == '{' || raw[0] == '[' {
			return errSlowPath
		}
		return p.ContentAvailable.UnmarshalJSON(raw)
	case "is_crt_enabled":
		return s.boolean(&p.IsCRTEnabled)
	case "is_id_loaded":
		return s.boolean(&p.IsIDLoaded)
	default:
		if knownMattermostKey(string(key)) {
			return errSlowPath // a case variant: encoding/json matches keys case-insensitively
		}
		if !s.skip() {
			return errSlowPath
		}
		return nil
	}
	switch s.peek() {
	case '"':
		v, ok := s.rawString()
		if !ok {
			return errSlowPath
		}
		*dst = v
		return nil
	case 'n':
		if !s.literal("null") {
			return errSlowPath
		}
		return nil
	}
	return errSlowPath
}

// mattermostKeys are the wire names, for spotting case variants.
const mattermostKeys = " ack_id platform server_id device_id post_id category sound message badge cont_ava team_id channel_id root_id channel_name type sub_type transport sender_id sender_name override_username override_icon_url from_webhook version is_crt_enabled is_id_loaded signature "

func knownMattermostKey(key string) bool {
	return strings.Contains(mattermostKeys, " "+strings.ToLower(key)+" ")
}

func (s *mmScanner) boolean(dst *bool) error {
	switch {
	case s.literal("true"):
		*dst = true
	case s.literal("false"):
		*dst = false
	case s.literal("null"):
	default:
		return errSlowPath
	}
	return nil
}

func (s *mmScanner) literal(lit string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

// number returns a JSON number token.
func (s *mmScanner) number() (string, bool) {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	if s.i == start {
		return "", false
	}
	if !validNumber(s.b[start:s.i]) {
		return "", false
	}
	return s.str[start:s.i], true
}

// rawString reads a string at the scanner, unescaping it; invalid UTF-8 and
// malformed escapes take the slow path.
func (s *mmScanner) rawString() (string, bool) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.str[start:s.i]
			s.i++
			if !utf8.ValidString(raw) {
				return "", false
			}
			return raw, true
		case c == '\\':
			return s.escapedString(start)
		case c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

func (s *mmScanner) escapedString(start int) (string, bool) {
	out := make([]byte, 0, 2*(s.i-start)+16)
	out = append(out, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return "", false
		}
		s.i += 2
		switch s.b[s.i-1] {
		case '"', '\\', '/':
			out = append(out, s.b[s.i-1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// A lone surrogate becomes U+FFFD in encoding/json; leave those to it.
				if s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
					return "", false
				}
				s.i += 2
				r2, ok := s.hex4()
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", false
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
}

func (s *mmScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(n), true
}

// skip passes over one value of any shape, checking its syntax.
func (s *mmScanner) skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.rawString()
		return ok
	case c == '{' || c == '[':
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		s.i++
		if s.peek() == close {
			s.i++
			return true
		}
		for {
			if c == '{' {
				if s.peek() != '"' {
					return false
				}
				if _, ok := s.rawString(); !ok || s.peek() != ':' {
					return false
				}
				s.i++
			}
			if !s.skip() {
				return false
			}
			switch s.peek() {
			case ',':
				s.i++
			case close:
				s.i++
				return true
			default:
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		_, ok := s.number()
		return ok
	}
}

// validNumber checks JSON's number grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
func validNumber(b []byte) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}
