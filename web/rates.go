package web

import (
	"context"
	"fmt"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// QuotaEventReader reads when a workspace reached 80% and 100% of its limit.
type QuotaEventReader interface {
	QuotaEvents(ctx context.Context, workspaceID string) ([]tenants.QuotaEvent, error)
}

// deliveryRates are the month's shares, from its daily counts.
type deliveryRates struct {
	Sent, Delivered, Acked int64
	// DeliveryRate and AckRate are percentages written for people, or "" when
	// there is nothing to divide by.
	DeliveryRate, AckRate string
}

// ratesOf derives the delivery rate (sent minus dead tokens and failures,
// of sent) and the ack rate (Mattermost receipts, of delivered).
func ratesOf(days []tenants.DailyUsage) deliveryRates {
	var r deliveryRates
	var lost int64
	for _, d := range days {
		r.Sent += d.Sent
		lost += d.DeadTokens + d.Failed
		r.Acked += d.Acked
	}
	r.Delivered = max(r.Sent-lost, 0)
	if r.Sent > 0 {
		r.DeliveryRate = percent(r.Delivered, r.Sent)
	}
	if r.Delivered > 0 {
		r.AckRate = percent(min(r.Acked, r.Delivered), r.Delivered)
	}
	return r
}

// percent writes a share with one decimal, never rounding a part up to 100.
func percent(part, whole int64) string {
	tenths := part * 1000 / whole
	return fmt.Sprintf("%d.%d%%", tenths/10, tenths%10)
}

type quotaEventRow struct {
	Threshold   int
	PeriodLabel string
	At          time.Time
	Used, Limit int64
}

// overviewEvents bounds the events the overview lists (a year's worth).
const overviewEvents = 24

func (dash *Dashboard) quotaEvents(ctx context.Context, workspaceID string) ([]quotaEventRow, error) {
	events, err := dash.d.QuotaEvents.QuotaEvents(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	out := make([]quotaEventRow, 0, min(len(events), overviewEvents))
	for _, e := range events[:min(len(events), overviewEvents)] {
		out = append(out, quotaEventRow{Threshold: e.Threshold, PeriodLabel: e.Period.Start().Format("January 2006"),
			At: e.At, Used: e.Used, Limit: e.Limit})
	}
	return out, nil
}
