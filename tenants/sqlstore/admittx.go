package sqlstore

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/pushgate/pushgate/tenants"
)

// batchTimeout bounds a batch's transaction on PostgreSQL.
const batchTimeout = 10 * time.Second

// decideBatch decides the admissions of batch in one transaction, each as if
// it ran alone, one after another; on an error it counted none of them.
func (q *QuotaStore) decideBatch(batch []*admitCall) error {
	// Callers wait for the batch that took them whatever their contexts say,
	// so it needs a bound of its own. On SQLite busy_timeout bounds every
	// wait, the write lock's, and a context that can end would cost the
	// driver a goroutine per statement.
	ctx := context.Background()
	if q.db.dialect == Postgres {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, batchTimeout)
		defer cancel()
	}
	if q.db.dialect == Postgres {
		// Rows are locked in key order (see QuotaStore), so admissions go by
		// workspace and month. The callers were all waiting at once, so any
		// order is one they could have seen, and those that compete for a
		// month's units keep the order they arrived in.
		slices.SortStableFunc(batch, func(x, y *admitCall) int {
			return cmp.Or(strings.Compare(x.a.WorkspaceID, y.a.WorkspaceID), cmp.Compare(month(x.a.At), month(y.a.At)))
		})
	}
	return q.write(ctx, func(tx *gorm.DB) error {
		t := admitTx{q: q, tx: tx}
		if err := t.claimFirsts(batch); err != nil {
			return err
		}
		for _, c := range batch {
			if err := t.admit(c); err != nil {
				return err
			}
		}
		return t.flush()
	})
}

// admitTx is the transaction of one batch: it reads a workspace's limit once,
// takes a month's first unit in the database and the rest in memory, and
// writes the counts and the days' "sent" once every admission is decided.
type admitTx struct {
	q      *QuotaStore
	tx     *gorm.DB
	limits []batchLimit
	counts []batchCount
	sent   []batchSent
}

type batchLimit struct {
	ws string
	workspaceLimit
}

// batchCount is a month's count, locked by the transaction: used is the
// count in memory, stored the count in the database.
type batchCount struct {
	ws           string
	p            tenants.Period
	used, stored int64
}

// batchSent is how many of the batch's admissions a day counts as sent.
type batchSent struct {
	ws, day string
	at      time.Time
	n       int64
}

// dedupeID names a dedupe row.
type dedupeID struct{ ws, key string }

// claimFirsts claims the key of each first call with it in the batch, before
// any unit is taken, which keeps the lock order; a repeat claims its key
// when its turn comes, so it sees whatever the calls before it left.
func (t *admitTx) claimFirsts(batch []*admitCall) error {
	firsts := make([]*admitCall, 0, len(batch))
	seen := make(map[dedupeID]bool, len(batch))
	for _, c := range batch {
		id := dedupeID{c.a.WorkspaceID, c.a.DedupeKey}
		c.first = id.key != "" && !seen[id]
		if c.first {
			seen[id] = true
			firsts = append(firsts, c)
		}
	}
	if t.q.db.dialect == Postgres {
		slices.SortFunc(firsts, func(x, y *admitCall) int {
			return cmp.Or(strings.Compare(x.a.WorkspaceID, y.a.WorkspaceID), strings.Compare(x.a.DedupeKey, y.a.DedupeKey))
		})
	}
	for _, c := range firsts {
		var err error
		if c.claim, err = t.q.claimKey(t.tx, c.a.WorkspaceID, c.a.DedupeKey, c.a.At); err != nil {
			return err
		}
	}
	return nil
}

