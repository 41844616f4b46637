package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// rcSend sends one Rocket.Chat APNs push and returns its status.
func (a *testAPI) rcSend(t *testing.T, token, device, payload string) int {
	t.Helper()
	body := `{"token":"` + device + `","options":{"topic":"` + benchTopic + `","text":"secret words","notId":7` + payload + `}}`
	req, _ := http.NewRequest(http.MethodPost, a.URL+"/push/apn/send", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return rec.Code
}

// logged flushes the delivery log and returns the workspace's entries, newest first.
func logged(t *testing.T, a *testAPI, dl *tenants.DeliveryLog, id string) []tenants.Delivery {
	t.Helper()
	dl.WriteAll(context.Background())
	var all []tenants.Delivery
	q := tenants.DeliveryQuery{WorkspaceID: id, Limit: 200}
	for {
		page, err := a.db.Deliveries(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Entries...)
		if !page.Older {
			return all
		}
		last := page.Entries[len(page.Entries)-1]
		q.Before = &tenants.DeliveryCursor{At: last.At, ID: last.ID}
	}
}

func describe(ds []tenants.Delivery) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%s/%s/%s/%s/%s/%s", d.Protocol, d.Ref, d.App, d.Result, d.Reason, d.TokenPrefix)
	}
	return strings.Join(out, " ")
}

func TestPushesAreLogged(t *testing.T) {
	apps, _ := mustSandboxApps(t, gateway.Options{})
	a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true, apps: apps,
		deliveryLog: &tenants.DeliveryLogOptions{FlushInterval: time.Hour}})
	dl := a.deliveries
	ctx := context.Background()

	t.Run("each Mattermost outcome is one entry with its ack_id and no content", func(t *testing.T) {
		id, tok := a.mustRegister(t, "Alpha", true)
		a.mmPush(t, ctx, tok, "one")
		a.mmPush(t, ctx, tok, "one") // the same ack_id again: a duplicate
		got := describe(logged(t, a, dl, id))
		want := "mattermost/one/apple_rn/duplicate//devtok mattermost/one/apple_rn/delivered//devtok"
		if got != want {
			t.Fatalf("log = %s\nwant  %s", got, want)
		}
	})
	t.Run("Rocket.Chat entries carry the messageId, or the notId, and a dead token", func(t *testing.T) {
		id, tok := a.mustRegister(t, "Bravo", true)
		if code := a.rcSend(t, tok, "livedevice", `,"payload":{"messageId":"m123","host":"h"}`); code != http.StatusOK {
			t.Fatalf("live push: %d", code)
		}
		if code := a.rcSend(t, tok, "unregistered-1", ""); code != http.StatusNotAcceptable {
			t.Fatalf("dead push: %d", code)
		}
		got := describe(logged(t, a, dl, id))
		want := "rocketchat/notId 7/apple_rn/dead_token/Unregistered/unregi rocketchat/m123/apple_rn/delivered//livede"
		if got != want {
			t.Fatalf("log = %s\nwant  %s", got, want)
		}
	})
	t.Run("a push refused for the quota is logged with the reason", func(t *testing.T) {
		id, tok := a.mustRegister(t, "Charlie", true)
		plan := tenants.PlanEnterprise
		limit := int64(1)
		pl := &limit
		if _, err := a.svc.Update(ctx, id, "test", "test", tenants.WorkspaceChange{Plan: &plan, QuotaLimit: &pl}); err != nil {
			t.Fatal(err)
		}
		a.mmPush(t, ctx, tok, "q1")
		if code, _ := a.mmPush(t, ctx, tok, "q2"); code != http.StatusTooManyRequests {
			t.Fatalf("over quota: %d", code)
		}
		got := describe(logged(t, a, dl, id))
		want := "mattermost/q2/apple_rn/refused/quota_exhausted/devtok mattermost/q1/apple_rn/delivered//devtok"
		if got != want {
			t.Fatalf("log = %s\nwant  %s", got, want)
		}
	})
	t.Run("a workspace whose terms are not accepted gets a refusal entry", func(t *testing.T) {
		id, tok := a.mustRegister(t, "Delta", false)
		a.mmPush(t, ctx, tok, "t1")
		got := logged(t, a, dl, id)
		if len(got) != 1 || got[0].Result != tenants.DeliveryRefused || got[0].Reason == "" {
			t.Fatalf("log = %s", describe(got))
		}
	})
}

// Every one of many concurrent pushes leaves exactly one entry.
func TestConcurrentPushesLogOneEntryEach(t *testing.T) {
	apps, _ := mustSandboxApps(t, gateway.Options{})
	a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true, apps: apps,
		deliveryLog: &tenants.DeliveryLogOptions{BatchSize: 64, FlushInterval: 5 * time.Millisecond}})
	dl := a.deliveries
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { dl.Run(runCtx); close(done) }()
	id, tok := a.mustRegister(t, "Busy", true)

	const workers, each = 32, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if code, body := a.mmPush(t, context.Background(), tok, fmt.Sprintf("w%d-%d", w, i)); code != http.StatusOK {
					t.Errorf("push: %d %s", code, body)
				}
			}
		})
	}
	wg.Wait()
	stop()
	<-done
	got := logged(t, a, dl, id)
	refs := map[string]bool{}
	for _, d := range got {
		if d.Result != tenants.DeliveryDelivered || refs[d.Ref] {
			t.Fatalf("unexpected entry %+v", d)
		}
		refs[d.Ref] = true
	}
	if len(got) != workers*each {
		t.Fatalf("%d entries for %d pushes; logs:\n%s", len(got), workers*each, a.logs)
	}
}
