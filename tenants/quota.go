package tenants

import (
	"context"
	"time"
)

// Period is a calendar month in UTC, written "2006-01".
type Period string

// PeriodOf returns the month that t falls in, in UTC.
func PeriodOf(t time.Time) Period { return Period(t.UTC().Format("2006-01")) }

// Start is the first instant of the period.
func (p Period) Start() time.Time {
	t, _ := time.Parse("2006-01", string(p))
	return t
}

// End is the first instant of the next period, when quotas reset.
func (p Period) End() time.Time { return p.Start().AddDate(0, 1, 0) }

// Decision is the quota store's answer to one notification.
type Decision int

// The decisions.
const (
	// Admitted: one unit was consumed (or the limit is unlimited); deliver it.
	Admitted Decision = iota + 1
	// Readmitted: a retry of a notification already counted but not delivered; deliver it without a new unit.
	Readmitted
	// Duplicate: the same notification was delivered within the window; answer as delivered, send nothing.
	Duplicate
	// Exhausted: the workspace has no units left this period; send nothing.
	Exhausted
)

func (d Decision) String() string {
	switch d {
	case Admitted:
		return "admitted"
	case Readmitted:
		return "readmitted"
	case Duplicate:
		return "duplicate"
	case Exhausted:
		return "exhausted"
	}
	return "unknown"
}

// Admission asks whether one notification of a workspace may be forwarded.
type Admission struct {
	WorkspaceID string
	// Limit is the workspace's monthly limit, or Unlimited.
	Limit int64
	// LimitVersion is the Workspace.ChangedAt that Limit was read with: a
	// limit published to the store with a newer version wins, so a plan
	// change applies on the next push on every replica however old their caches.
	LimitVersion time.Time
	// DedupeKey identifies the notification for duplicate suppression: a
	// short hash, never the payload. Empty: never suppressed.
	DedupeKey string
	At        time.Time
}

// Verdict is the answer to an Admission.
type Verdict struct {
	Decision Decision
	// Used is the period's count after this decision.
	Used  int64
	Limit int64
}

// Outcome is what became of a forwarded notification, for daily usage.
type Outcome string

// The outcomes counted per day besides "sent".
const (
	OutcomeDeadToken Outcome = "dead_token"
	OutcomeFailed    Outcome = "failed"
	// OutcomeRetryLater marks a transient failure.
	OutcomeRetryLater Outcome = "retry_later"
)

// DailyUsage is one day's counts of a workspace.
type DailyUsage struct {
	Date       string `json:"date"` // 2006-01-02, UTC
	Sent       int64  `json:"sent"`
	DeadTokens int64  `json:"dead_tokens"`
	Failed     int64  `json:"failed"`
	Acked      int64  `json:"acked"`
}

// Usage is a workspace's use of one period.
type Usage struct {
	Period Period
	Used   int64
	Daily  []DailyUsage
}

// DedupeWindow is how long a delivered notification is remembered for
// duplicate suppression: Rocket.Chat gives up 31 minutes after its first
// try, and Mattermost resends only on a lost response.
const DedupeWindow = time.Hour

// LimitPublisher makes a new limit known to the quota store at once, ahead
// of every replica's cached copy of the workspace.
type LimitPublisher interface {
	PublishLimit(ctx context.Context, workspaceID string, limit int64, version time.Time, at time.Time) error
}

// QuotaStore counts notifications against monthly limits and suppresses
// duplicates, exactly across replicas when it is shared (Redis) and on one
// node otherwise (SQL). Admit is the hot path: one round trip.
type QuotaStore interface {
	// Admit decides one notification and, unless it is Exhausted or a
	// Duplicate, counts it as sent today and remembers its DedupeKey as delivered.
	Admit(ctx context.Context, a Admission) (Verdict, error)
	// Settle records that an admitted notification was not delivered: it is
	// counted under outcome today (retry_later is not a daily count), and its
	// key is kept as counted-but-undelivered, so a repeat is Readmitted: sent
	// again without a second unit.
	Settle(ctx context.Context, workspaceID, dedupeKey string, outcome Outcome, at time.Time) error
	// RecordAck counts a delivery receipt of the workspace's app for the day of at.
	RecordAck(ctx context.Context, workspaceID string, at time.Time) error
	// Usage returns the period's total and its days so far.
	Usage(ctx context.Context, workspaceID string, p Period) (Usage, error)
}
