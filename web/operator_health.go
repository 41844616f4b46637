package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/tenants"
)

// HealthCheck is one dependency the region health page pings (the same checks as /readyz).
type HealthCheck struct {
	Name string
	Ping func(context.Context) error
}

// AppCredential is one push app whose credentials the health page lists.
type AppCredential struct {
	ID, Kind, Topic string
}

// Health is what the region health page shows besides the push rates.
type Health struct {
	Checks []HealthCheck
	// Rates is the last hour of provider outcomes; nil shows none.
	Rates *PushRates
	// Metrics holds the certificate expiry gauges of the push apps.
	Metrics prometheus.Gatherer
	Apps    []AppCredential
	Version string
	// QuotaStore and OutagePolicy say where quotas are counted and what happens when that store is down.
	QuotaStore   string
	OutagePolicy string
}

// certificateSoon is when the health page starts warning about a certificate,
// as the chart's PushgateCertificateExpiresSoon alert does.
const certificateSoon = 30 * 24 * time.Hour

// healthCheckTimeout bounds one dependency check of the page.
const healthCheckTimeout = 2 * time.Second

type checkResult struct {
	Name    string
	OK      bool
	Problem string
	Took    time.Duration
}

type credentialRow struct {
	AppCredential
	Auth      string
	ExpiresAt *time.Time
	DaysLeft  int
	Soon      bool
	Expired   bool
}

type healthData struct {
	Checks       []checkResult
	Version      string
	QuotaStore   string
	OutagePolicy string
	Apps         []credentialRow
	Chart        rateChart
	Reasons      []ReasonCount
	HourTotals   [4]int64
	HasRates     bool
}

// OperatorHealth shows the region's health: pushes per minute by outcome,
// provider error reasons, dependencies, quota store, build, credentials.
func (dash *Dashboard) OperatorHealth() http.Handler {
	return dash.operator(func(w http.ResponseWriter, r *http.Request, _ *tenants.Session) {
		h := dash.d.Health
		d := healthData{Version: h.Version, QuotaStore: h.QuotaStore, OutagePolicy: h.OutagePolicy}
		d.Checks = runChecks(r.Context(), h.Checks)
		if h.Rates != nil {
			minutes, reasons := h.Rates.LastHour()
			d.HasRates, d.Reasons, d.Chart = true, reasons, newRateChart(minutes)
			for _, m := range minutes {
				for i, n := range m.Outcomes {
					d.HourTotals[i] += n
				}
			}
		}
		expiries := certificateExpiries(h.Metrics)
		now := dash.d.Now().UTC()
		for _, a := range h.Apps {
			row := credentialRow{AppCredential: a}
			switch t, ok := expiries[a.ID]; {
			case ok:
				row.Auth, row.ExpiresAt = "client certificate", &t
				left := t.Sub(now)
				row.DaysLeft, row.Expired, row.Soon = int(left.Hours()/24), left <= 0, left > 0 && left < certificateSoon
			case a.Kind == "apns":
				row.Auth = "token (.p8 signing key): does not expire; Apple revokes it only when the key is deleted"
			default:
				row.Auth = "service account: its key lasts until revoked in Google Cloud"
			}
			d.Apps = append(d.Apps, row)
		}
		dash.render(w, r, http.StatusOK, "operator_health", view{Title: "Region health", Nav: "health", Data: d})
	})
}

// runChecks pings every dependency at once, each within its own deadline.
func runChecks(ctx context.Context, checks []HealthCheck) []checkResult {
	out := make([]checkResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
			defer cancel()
			started := time.Now()
			err := c.Ping(cctx)
			out[i] = checkResult{Name: c.Name, OK: err == nil, Took: time.Since(started).Round(100 * time.Microsecond)}
			if err != nil {
				out[i].Problem = err.Error()
				if errors.Is(cctx.Err(), context.DeadlineExceeded) {
					out[i].Problem = fmt.Sprintf("no answer within %s", healthCheckTimeout)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// rateChart is the last hour drawn as stacked bars, one a minute.
type rateChart struct {
	Width, Height, PlotLeft, PlotBottom int
	Bars                                []rateBar
	Ticks                               []chartTick
	Labels                              []rateLabel
}

type rateBar struct {
	Title string
	Rects []chartBar
}

type rateLabel struct {
	X     int
	Label string
}

var rateClasses = [4]string{"delivered", "dead", "retry", "failed"}

func newRateChart(minutes []MinuteRate) rateChart {
	c := rateChart{Width: 760, Height: 200, PlotLeft: 52, PlotBottom: 176}
	var top int64
	for _, m := range minutes {
		top = max(top, m.Total())
	}
	scale := niceCeiling(top)
	plotH := c.PlotBottom - 8
	steps := int64(4)
	if scale%4 != 0 {
		steps = 5 // 10 and 50 read better in fifths
	}
	for i := range steps + 1 {
		v := scale * i / steps
		c.Ticks = append(c.Ticks, chartTick{Y: c.PlotBottom - int(v*int64(plotH)/scale), Label: thousands(v)})
	}
	slot := (c.Width - c.PlotLeft) / len(minutes)
	for i, m := range minutes {
		x := c.PlotLeft + i*slot
		y := c.PlotBottom
		b := rateBar{Title: fmt.Sprintf("%s UTC: %d delivered, %d dead tokens, %d retry later, %d failed",
			m.At.Format("15:04"), m.Outcomes[0], m.Outcomes[1], m.Outcomes[2], m.Outcomes[3])}
		for j, n := range m.Outcomes {
			h := int(n * int64(plotH) / scale)
			if n > 0 && h == 0 {
				h = 1
			}
			if h > 0 {
				y -= h
				b.Rects = append(b.Rects, chartBar{X: x + 1, Y: y, W: max(slot-2, 1), H: h, Class: rateClasses[j]})
			}
		}
		c.Bars = append(c.Bars, b)
		if i%10 == 0 || i == len(minutes)-1 {
			c.Labels = append(c.Labels, rateLabel{X: x + slot/2, Label: m.At.Format("15:04")})
		}
	}
	return c
}
