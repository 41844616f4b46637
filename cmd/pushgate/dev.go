package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pushgate/pushgate/tenants"
)

// devState is what `serve --dev` remembers between starts in data_dir, so
// that every start can print a working token. Dev mode only: a real
// deployment never keeps a token in the clear.
type devState struct {
	OperatorEmail    string `json:"operator_email"`
	OperatorPassword string `json:"operator_password"`
	WorkspaceID      string `json:"workspace_id"`
	Token            string `json:"token"`
}

const devOperatorEmail = "admin@pushgate.localhost"

// ensureDevSetup creates, on first start, an operator account and a demo
// workspace with the current terms accepted; later starts reuse them.
func ensureDevSetup(ctx context.Context, svc *tenants.Service, dataDir string) (*devState, error) {
	path := filepath.Join(dataDir, "dev-state.json")
	var st devState
	if raw, err := os.ReadFile(path); err == nil {
		if json.Unmarshal(raw, &st) == nil && st.Token != "" {
			if _, err := svc.Authenticate(ctx, st.Token); err == nil {
				return &st, nil
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if st.OperatorEmail == "" {
		password, err := randomPassword()
		if err != nil {
			return nil, err
		}
		if _, err := svc.CreateOperator(ctx, devOperatorEmail, password); err != nil && tenants.ErrorCode(err) != tenants.CodeConflict {
			return nil, fmt.Errorf("creating the dev operator: %w", err)
		}
		st.OperatorEmail, st.OperatorPassword = devOperatorEmail, password
	}
	terms, err := svc.CurrentTerms(ctx)
	if err != nil {
		return nil, err
	}
	reg, err := svc.Register(ctx, tenants.RegisterRequest{
		Name: "Demo workspace", ContactEmail: "demo@pushgate.localhost", AcceptTermsVersion: terms.Version,
	}, "dev", "127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("creating the demo workspace: %w", err)
	}
	st.WorkspaceID, st.Token = reg.Workspace.ID, reg.Token
	raw, _ := json.MarshalIndent(st, "", "  ")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, err
	}
	return &st, nil
}

func randomPassword() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// printDevBanner tells a new user what they have and what to do next.
func printDevBanner(w io.Writer, cfg config, addr string, st *devState, sandboxURL string) {
	fmt.Fprintf(w, `
pushgate is running in dev mode (region %[1]s) on %[2]s
  database         %[3]s
  sandbox APNs/FCM %[4]s  (stats: %[4]s/sandbox/stats)
  health, metrics  %[5]s/readyz  %[5]s/metrics

dashboard          %[5]s/signin
operator account   %[6]s / %[7]s
demo workspace     %[8]s (terms accepted, plan free: 10,000 pushes a month)
  token            %[9]s
  Mattermost       System Console > Push Notification Server: %[5]s/mm/%[9]s
  Rocket.Chat      Push > Gateway: %[5]s, with the token as the workspace token

Send a push (answers {"status":"OK"}):
  curl -s %[5]s/mm/%[9]s/api/v1/send_push -d '{"platform":"apple_rn","server_id":"demo","device_id":"demo-device","type":"message","message":"hello from pushgate"}'
See the usage:
  curl -s -H 'Authorization: Bearer %[9]s' %[5]s/api/v1/workspace/usage

Press Ctrl-C to stop.
`, cfg.Region, addr, cfg.DatabaseURL, sandboxURL, cfg.PublicURL,
		st.OperatorEmail, st.OperatorPassword, st.WorkspaceID, st.Token)
}
