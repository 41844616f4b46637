package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

var logStart = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// seedDeliveries writes n entries of ws, one a second from logStart; every
// third is a dead token of android_rn, the rest delivered on apple_rn.
func seedDeliveries(t *testing.T, db *sqlstore.DB, ws string, n int) {
	t.Helper()
	batch := make([]tenants.Delivery, n)
	for i := range batch {
		d := tenants.Delivery{WorkspaceID: ws, At: logStart.Add(time.Duration(i) * time.Second), Protocol: tenants.ProtocolMattermost,
			Ref: fmt.Sprintf("ack-%d", i), App: "apple_rn", Result: tenants.DeliveryDelivered, TokenPrefix: "abcdef"}
		if i%3 == 0 {
			d.App, d.Result, d.Reason = "android_rn", tenants.DeliveryDeadToken, "UNREGISTERED"
		}
		batch[i] = d
	}
	if err := db.SaveDeliveries(context.Background(), batch); err != nil {
		t.Fatalf("SaveDeliveries: %v", err)
	}
}

func mustDeliveries(t *testing.T, db *sqlstore.DB, q tenants.DeliveryQuery) tenants.DeliveryPage {
	t.Helper()
	p, err := db.Deliveries(context.Background(), q)
	if err != nil {
		t.Fatalf("Deliveries(%+v): %v", q, err)
	}
	return p
}

func deliveryRefs(p tenants.DeliveryPage) string {
	out := make([]string, len(p.Entries))
	for i, d := range p.Entries {
		out[i] = d.Ref
	}
	return strings.Join(out, " ")
}

func cursorOf(d tenants.Delivery) *tenants.DeliveryCursor {
	return &tenants.DeliveryCursor{At: d.At, ID: d.ID}
}

