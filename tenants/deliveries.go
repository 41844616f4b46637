package tenants

import (
	"context"
	"time"
)

// The delivery log keeps, for 7 days, what became of each notification of a
// workspace, without any message content, so that an admin can answer "why
// didn't my phone ring". The push path hands entries to a DeliveryBuffer;
// a DeliveryWriter stores them in batches.

// DeliveryRetention is how long delivery log entries are kept.
const DeliveryRetention = 7 * 24 * time.Hour

// DeliveryResult is what became of one notification.
type DeliveryResult uint8

// The results, in the words the dashboard filters by.
const (
	// DeliveryDelivered: Apple or Google accepted it.
	DeliveryDelivered DeliveryResult = iota + 1
	// DeliveryDeadToken: the device token will never work again (the app was
	// uninstalled, or the token belongs to another app); the chat server removes it.
	DeliveryDeadToken
	// DeliveryFailed: the provider refused it for good, or it could not be built (too large).
	DeliveryFailed
	// DeliveryRetryLater: the provider was unavailable or throttled us; the chat server may retry.
	DeliveryRetryLater
	// DeliveryRefused: pushgate sent nothing: quota used up, rate limited, suspended, terms not accepted.
	DeliveryRefused
	// DeliveryDuplicate: a repeat of a notification already delivered; nothing was sent again.
	DeliveryDuplicate
)

var deliveryResultNames = [...]string{"", "delivered", "dead_token", "failed", "retry_later", "refused", "duplicate"}

func (r DeliveryResult) String() string {
	if int(r) < len(deliveryResultNames) {
		return deliveryResultNames[r]
	}
	return "unknown"
}

// DeliveryResults lists every result, in the order the dashboard offers them.
func DeliveryResults() []DeliveryResult {
	return []DeliveryResult{DeliveryDelivered, DeliveryDeadToken, DeliveryFailed, DeliveryRetryLater, DeliveryRefused, DeliveryDuplicate}
}

// ParseDeliveryResult reads a result name; ok is false for an unknown one.
func ParseDeliveryResult(s string) (DeliveryResult, bool) {
	for i, n := range deliveryResultNames {
		if i > 0 && n == s {
			return DeliveryResult(i), true
		}
	}
	return 0, false
}

// The protocols a delivery came through.
const (
	ProtocolMattermost = "mattermost"
	ProtocolRocketChat = "rocketchat"
	// ProtocolTest is a test push sent from the dashboard.
	ProtocolTest = "test"
)

// Bounds of a delivery's text fields, so an entry's size is bounded.
const (
	DeliveryRefMax    = 64
	DeliveryAppMax    = 64
	DeliveryReasonMax = 160
	// DeliveryTokenPrefix is how much of a device token the log keeps.
	DeliveryTokenPrefix = 6
)

// Delivery is one entry of the delivery log.
type Delivery struct {
	// ID orders entries of the same instant; set by the store.
	ID          int64
	WorkspaceID string
	At          time.Time
	Protocol    string
	// Ref is the Mattermost ack_id or the Rocket.Chat messageId (or "notId N"), if any.
	Ref string
	// App is the push app (the Mattermost platform name: apple_rn, android_rn …).
	App    string
	Result DeliveryResult
	// Reason is the provider's reason code, or pushgate's for a refusal.
	Reason string
	// TokenPrefix is the device token's first DeliveryTokenPrefix characters.
	TokenPrefix string
}

// TokenPrefixOf cuts a device token to what the log may keep.
func TokenPrefixOf(token string) string {
	if len(token) > DeliveryTokenPrefix {
		return token[:DeliveryTokenPrefix]
	}
	return token
}

// clip bounds s to n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Bounded returns d with every text field cut to its bound.
func (d Delivery) Bounded() Delivery {
	d.Ref = clip(d.Ref, DeliveryRefMax)
	d.App = clip(d.App, DeliveryAppMax)
	d.Reason = clip(d.Reason, DeliveryReasonMax)
	d.TokenPrefix = clip(d.TokenPrefix, DeliveryTokenPrefix)
	return d
}

// DeliveryCursor is a position in a workspace's log, newest first: the
// entries strictly older (or, with After, newer) than At and ID.
type DeliveryCursor struct {
	At time.Time
	ID int64
}

// DeliveryQuery selects a page of one workspace's delivery log.
type DeliveryQuery struct {
	WorkspaceID string
	// Result and App filter when set.
	Result DeliveryResult
	App    string
	// Before pages to older entries; After to newer ones. At most one is set.
	Before *DeliveryCursor
	After  *DeliveryCursor
	// Limit is the page size (1 to 200).
	Limit int
}

// DeliveryPage is one page of entries, newest first.
type DeliveryPage struct {
	Entries []Delivery
	// Older and Newer say whether more entries lie beyond each end of the page.
	Older, Newer bool
}

// DeliveryStore keeps the delivery log.
type DeliveryStore interface {
	// SaveDeliveries stores a batch of entries in one statement.
	SaveDeliveries(ctx context.Context, batch []Delivery) error
	// Deliveries reads one page of a workspace's log.
	Deliveries(ctx context.Context, q DeliveryQuery) (DeliveryPage, error)
	// PurgeDeliveries deletes up to limit entries older than before and says how many it deleted.
	PurgeDeliveries(ctx context.Context, before time.Time, limit int) (int, error)
}
