package web

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants"
)

func TestDailyChartSVG(t *testing.T) {
	days := []tenants.DailyUsage{
		{Date: "2026-02-03", Sent: 12_345, DeadTokens: 3, Acked: 12_000},
		{Date: "2026-02-28", Sent: 1},
	}
	svg := string(newDailyChart("2026-02", days).SVG())

	t.Run("the markup is well-formed", func(t *testing.T) {
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("the chart is not well-formed: %v\n%s", err, svg)
			}
		}
	})
	t.Run("every day of the month has a slot and a title", func(t *testing.T) {
		if n := strings.Count(svg, `<rect class="slot"`); n != 28 {
			t.Errorf("%d day slots, want 28", n)
		}
		mustHave(t, svg, "<title>3 Feb: 12,345 sent, 3 dead tokens, 0 failed, 12,000 acked</title>", "<title>1 Feb: 0 sent, 0 dead tokens, 0 failed, 0 acked</title>")
	})
	t.Run("only counts above zero draw a bar", func(t *testing.T) {
		for class, want := range map[string]int{"sent": 2, "dead": 1, "failed": 0, "acked": 1} {
			if n := strings.Count(svg, `<rect class="`+class+`"`); n != want {
				t.Errorf("%d %s bars, want %d", n, class, want)
			}
		}
	})
	t.Run("the axis reads in round numbers and every fifth day is labelled", func(t *testing.T) {
		mustHave(t, svg, `dominant-baseline="middle">0</text>`, `dominant-baseline="middle">10,000</text>`, `dominant-baseline="middle">20,000</text>`,
			`text-anchor="middle">1</text>`, `text-anchor="middle">25</text>`)
	})
	t.Run("text is escaped", func(t *testing.T) {
		c := dailyChart{Days: []chartDay{{Title: `<b>"A" & 'B'</b>`, Label: "<i>"}}, Ticks: []chartTick{{Label: "&"}}}
		got := string(c.SVG())
		mustHave(t, got, "<title>&lt;b&gt;&#34;A&#34; &amp; &#39;B&#39;&lt;/b&gt;</title>", ">&lt;i&gt;</text>", ">&amp;</text>")
	})
}

func mustHave(t *testing.T, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("missing %q in\n%s", p, s)
		}
	}
}
