package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Workspace is a registered workspace.
type Workspace struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// Register creates n workspaces through the gateway's self-service API, accepting
// the current terms. The API is rate-limited per address (PUSHGATE_REGISTRATIONS_PER_HOUR).
func Register(ctx context.Context, baseURL string, n int, namePrefix string) ([]Workspace, error) {
	base := strings.TrimRight(baseURL, "/")
	client := &http.Client{Timeout: 30 * time.Second}
	var terms struct {
		Version string `json:"version"`
	}
	if err := callJSON(ctx, client, http.MethodGet, base+"/api/v1/terms", nil, http.StatusOK, &terms); err != nil {
		return nil, fmt.Errorf("reading the current terms: %w", err)
	}
	out := make([]Workspace, 0, n)
	for i := range n {
		req := map[string]string{
			"name":                 fmt.Sprintf("%s %d", namePrefix, i+1),
			"contact_email":        fmt.Sprintf("bench+%d@example.com", i+1),
			"accept_terms_version": terms.Version,
		}
		var ws Workspace
		if err := callJSON(ctx, client, http.MethodPost, base+"/api/v1/workspaces", req, http.StatusCreated, &ws); err != nil {
			hint := ""
			if strings.Contains(err.Error(), "HTTP 429") {
				hint = " (registration is rate-limited per address: start the gateway with PUSHGATE_REGISTRATIONS_PER_HOUR raised, or pass -tokens FILE)"
			}
			return out, fmt.Errorf("registering workspace %d of %d: %w%s", i+1, n, err, hint)
		}
		if ws.Token == "" {
			return out, fmt.Errorf("registering workspace %d of %d: the answer holds no token", i+1, n)
		}
		out = append(out, ws)
	}
	return out, nil
}

func callJSON(ctx context.Context, client *http.Client, method, url string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, url, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	return nil
}

// ReadTokens reads workspace tokens, one a line; blank lines and lines starting with # are skipped.
func ReadTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var tokens []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tokens = append(tokens, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s holds no tokens", path)
	}
	return tokens, nil
}

// WriteTokens writes tokens one a line, readable only by the owner.
func WriteTokens(path string, tokens []string) error {
	return os.WriteFile(path, []byte(strings.Join(tokens, "\n")+"\n"), 0o600)
}
