package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// dailyChart is the month's days drawn as server-side SVG: four bars a day
// (sent, dead tokens, failed, acked) against one scale.
type dailyChart struct {
	Width, Height int
	PlotLeft      int
	PlotBottom    int
	Days          []chartDay
	Ticks         []chartTick
}

type chartDay struct {
	Label     string // day of month, shown every few days
	LabelX    int
	Bars      []chartBar
	SlotX     int
	SlotWidth int
	Title     string // what a hover shows
}

type chartBar struct {
	X, Y, W, H int
	Class      string
}

type chartTick struct {
	Y     int
	Label string
}

const (
	chartWidth  = 760
	chartHeight = 220
	chartLeft   = 56
	chartTop    = 10
	chartBottom = chartHeight - 24
)

// newDailyChart lays out every day of period, with the days that have no
// counts drawn empty, so the month's shape is visible from its first day.
func newDailyChart(period tenants.Period, days []tenants.DailyUsage) dailyChart {
	byDate := map[string]tenants.DailyUsage{}
	var top int64
	for _, d := range days {
		byDate[d.Date] = d
		top = max(top, d.Sent, d.DeadTokens, d.Failed, d.Acked)
	}
	scale := niceCeiling(top)
	start, end := period.Start(), period.End()
	n := int(end.Sub(start) / (24 * time.Hour))
	slot := (chartWidth - chartLeft - 8) / n
	barW := max(slot*8/10/4, 1)
	c := dailyChart{Width: chartWidth, Height: chartHeight, PlotLeft: chartLeft, PlotBottom: chartBottom}
	for i := range 3 {
		v := scale * int64(i) / 2
		c.Ticks = append(c.Ticks, chartTick{Y: chartBottom - int(int64(chartBottom-chartTop)*v/scale), Label: thousands(v)})
	}
	for i := range n {
		date := start.AddDate(0, 0, i)
		u := byDate[date.Format("2006-01-02")]
		x := chartLeft + i*slot
		day := chartDay{SlotX: x, SlotWidth: slot, LabelX: x + slot/2,
			Title: fmt.Sprintf("%s: %s sent, %s dead tokens, %s failed, %s acked", date.Format("2 Jan"),
				thousands(u.Sent), thousands(u.DeadTokens), thousands(u.Failed), thousands(u.Acked))}
		if i == 0 || (i+1)%5 == 0 {
			day.Label = fmt.Sprint(i + 1)
		}
		bx := x + slot/10
		for j, s := range []struct {
			v     int64
			class string
		}{{u.Sent, "sent"}, {u.DeadTokens, "dead"}, {u.Failed, "failed"}, {u.Acked, "acked"}} {
			h := int(int64(chartBottom-chartTop) * s.v / scale)
			if s.v > 0 {
				h = max(h, 1)
			}
			day.Bars = append(day.Bars, chartBar{X: bx + j*barW, Y: chartBottom - h, W: barW, H: h, Class: s.class})
		}
		c.Days = append(c.Days, day)
	}
	return c
}

// niceCeiling rounds n up to 1, 2 or 5 times a power of ten, so the axis
// reads in round numbers; an empty month still gets a scale of 10.
func niceCeiling(n int64) int64 {
	if n <= 10 {
		return 10
	}
	for p := int64(10); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// SVG draws the chart. It is written here rather than in overview.html
// because a month of bars is some 900 attribute values, and html/template's
// escaping of each cost the overview more than all its queries. Nothing here
// needs escaping but the titles and tick labels, which are escaped: every
// other value is a number or one of this file's class names.
func (c dailyChart) SVG() template.HTML {
	var b strings.Builder
	b.Grow(600 + 420*len(c.Days))
	fmt.Fprintf(&b, `<svg class="chart" id="daily-chart" viewBox="0 0 %d %d" role="img" aria-label="Notifications per day this month">`+"\n  ", c.Width, c.Height)
	for _, t := range c.Ticks {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%d" y2="%d"/><text class="tick" x="%d" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`,
			c.PlotLeft, c.Width, t.Y, t.Y, c.PlotLeft-6, t.Y, template.HTMLEscapeString(t.Label))
	}
	b.WriteString("\n  ")
	for _, d := range c.Days {
		fmt.Fprintf(&b, `<g><title>%s</title><rect class="slot" x="%d" y="0" width="%d" height="%d"/>`,
			template.HTMLEscapeString(d.Title), d.SlotX, d.SlotWidth, c.PlotBottom)
		for _, r := range d.Bars {
			if r.H > 0 {
				fmt.Fprintf(&b, `<rect class="%s" x="%d" y="%d" width="%d" height="%d"/>`, r.Class, r.X, r.Y, r.W, r.H)
			}
		}
		if d.Label != "" {
			fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="middle">%s</text>`, d.LabelX, c.PlotBottom+16, template.HTMLEscapeString(d.Label))
		}
		b.WriteString("</g>")
	}
	b.WriteString("\n</svg>")
	return template.HTML(b.String())
}