// admit decides c: a duplicate, a readmission, or a unit taken under the
// current limit, or none left, when the claim of its key is undone.
func (t *admitTx) admit(c *admitCall) error {
	a := c.a
	var err error
	if a.DedupeKey != "" && !c.first {
		if c.claim, err = t.q.claimKey(t.tx, a.WorkspaceID, a.DedupeKey, a.At); err != nil {
			return err
		}
	}
	p := tenants.PeriodOf(a.At)
	c.v = tenants.Verdict{Limit: a.Limit}
	switch c.claim.prior {
	case stateDelivered:
		c.v.Decision = tenants.Duplicate
		c.v.Used, err = t.used(a.WorkspaceID, p)
		return err
	case stateUndelivered:
		c.v.Decision = tenants.Readmitted
		c.v.Used, err = t.used(a.WorkspaceID, p)
		return err
	}
	if c.v.Limit, err = t.limit(a); err != nil {
		return err
	}
	used, ok, err := t.takeUnit(a.WorkspaceID, p, c.v.Limit)
	if err != nil {
		return err
	}
	c.v.Used = used
	if !ok {
		c.v.Decision = tenants.Exhausted
		return undoClaim(t.tx, a.WorkspaceID, a.DedupeKey, c.claim)
	}
	c.v.Decision = tenants.Admitted
	t.addSent(a)
	return nil
}

// limit is currentLimit, reading each workspace's row once per batch.
func (t *admitTx) limit(a tenants.Admission) (int64, error) {
	for _, l := range t.limits {
		if l.ws == a.WorkspaceID {
			return l.currentLimit(a), nil
		}
	}
	w, err := readWorkspaceLimit(t.tx, a.WorkspaceID)
	if err != nil {
		return 0, err
	}
	t.limits = append(t.limits, batchLimit{a.WorkspaceID, w})
	return w.currentLimit(a), nil
}

// used is a month's count so far, counting the batch's units.
func (t *admitTx) used(ws string, p tenants.Period) (int64, error) {
	for _, n := range t.counts {
		if n.ws == ws && n.p == p {
			return n.used, nil
		}
	}
	return usedIn(t.tx, ws, p)
}

// takeUnit is takeUnit for the batch: the first unit of a month is taken in
// the database, which locks its count; the rest are taken in memory.
func (t *admitTx) takeUnit(ws string, p tenants.Period, limit int64) (int64, bool, error) {
	if limit == 0 {
		used, err := t.used(ws, p)
		return used, false, err
	}
	for i := range t.counts {
		n := &t.counts[i]
		if n.ws != ws || n.p != p {
			continue
		}
		if limit > 0 && n.used >= limit {
			return n.used, false, nil
		}
		n.used++
		return n.used, true, nil
	}
	used, ok, err := takeUnit(t.tx, ws, p, limit)
	if err != nil {
		return 0, false, err
	}
	t.counts = append(t.counts, batchCount{ws: ws, p: p, used: used, stored: used})
	return used, ok, nil
}

func (t *admitTx) addSent(a tenants.Admission) {
	day := a.At.Format(time.DateOnly)
	for i := range t.sent {
		if t.sent[i].ws == a.WorkspaceID && t.sent[i].day == day {
			t.sent[i].n++
			return
		}
	}
	t.sent = append(t.sent, batchSent{ws: a.WorkspaceID, day: day, at: a.At, n: 1})
}

// flush writes the counts that units were taken from in memory, whose rows
// the batch holds already, then the days in key order.
func (t *admitTx) flush() error {
	for _, n := range t.counts {
		if n.used == n.stored {
			continue
		}
		err := t.tx.Exec("UPDATE quota_usage SET used = ? WHERE workspace_id = ? AND period = ?", n.used, n.ws, string(n.p)).Error
		if err != nil {
			return err
		}
	}
	slices.SortFunc(t.sent, func(x, y batchSent) int {
		return cmp.Or(strings.Compare(x.ws, y.ws), strings.Compare(x.day, y.day))
	})
	for _, d := range t.sent {
		if err := addDaily(t.tx, d.ws, d.at, dayCounts{sent: d.n}); err != nil {
			return err
		}
	}
	return nil
}

// month numbers the month of t.
func month(t time.Time) int { return t.Year()*12 + int(t.Month()) }
