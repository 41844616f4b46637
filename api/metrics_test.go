package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/tenants/storetest"
)

// seriesCount counts the samples a scrape of reg exposes, as Prometheus
// stores them: a histogram is its buckets, +Inf, sum and count.
func seriesCount(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				n += len(h.GetBucket()) + 3
				continue
			}
			n++
		}
	}
	return n
}

func TestMetricsSeriesStayFixedWhateverClientsSend(t *testing.T) {
	a := mustAPI(t, storetest.SQLite(t), apiOptions{})
	send := func(method, path string) int {
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code
	}
	// One request of each kind that the loop below repeats, so their series exist.
	send("M0", "/healthz")
	send("GET", "/no/such/path")
	// Past the limit of failed authentications, so the 429 series exist too.
	for range 61 {
		send("POST", "/mm/pgw_us_x/api/v1/send_push")
	}
	send("PROPFIND", "/mm/pgw_us_x/api/v1/send_push")
	send("GET", "/healthz")
	before := seriesCount(t, a.reg)

	const n = 20_000
	for i := range n {
		send(fmt.Sprintf("M%d", i), "/healthz")
		send("GET", fmt.Sprintf("/random/%d", i))
		send(fmt.Sprintf("X%d", i), fmt.Sprintf("/mm/pgw_us_%d/api/v1/send_push", i))
		if i%10 == 0 {
			send("POST", fmt.Sprintf("/mm/pgw_us_%d/api/v1/send_push", i))
		}
	}
	after := seriesCount(t, a.reg)
	resp, err := http.Get(a.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("%d requests with distinct methods and paths: %d series before, %d after; /metrics is %d bytes", 3*n+n/10, before, after, len(body))
	if after != before {
		t.Fatalf("series went from %d to %d: a client-chosen value reached a label", before, after)
	}
}
