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
	OwnerEmail       string `json:"owner_email"`
	OwnerPassword    string `json:"owner_password"`
}

const (
	devOperatorEmail = "admin@pushgate.localhost"
	devOwnerEmail    = "demo@pushgate.localhost"
)

// ensureDevSetup creates, on first start, an operator account and a demo
// workspace with the current terms accepted and an owner account; later
// starts reuse them.
func ensureDevSetup(ctx context.Context, svc *tenants.Service, accounts tenants.AccountStore, dataDir string) (*devState, error) {
	path := filepath.Join(dataDir, "dev-state.json")
	var st devState
	if raw, err := os.ReadFile(path); err == nil {
		if json.Unmarshal(raw, &st) == nil && st.Token != "" {
			if _, err := svc.Authenticate(ctx, st.Token); err == nil {
				if st.OwnerEmail != "" {
					return &st, nil
				}
				// A data_dir from before demo owners: give its workspace one.
				if err := ensureDevOwner(ctx, svc, accounts, &st); err != nil {
					return nil, err
				}
				return &st, saveDevState(path, dataDir, &st)
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
	st.WorkspaceID, st.Token, st.OwnerEmail = reg.Workspace.ID, reg.Token, ""
	if err := ensureDevOwner(ctx, svc, accounts, &st); err != nil {
		return nil, err
	}
	return &st, saveDevState(path, dataDir, &st)
}

// ensureDevOwner gives the demo workspace an owner account with a password
// generated here, printed like the operator's and kept in data_dir.
func ensureDevOwner(ctx context.Context, svc *tenants.Service, accounts tenants.AccountStore, st *devState) error {
	password, err := randomPassword()
	if err != nil {
		return err
	}
	hash, err := svc.HashPassword("password", password)
	if err != nil {
		return err
	}
	email := devOwnerEmail
	err = accounts.CreateOwnerAccount(ctx, &tenants.OwnerAccount{WorkspaceID: st.WorkspaceID, Email: email, PasswordHash: hash})
	if tenants.ErrorCode(err) == tenants.CodeConflict {
		// The email owns an older demo workspace whose state file was lost;
		// an account owns one workspace, so this one gets its own address.
		email = "demo+" + st.WorkspaceID[len(st.WorkspaceID)-6:] + "@pushgate.localhost"
		err = accounts.CreateOwnerAccount(ctx, &tenants.OwnerAccount{WorkspaceID: st.WorkspaceID, Email: email, PasswordHash: hash})
	}
	if err != nil {
		return fmt.Errorf("creating the demo owner account: %w", err)
	}
	st.OwnerEmail, st.OwnerPassword = email, password
	return nil
}

func saveDevState(path, dataDir string, st *devState) error {
	raw, _ := json.MarshalIndent(st, "", "  ")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
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
demo owner         %[10]s / %[11]s
demo workspace     %[8]s (terms accepted, plan free: 10,000 pushes a month)
  token            %[9]s
  Mattermost       System Console > Push Notification Server: %[5]s/mm/%[9]s
  Rocket.Chat      OVERWRITE_SETTING_Cloud_Url=%[5]s and Push > Gateway: %[5]s,
                   then Administration > Registration; confirm at %[5]s/cloud/confirm

Send a push (answers {"status":"OK"}):
  curl -s %[5]s/mm/%[9]s/api/v1/send_push -d '{"platform":"apple_rn","server_id":"demo","device_id":"demo-device","type":"message","message":"hello from pushgate"}'
See the usage:
  curl -s -H 'Authorization: Bearer %[9]s' %[5]s/api/v1/workspace/usage

Press Ctrl-C to stop.
`, cfg.Region, addr, cfg.DatabaseURL, sandboxURL, cfg.PublicURL,
		st.OperatorEmail, st.OperatorPassword, st.WorkspaceID, st.Token, st.OwnerEmail, st.OwnerPassword)
}
