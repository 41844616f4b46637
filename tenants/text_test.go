package tenants_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
)

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"letters of any script and emoji pass", "Åcme 日本 Ünïcødé 👩‍💻 🏳️‍🌈", ""},
		{"invalid UTF-8 is refused", "Ac\xffme", "not valid UTF-8"},
		{"NUL is refused", "a\x00b", "U+0000"},
		{"a newline is refused", "a\nb", "U+000A"},
		{"a C1 control is refused", "a\u0085b", "U+0085"},
		{"a right-to-left override is refused", "moc.elgoog\u202e", "U+202E"},
		{"an isolate is refused", "a\u2066b\u2069", "U+2066"},
		{"a left-to-right mark is refused", "a\u200eb", "U+200E"},
		{"a line separator is refused", "a\u2028b", "U+2028"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tenants.CheckText("accepted_by", tc.text)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckText = %v", err)
				}
				return
			}
			e := tenants.AsError(err)
			if err == nil || e.Code != tenants.CodeInvalid || e.Field != "accepted_by" || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("CheckText = %v, want an error on accepted_by mentioning %q", err, tc.want)
			}
		})
	}
}

func TestBadTextNeverReachesTheStore(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		svc := tenants.NewService(db, tenants.Config{Region: "us", PublicURL: "https://us.gw.example", Terms: termsV1})
		if err := svc.PublishConfiguredTerms(ctx); err != nil {
			t.Fatal(err)
		}
		for _, req := range []tenants.RegisterRequest{
			{Name: "Acme\x00", ContactEmail: "ops@acme.example"},
			{Name: "Acme\u202e", ContactEmail: "ops@acme.example"},
			{Name: "Ac\xffme", ContactEmail: "ops@acme.example"},
			{Name: "Acme", ContactEmail: "ops\u202e@acme.example"},
		} {
			if _, err := svc.Register(ctx, req, "test", "127.0.0.1"); tenants.ErrorCode(err) != tenants.CodeInvalid {
				t.Fatalf("Register(%q, %q) = %v, want invalid input", req.Name, req.ContactEmail, err)
			}
		}
		reg, err := svc.Register(ctx, tenants.RegisterRequest{Name: "Acme", ContactEmail: "ops@acme.example"}, "test", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		p := &tenants.Principal{Workspace: reg.Workspace}
		for _, by := range []string{"ops\x00@acme.example", "Jane\u202eDoe", "Jane\xffDoe", strings.Repeat("x", 255)} {
			if _, err := svc.Accept(ctx, p, termsV1.Version, by, "127.0.0.1"); tenants.AsError(err).Field != "accepted_by" {
				t.Fatalf("Accept by %q = %v, want an error naming accepted_by", by, err)
			}
		}
		if hist, _ := db.Consents(ctx, reg.Workspace.ID); len(hist) != 0 {
			t.Fatalf("refused consents were recorded: %+v", hist)
		}
		if list, _ := db.ListWorkspaces(ctx); len(list) != 1 {
			t.Fatalf("%d workspaces stored, want only the valid one", len(list))
		}
	})
}

func TestValidWorkspaceID(t *testing.T) {
	for id, want := range map[string]bool{
		"ws_prbyzqk67yqqqoyjus7z":    true,
		"ws_prbyzqk67yqqqoyjus7":     false,
		"ws_PRBYZQK67YQQQOYJUS7Z":    false,
		"ws_prbyzqk67yqqqoyjus7\x00": false,
		"wx_prbyzqk67yqqqoyjus7z":    false,
		"":                           false,
	} {
		if got := tenants.ValidWorkspaceID(id); got != want {
			t.Errorf("ValidWorkspaceID(%q) = %v, want %v", id, got, want)
		}
	}
}
