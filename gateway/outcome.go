package gateway

import (
	"strings"
	"time"
)

// Outcome is the one answer every provider gives for a notification.
type Outcome int

const (
	// Delivered means the provider accepted the notification.
	Delivered Outcome = iota
	// DeadToken means the device token will never work again and should be removed.
	DeadToken
	// RetryLater means a transient problem; the same notification may succeed later.
	RetryLater
	// Failed means the notification will never succeed as sent (payload, topic, our credentials).
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case DeadToken:
		return "dead_token"
	case RetryLater:
		return "retry_later"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Result is what a send returned after all attempts.
type Result struct {
	Outcome Outcome
	// ID is the provider's id for a delivered notification (apns-id, FCM message name).
	ID string
	// Reason is the provider's reason code ("Unregistered", "UNREGISTERED",
	// "PayloadTooLarge"), optionally followed by ": " and a detail for people.
	Reason string
	// RetryAfter is how long the provider asked us to wait, if it did.
	RetryAfter time.Duration
	// Throttled says the provider refused for our sending rate (HTTP 429),
	// not because it is down: callers answer "slow down", not "unavailable".
	Throttled bool
	// Attempts is the number of provider requests made (0 when rejected before sending).
	Attempts int
}

// Code returns the reason code without its detail.
func (r Result) Code() string {
	if i := strings.Index(r.Reason, ": "); i >= 0 {
		return r.Reason[:i]
	}
	return r.Reason
}

// Reasons that pushgate itself reports (provider reasons are passed through).
const (
	ReasonPayloadTooLarge = "PayloadTooLarge"
	ReasonInvalidPayload  = "InvalidPayload"
	ReasonTimeout         = "Timeout"
	ReasonCanceled        = "Canceled"
	ReasonTransport       = "TransportError"
	ReasonAuth            = "AuthError"
)

// knownReasons bounds the reason label of the sends metric; anything else is "other".
var knownReasons = []string{
	"none", "other",
	ReasonPayloadTooLarge, ReasonInvalidPayload, ReasonTimeout, ReasonCanceled, ReasonTransport, ReasonAuth,
	// APNs (https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns)
	"BadCollapseId", "BadDeviceToken", "BadExpirationDate", "BadMessageId", "BadPriority", "BadTopic",
	"DeviceTokenNotForTopic", "DuplicateHeaders", "IdleTimeout", "InvalidPushType", "MissingDeviceToken",
	"MissingTopic", "PayloadEmpty", "TopicDisallowed", "BadCertificate", "BadCertificateEnvironment",
	"ExpiredProviderToken", "Forbidden", "InvalidProviderToken", "MissingProviderToken", "BadPath",
	"MethodNotAllowed", "ExpiredToken", "Unregistered", "TooManyProviderTokenUpdates", "TooManyRequests",
	"InternalServerError", "ServiceUnavailable", "Shutdown",
	// FCM HTTP v1 error codes and Google platform codes
	"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH", "QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL",
	"THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND",
	"RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "UNKNOWN", "FAILED_PRECONDITION",
}

// reasonIndex maps a reason code to its position in knownReasons (1, "other", when unknown).
func reasonIndex(code string) int {
	if code == "" {
		return 0
	}
	for i, r := range knownReasons {
		if r == code {
			return i
		}
	}
	return 1
}
