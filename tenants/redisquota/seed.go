package redisquota

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/pushgate/pushgate/tenants"
)

const (
	// seedTimeout bounds the one database read and Redis call that seed a month.
	seedTimeout = 2 * time.Second
	// archivePause is how long admissions skip seeding after the database failed.
	archivePause = time.Second
)

// SeedFrom sets where a month that Redis does not hold is seeded from, like
// Options.Archive, for a database opened after the store; call it before the first Admit.
func (s *Store) SeedFrom(archive tenants.ArchivedUsageReader) { s.archive = archive }

// seedMode is the seeding an admission asks the admit script for.
func (s *Store) seedMode() byte {
	switch {
	case s.archive == nil:
		return seedOff
	case s.now().UnixNano() < s.archDown.Load():
		return seedSkip
	}
	return seedCheck
}

// archiveError marks a failure of the database, not of Redis.
type archiveError struct{ error }

func (e archiveError) Unwrap() error { return e.error }

// seed adds the archived counts of a month to its hash in Redis, once per
// replica at a time (singleflight) and once in all (the script's guard), and
// returns the seeding mode to admit with next. When the database fails,
// FailOpen admits without the seed (it is added later, on top) and
// FailClosed refuses.
func (s *Store) seed(ctx context.Context, ws string, p tenants.Period, at time.Time) (byte, error) {
	return s.seedMonth(ctx, ws, p, at, false)
}

// seedMonth is seed; with ifArchived a month the database holds nothing of is left alone.
func (s *Store) seedMonth(ctx context.Context, ws string, p tenants.Period, at time.Time, ifArchived bool) (byte, error) {
	flight := ws + "/" + string(p)
	if ifArchived {
		flight += "/read"
	}
	ch := s.seeds.DoChan(flight, func() (any, error) {
		// Detached, so one caller giving up does not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), seedTimeout)
		defer cancel()
		u, err := s.archive.ArchivedUsage(ctx, ws, p)
		if err != nil {
			return nil, archiveError{fmt.Errorf("reading the archived usage of %s: %w", p, err)}
		}
		if ifArchived && u.Used == 0 && len(u.Daily) == 0 {
			return nil, nil
		}
		args := []any{monthTTL(p, at).Milliseconds(), "u", u.Used}
		for _, d := range u.Daily {
			day, err := time.Parse(time.DateOnly, d.Date)
			if err != nil || tenants.PeriodOf(day) != p {
				continue
			}
			for kind, n := range map[byte]int64{'s': d.Sent, 'd': d.DeadTokens, 'f': d.Failed, 'a': d.Acked} {
				if n > 0 {
					args = append(args, dayField(day, kind), n)
				}
			}
		}
		return nil, s.callWithin(ctx, seedTimeout, func(ctx context.Context) error {
			return seedScript.Run(ctx, s.rdb, []string{s.monthKey(ws, p)}, args...).Err()
		})
	})
	var r singleflight.Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if r.Err == nil {
		return seedCheck, nil
	}
	if _, ok := r.Err.(archiveError); !ok {
		return 0, r.Err // Redis failed: the outage policy decides
	}
	s.archDown.Store(s.now().Add(archivePause).UnixNano())
	s.log.Warn("a month's count could not be seeded from the database", "workspace", ws, "period", string(p),
		"policy", s.policy, "err", r.Err)
	if s.policy == FailClosed {
		return 0, unavailable(r.Err)
	}
	return seedSkip, nil
}