func TestDeliveries(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		seedDeliveries(t, db, "ws-a", 1200) // more than one INSERT's rows
		seedDeliveries(t, db, "ws-b", 5)

		t.Run("a page is newest first and says there is more", func(t *testing.T) {
			p := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-b", Limit: 3})
			if got := deliveryRefs(p); got != "ack-4 ack-3 ack-2" || !p.Older || p.Newer {
				t.Fatalf("page = %q older=%v newer=%v", got, p.Older, p.Newer)
			}
			d := p.Entries[0]
			if !d.At.Equal(logStart.Add(4*time.Second)) || d.Protocol != "mattermost" || d.App != "apple_rn" ||
				d.Result != tenants.DeliveryDelivered || d.TokenPrefix != "abcdef" || d.WorkspaceID != "ws-b" {
				t.Fatalf("entry read back as %+v", d)
			}
		})
		t.Run("paging older then newer walks the same entries back", func(t *testing.T) {
			first := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-b", Limit: 2})
			second := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-b", Limit: 2, Before: cursorOf(first.Entries[1])})
			if got := deliveryRefs(second); got != "ack-2 ack-1" || !second.Older || !second.Newer {
				t.Fatalf("second page = %q older=%v newer=%v", got, second.Older, second.Newer)
			}
			last := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-b", Limit: 2, Before: cursorOf(second.Entries[1])})
			if got := deliveryRefs(last); got != "ack-0" || last.Older {
				t.Fatalf("last page = %q older=%v", got, last.Older)
			}
			back := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-b", Limit: 2, After: cursorOf(second.Entries[0])})
			if got := deliveryRefs(back); got != "ack-4 ack-3" || back.Newer || !back.Older {
				t.Fatalf("page back = %q newer=%v older=%v", got, back.Newer, back.Older)
			}
		})
		t.Run("entries of the same instant page by id", func(t *testing.T) {
			same := make([]tenants.Delivery, 5)
			for i := range same {
				same[i] = tenants.Delivery{WorkspaceID: "ws-c", At: logStart, Protocol: "test", Ref: fmt.Sprint("s", i), Result: tenants.DeliveryFailed}
			}
			if err := db.SaveDeliveries(context.Background(), same); err != nil {
				t.Fatal(err)
			}
			p1 := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-c", Limit: 3})
			p2 := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-c", Limit: 3, Before: cursorOf(p1.Entries[2])})
			if got := deliveryRefs(p1) + " | " + deliveryRefs(p2); got != "s4 s3 s2 | s1 s0" {
				t.Fatalf("pages = %q", got)
			}
		})
		t.Run("filters by result and by app", func(t *testing.T) {
			p := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-b", Result: tenants.DeliveryDeadToken, Limit: 10})
			if got := deliveryRefs(p); got != "ack-3 ack-0" || p.Entries[0].Reason != "UNREGISTERED" {
				t.Fatalf("dead tokens = %q", got)
			}
			p = mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-b", App: "apple_rn", Limit: 10})
			if got := deliveryRefs(p); got != "ack-4 ack-2 ack-1" {
				t.Fatalf("apple_rn = %q", got)
			}
			p = mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-b", App: "apple_rn", Result: tenants.DeliveryDeadToken, Limit: 10})
			if len(p.Entries) != 0 {
				t.Fatalf("apple_rn dead tokens = %q, want none", deliveryRefs(p))
			}
		})
		t.Run("a workspace sees only its own entries", func(t *testing.T) {
			n := 0
			q := tenants.DeliveryQuery{WorkspaceID: "ws-a", Limit: 200}
			for {
				p := mustDeliveries(t, db, q)
				for _, d := range p.Entries {
					if d.WorkspaceID != "ws-a" || !strings.HasPrefix(d.Ref, "ack-") {
						t.Fatalf("ws-a's log holds %+v", d)
					}
				}
				n += len(p.Entries)
				if !p.Older {
					break
				}
				q.Before = cursorOf(p.Entries[len(p.Entries)-1])
			}
			if n != 1200 {
				t.Fatalf("paged through %d entries of ws-a, want 1200", n)
			}
			if p := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-none", Limit: 10}); len(p.Entries) != 0 || p.Older {
				t.Fatalf("an unknown workspace has entries: %q", deliveryRefs(p))
			}
		})
		t.Run("any bytes a client sent are stored readable, never refused", func(t *testing.T) {
			odd := tenants.Delivery{WorkspaceID: "ws-odd", At: logStart, Protocol: "mattermost", Ref: "a\"b\\c\x00d\ne\xffé🙂",
				App: "apple_rn", Result: tenants.DeliveryFailed, Reason: "Bad\tReason", TokenPrefix: "ab\x01"}
			if err := db.SaveDeliveries(context.Background(), []tenants.Delivery{odd}); err != nil {
				t.Fatalf("SaveDeliveries: %v", err)
			}
			got := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-odd", Limit: 1}).Entries[0]
			if got.Ref != "a\"b\\c d e\ufffdé🙂" || got.Reason != "Bad Reason" || got.TokenPrefix != "ab " {
				t.Fatalf("read back ref %q reason %q token %q", got.Ref, got.Reason, got.TokenPrefix)
			}
		})
		t.Run("bad queries are refused", func(t *testing.T) {
			_, err := db.Deliveries(context.Background(), tenants.DeliveryQuery{Limit: 10})
			storetest.WantCode(t, err, tenants.CodeInvalid, "")
			_, err = db.Deliveries(context.Background(), tenants.DeliveryQuery{WorkspaceID: "ws-a", Limit: 201})
			storetest.WantCode(t, err, tenants.CodeInvalid, "")
			c := &tenants.DeliveryCursor{At: logStart}
			_, err = db.Deliveries(context.Background(), tenants.DeliveryQuery{WorkspaceID: "ws-a", Limit: 1, Before: c, After: c})
			storetest.WantCode(t, err, tenants.CodeInvalid, "")
		})
	})
}

func TestPurgeDeliveriesKeepsSevenDays(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		now := logStart.Add(30 * 24 * time.Hour)
		var batch []tenants.Delivery
		for i := range 30 {
			for _, ws := range []string{"ws-a", "ws-b"} {
				batch = append(batch, tenants.Delivery{WorkspaceID: ws, At: now.Add(-time.Duration(i) * 24 * time.Hour).Add(-time.Minute),
					Protocol: "mattermost", Ref: fmt.Sprint("day-", i), Result: tenants.DeliveryDelivered})
			}
		}
		if err := db.SaveDeliveries(ctx, batch); err != nil {
			t.Fatal(err)
		}
		n, err := tenants.PurgeDeliveries(ctx, db, now)
		if err != nil || n != 2*23 {
			t.Fatalf("purged %d, %v; want 46 (days 7 to 29 of two workspaces)", n, err)
		}
		p := mustDeliveries(t, db, tenants.DeliveryQuery{WorkspaceID: "ws-a", Limit: 100})
		if got := deliveryRefs(p); got != "day-0 day-1 day-2 day-3 day-4 day-5 day-6" {
			t.Fatalf("kept %q", got)
		}
		if n, err := db.PurgeDeliveries(ctx, now.Add(-tenants.DeliveryRetention), 10); n != 0 || err != nil {
			t.Fatalf("a second purge deleted %d, %v", n, err)
		}
	})
}
