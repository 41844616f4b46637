package sandbox

import (
	"net/http"
	"strings"
	"sync/atomic"
)

// Stats counts what the sandbox received per kind of request since start or the last reset.
type Stats struct {
	APNs  KindStats `json:"apns"`
	FCM   KindStats `json:"fcm"`
	OAuth KindStats `json:"oauth"` // POST /token exchanges
}

// KindStats counts the requests of one kind and their outcomes by reason.
type KindStats struct {
	Received int64 `json:"received"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	// ByReason counts outcomes by the reason the sandbox answered ("delivered",
	// Apple's reason, FCM's error code, OAuth's error); only non-zero entries.
	ByReason map[string]int64 `json:"by_reason"`
}

// reason is an outcome the sandbox records; its String is the stats key.
type reason uint8

// The outcomes; the names are the providers' own wire reasons.
const (
	reasonDelivered reason = iota
	reasonValidated
	reasonIssued

	// APNs (https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns).
	reasonBadDeviceToken
	reasonUnregistered
	reasonServiceUnavailable
	reasonTooManyRequests
	reasonMissingDeviceToken
	reasonMissingTopic
	reasonTopicDisallowed
	reasonInvalidPushType
	reasonPayloadEmpty
	reasonBadPayload
	reasonPayloadTooLarge
	reasonMissingProviderToken
	reasonInvalidProviderToken
	reasonExpiredProviderToken
	reasonBadCertificate
	reasonBadPriority
	reasonBadExpirationDate
	reasonBadCollapseID
	reasonBadMessageID
	reasonMethodNotAllowed
	reasonBadPath
	reasonHTTP2Required

	// FCM error codes and Google API statuses.
	reasonFCMUnregistered
	reasonFCMInvalidArgument
	reasonFCMUnavailable
	reasonFCMQuotaExceeded
	reasonFCMUnauthenticated
	reasonFCMPermissionDenied
	reasonFCMNotFound

	// OAuth 2 token endpoint errors (RFC 6749 section 5.2).
	reasonInvalidGrant
	reasonInvalidRequest
	reasonInvalidScope
	reasonUnsupportedGrantType

	numReasons
)

func (r reason) String() string {
	switch r {
	case reasonDelivered:
		return "delivered"
	case reasonValidated:
		return "validated"
	case reasonIssued:
		return "issued"
	case reasonBadDeviceToken:
		return "BadDeviceToken"
	case reasonUnregistered:
		return "Unregistered"
	case reasonServiceUnavailable:
		return "ServiceUnavailable"
	case reasonTooManyRequests:
		return "TooManyRequests"
	case reasonMissingDeviceToken:
		return "MissingDeviceToken"
	case reasonMissingTopic:
		return "MissingTopic"
	case reasonTopicDisallowed:
		return "TopicDisallowed"
	case reasonInvalidPushType:
		return "InvalidPushType"
	case reasonPayloadEmpty:
		return "PayloadEmpty"
	case reasonBadPayload:
		return "BadPayload"
	case reasonPayloadTooLarge:
		return "PayloadTooLarge"
	case reasonMissingProviderToken:
		return "MissingProviderToken"
	case reasonInvalidProviderToken:
		return "InvalidProviderToken"
	case reasonExpiredProviderToken:
		return "ExpiredProviderToken"
	case reasonBadCertificate:
		return "BadCertificate"
	case reasonBadPriority:
		return "BadPriority"
	case reasonBadExpirationDate:
		return "BadExpirationDate"
	case reasonBadCollapseID:
		return "BadCollapseId"
	case reasonBadMessageID:
		return "BadMessageId"
	case reasonMethodNotAllowed:
		return "MethodNotAllowed"
	case reasonBadPath:
		return "BadPath"
	case reasonHTTP2Required:
		return "HTTP2Required"
	case reasonFCMUnregistered:
		return "UNREGISTERED"
	case reasonFCMInvalidArgument:
		return "INVALID_ARGUMENT"
	case reasonFCMUnavailable:
		return "UNAVAILABLE"
	case reasonFCMQuotaExceeded:
		return "QUOTA_EXCEEDED"
	case reasonFCMUnauthenticated:
		return "UNAUTHENTICATED"
	case reasonFCMPermissionDenied:
		return "PERMISSION_DENIED"
	case reasonFCMNotFound:
		return "NOT_FOUND"
	case reasonInvalidGrant:
		return "invalid_grant"
	case reasonInvalidRequest:
		return "invalid_request"
	case reasonInvalidScope:
		return "invalid_scope"
	case reasonUnsupportedGrantType:
		return "unsupported_grant_type"
	}
	return "unknown"
}

// counters are one kind's lock-free counters; the hot path only does atomic adds.
type counters struct {
	received atomic.Int64
	accepted atomic.Int64
	rejected atomic.Int64
	byReason [numReasons]atomic.Int64
}

func (c *counters) accept(r reason) {
	c.accepted.Add(1)
	c.byReason[r].Add(1)
}

func (c *counters) reject(r reason) {
	c.rejected.Add(1)
	c.byReason[r].Add(1)
}

func (c *counters) snapshot() KindStats {
	ks := KindStats{
		Received: c.received.Load(),
		Accepted: c.accepted.Load(),
		Rejected: c.rejected.Load(),
		ByReason: map[string]int64{},
	}
	for i := range c.byReason {
		if n := c.byReason[i].Load(); n != 0 {
			ks.ByReason[reason(i).String()] = n
		}
	}
	return ks
}

func (c *counters) reset() {
	c.received.Store(0)
	c.accepted.Store(0)
	c.rejected.Store(0)
	for i := range c.byReason {
		c.byReason[i].Store(0)
	}
}

// Received is one accepted notification as it reached the sandbox provider.
type Received struct {
	Token    string            `json:"token"`               // device token (APNs path, FCM message.token)
	Topic    string            `json:"topic,omitempty"`     // apns-topic, or the FCM message.topic
	PushType string            `json:"push_type,omitempty"` // apns-push-type
	Project  string            `json:"project,omitempty"`   // FCM project id
	Headers  map[string]string `json:"headers,omitempty"`   // request headers, lower-case names, without authorization
	Body     []byte            `json:"body"`                // the request body exactly as sent
}

// history is a bounded, lock-free ring of the last accepted notifications of one kind.
type history struct {
	slots []atomic.Pointer[historyEntry]
	next  atomic.Uint64 // sequence number of the next entry
	floor atomic.Uint64 // entries below this sequence were reset away
}

type historyEntry struct {
	seq uint64
	r   Received
}

func newHistory(size int) *history {
	return &history{slots: make([]atomic.Pointer[historyEntry], size)}
}

func (h *history) enabled() bool { return len(h.slots) > 0 }

func (h *history) add(r Received) {
	if !h.enabled() {
		return
	}
	seq := h.next.Add(1) - 1
	h.slots[seq%uint64(len(h.slots))].Store(&historyEntry{seq: seq, r: r})
}

// last returns up to n of the most recent entries, oldest first.
func (h *history) last(n int) []Received {
	if !h.enabled() || n <= 0 {
		return nil
	}
	end := h.next.Load()
	start := h.floor.Load()
	if size := uint64(len(h.slots)); end-start > size {
		start = end - size
	}
	if end-start > uint64(n) {
		start = end - uint64(n)
	}
	out := make([]Received, 0, end-start)
	for seq := start; seq < end; seq++ {
		e := h.slots[seq%uint64(len(h.slots))].Load()
		if e != nil && e.seq == seq {
			out = append(out, e.r)
		}
	}
	return out
}

func (h *history) reset() {
	h.floor.Store(h.next.Load())
}

// headerMap copies the request headers for the history, leaving out credentials.
func headerMap(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) == 0 || strings.EqualFold(k, "Authorization") {
			continue
		}
		m[strings.ToLower(k)] = v[0]
	}
	return m
}
