package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// tokenRequest posts Rocket.Chat's client-credentials form (getWorkspaceAccessTokenWithScope.ts).
func tokenRequest(t *testing.T, a *testAPI, id, secret string) (int, http.Header, map[string]any) {
	t.Helper()
	form := url.Values{"client_id": {id}, "client_secret": {secret}, "scope": {"workspace:push:send"},
		"grant_type": {"client_credentials"}, "redirect_uri": {"https://chat.example.org/admin/cloud/oauth-callback"}}
	resp, err := http.Post(a.URL+"/api/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("token answered %d with non-JSON %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

func mustManualClient(t *testing.T, a *testAPI, workspaceID string) (string, string) {
	t.Helper()
	blob, c, err := a.svc.ManualCloudRegistration(context.Background(), workspaceID, "RC", "owner:test")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(blob)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return c.ID, m["client_secret"].(string)
}

func TestCloudTokenWhileTheDatabaseIsDownIsRetriedNeverDropped(t *testing.T) {
	dbURL, proxy := mustPostgresBehindProxy(t)
	a := mustAPI(t, dbURL, apiOptions{registrationOpen: true})
	id, _ := a.mustRegister(t, "Alpha", true)
	clientID, secret := mustManualClient(t, a, id)
	if code, _, out := tokenRequest(t, a, clientID, secret); code != 200 {
		t.Fatalf("token = %d %v", code, out)
	}
	proxy.down()
	code, hdr, out := tokenRequest(t, a, clientID, secret)
	if code != http.StatusServiceUnavailable || out["error"] != "temporarily_unavailable" || hdr.Get("Retry-After") == "" {
		t.Fatalf("token with the database down = %d %v, want 503 temporarily_unavailable", code, out)
	}
}

// usedQuotas reports a set count as this month's usage.
type usedQuotas struct {
	tenants.QuotaStore
	used *atomic.Int64
}

func (q usedQuotas) Usage(ctx context.Context, workspaceID string, p tenants.Period) (tenants.Usage, error) {
	return tenants.Usage{Period: p, Used: q.used.Load()}, nil
}

func TestCloudQuotaBanner(t *testing.T) {
	var used atomic.Int64
	a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true,
		quotas: func(q tenants.QuotaStore) tenants.QuotaStore { return usedQuotas{q, &used} }})
	id, _ := a.mustRegister(t, "Alpha", true)
	clientID, secret := mustManualClient(t, a, id)
	_, _, tok := tokenRequest(t, a, clientID, secret)
	access := tok["access_token"].(string)
	comms := func(t *testing.T) (create []any, del []any) {
		t.Helper()
		code, out := a.call(t, "POST", "/api/v3/comms/workspace", access, `{"uniqueId":"u"}`)
		if code != 200 || out["workspaceId"] != id {
			t.Fatalf("comms = %d %v", code, out)
		}
		an := out["announcements"].(map[string]any)
		return an["create"].([]any), an["delete"].([]any)
	}
	t.Run("below 80% there is no banner", func(t *testing.T) {
		used.Store(7_999)
		if create, del := comms(t); len(create) != 0 || len(del) != 0 {
			t.Fatalf("announcements = %v %v", create, del)
		}
	})
	t.Run("at 80% the admins see a warning banner until the month ends", func(t *testing.T) {
		used.Store(8_000)
		create, _ := comms(t)
		if len(create) != 1 {
			t.Fatalf("create = %v", create)
		}
		b := create[0].(map[string]any)
		view := b["view"].(map[string]any)
		end := tenants.PeriodOf(time.Now()).End().Format(time.RFC3339)
		if b["surface"] != "banner" || b["createdBy"] != "cloud" || b["expireAt"] != end || view["variant"] != "warning" ||
			!strings.Contains(view["title"].(string), "80%") || !strings.HasSuffix(b["_id"].(string), "-80") {
			t.Fatalf("banner = %v", b)
		}
	})
	t.Run("at 100% a danger banner replaces the warning", func(t *testing.T) {
		used.Store(10_000)
		create, del := comms(t)
		if len(create) != 1 || len(del) != 1 || !strings.HasSuffix(del[0].(string), "-80") {
			t.Fatalf("announcements = %v %v", create, del)
		}
		if v := create[0].(map[string]any)["view"].(map[string]any); v["variant"] != "danger" {
			t.Fatalf("view = %v", v)
		}
	})
	t.Run("the legacy client sync carries the same banner", func(t *testing.T) {
		code, out := a.call(t, "POST", "/api/v2/workspaces/"+id+"/client", access, `{}`)
		if code != 200 || len(out["announcements"].(map[string]any)["create"].([]any)) != 1 {
			t.Fatalf("client sync = %d %v", code, out)
		}
	})
}
