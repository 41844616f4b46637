package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// OverageInterval is how often overage is reported: Stripe bills what it
// was told, so a minute's delay costs nothing and keeps calls few.
const OverageInterval = time.Minute

// Metered says whether plan bills its overage through a metered price.
func (s *Service) Metered(plan tenants.Plan) bool { return s.cfg.Plans[plan].MeteredPrice != "" }

// ReportOverage sends Stripe the overage of every subscribed workspace on
// a metered plan that it has not been told yet, for this month and the
// last (so the last batch of a month is sent after it ends). Each batch is
// recorded before it is sent and resent as it was until Stripe takes it,
// under one identifier, so a retry never bills twice. Every replica may
// run it: a batch number is taken once.
func (s *Service) ReportOverage(ctx context.Context) (int, error) {
	wss, err := s.cfg.Overage.SubscribedWorkspaces(ctx)
	if err != nil {
		return 0, err
	}
	now := s.now()
	cur := tenants.PeriodOf(now)
	prev := tenants.PeriodOf(cur.Start().Add(-time.Hour))
	sent := 0
	var errs []error
	for i := range wss {
		ws := &wss[i]
		if !s.Metered(ws.Billing.Plan) || ws.Billing.CustomerID == "" {
			continue
		}
		for _, p := range [...]tenants.Period{prev, cur} {
			n, err := s.reportPeriod(ctx, ws, p, now)
			sent += n
			if err != nil {
				// One workspace Stripe refuses must not hold up the others.
				errs = append(errs, fmt.Errorf("workspace %s, %s: %w", ws.ID, p, err))
				break
			}
		}
	}
	return sent, errors.Join(errs...)
}

// reportPeriod resends the workspace's unsent batches of p, then records
// and sends a new one for the overage no batch covers yet.
func (s *Service) reportPeriod(ctx context.Context, ws *tenants.Workspace, p tenants.Period, now time.Time) (int, error) {
	batches, err := s.cfg.Overage.OverageBatches(ctx, ws.ID, p)
	if err != nil {
		return 0, err
	}
	sent, covered, next := 0, int64(0), 1
	for _, b := range batches {
		covered += b.Quantity
		next = b.Seq + 1
		if b.ReportedAt == nil {
			if err := s.sendOverage(ctx, b); err != nil {
				return sent, err
			}
			sent++
		}
	}
	included := ws.LimitIn(p)
	if included == tenants.Unlimited {
		return sent, nil
	}
	u, err := s.cfg.Usage.Usage(ctx, ws.ID, p)
	if err != nil {
		return sent, err
	}
	over := u.Used - included - covered
	if over <= 0 {
		return sent, nil
	}
	b := tenants.OverageBatch{WorkspaceID: ws.ID, Period: p, Seq: next, Quantity: over, CustomerID: ws.Billing.CustomerID, CreatedAt: now}
	if ok, err := s.cfg.Overage.AddOverageBatch(ctx, b); err != nil || !ok {
		return sent, err // !ok: another replica took this batch and sends it
	}
	if err := s.sendOverage(ctx, b); err != nil {
		return sent, err
	}
	return sent + 1, nil
}

// sendOverage reports one batch, dated inside its month so that a month's
// last batch, sent after the month ended, is billed with that month.
func (s *Service) sendOverage(ctx context.Context, b tenants.OverageBatch) error {
	at := b.CreatedAt
	if end := b.Period.End(); !at.Before(end) {
		at = end.Add(-time.Second)
	}
	err := s.stripe.ReportUsage(ctx, UsageReport{EventName: s.cfg.MeterEvent, CustomerID: b.CustomerID,
		Value: b.Quantity, At: at, Identifier: b.Identifier()})
	if err != nil {
		s.overageReported.WithLabelValues("failed").Add(float64(b.Quantity))
		return err
	}
	s.overageReported.WithLabelValues("reported").Add(float64(b.Quantity))
	return s.cfg.Overage.MarkOverageReported(ctx, b.WorkspaceID, b.Period, b.Seq, s.now())
}

// RunOverageReports calls ReportOverage every interval until ctx ends.
func (s *Service) RunOverageReports(ctx context.Context, every time.Duration) {
	s.repeat(ctx, every, "reporting metered overage to Stripe failed; will retry with the same batches", func(ctx context.Context) error {
		_, err := s.ReportOverage(ctx)
		return err
	})
}
