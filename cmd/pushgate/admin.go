package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/pushgate/pushgate/tenants"
)

func cmdAdmin(stdin io.Reader) func(context.Context, []string, func(string) string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		subs := map[string]func(context.Context, []string, func(string) string, io.Writer, io.Writer) error{
			"create": adminCreate(stdin), "create-key": adminCreateKey, "list-keys": adminListKeys, "revoke-key": adminRevokeKey,
		}
		if len(args) == 0 || subs[args[0]] == nil {
			fmt.Fprintln(stderr, "usage: pushgate admin create --email E   (the password is read from stdin or a prompt)")
			fmt.Fprintln(stderr, "       pushgate admin create-key --email E [--name N] | list-keys [--email E] | revoke-key ID")
			if len(args) == 0 {
				return usageError{"admin needs a subcommand: create, create-key, list-keys or revoke-key"}
			}
			return usageError{fmt.Sprintf("unknown admin subcommand %q", args[0])}
		}
		return subs[args[0]](ctx, args[1:], getenv, stdout, stderr)
	}
}

func adminCreate(stdin io.Reader) func(context.Context, []string, func(string) string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		c := newCLI("admin create", stderr, getenv)
		email := c.fs.String("email", "", "the operator's email (required)")
		if _, err := parseWithArgs(c.fs, args); err != nil {
			return err
		}
		password, err := readPassword(stdin, stderr)
		if err != nil {
			return err
		}
		svc, _, done, err := c.open(ctx, stderr)
		if err != nil {
			return err
		}
		defer done()
		op, err := svc.CreateOperator(ctx, *email, password)
		if err != nil {
			return cliError(err)
		}
		if *c.asJSON {
			return printJSON(stdout, map[string]any{"id": op.ID, "email": op.Email, "created_at": op.CreatedAt})
		}
		fmt.Fprintf(stdout, "operator %s created\n", op.Email)
		return nil
	}
}

// operatorKeyJSON is an operator API key as the CLI prints it; the key itself only once.
type operatorKeyJSON struct {
	ID        int64      `json:"id"`
	Email     string     `json:"email"`
	Name      string     `json:"name"`
	Hint      string     `json:"hint"`
	Key       string     `json:"key,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func newOperatorKeyJSON(k *tenants.OperatorKey, key string) operatorKeyJSON {
	return operatorKeyJSON{ID: k.ID, Email: k.Email, Name: k.Name, Hint: k.Hint, Key: key, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

func adminCreateKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("admin create-key", stderr, getenv)
	email := c.fs.String("email", "", "the operator whose key it is (required); actions taken with it are audited under this email")
	name := c.fs.String("name", "", "what the key is for, e.g. the script or machine that uses it")
	if _, err := parseWithArgs(c.fs, args); err != nil {
		return err
	}
	if *email == "" {
		return usageError{"admin create-key needs --email"}
	}
	svc, _, done, err := c.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer done()
	key, k, err := svc.CreateOperatorKey(ctx, *email, *name)
	if err != nil {
		return cliError(err)
	}
	if *c.asJSON {
		return printJSON(stdout, newOperatorKeyJSON(k, key))
	}
	fmt.Fprintf(stdout, "operator API key %d for %s (shown only this once; pushgate keeps its hash):\n\n  %s\n\n", k.ID, k.Email, key)
	fmt.Fprintf(stdout, "use it as Authorization: Bearer <key> on /api/v1/admin/…; `pushgate admin revoke-key %d` ends it.\n", k.ID)
	return nil
}

func adminListKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("admin list-keys", stderr, getenv)
	email := c.fs.String("email", "", "only this operator's keys")
	if _, err := parseWithArgs(c.fs, args); err != nil {
		return err
	}
	svc, _, done, err := c.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer done()
	keys, err := svc.OperatorKeys(ctx, *email)
	if err != nil {
		return cliError(err)
	}
	if *c.asJSON {
		out := make([]operatorKeyJSON, len(keys))
		for i := range keys {
			out[i] = newOperatorKeyJSON(&keys[i], "")
		}
		return printJSON(stdout, out)
	}
	if len(keys) == 0 {
		fmt.Fprintln(stdout, "no operator API keys; `pushgate admin create-key --email E` creates one")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tKEY\tCREATED\tSTATE")
	for _, k := range keys {
		state := "live"
		if k.RevokedAt != nil {
			state = "revoked " + k.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Email, orNone(k.Name), k.Hint, k.CreatedAt.Format(time.RFC3339), state)
	}
	return tw.Flush()
}

func adminRevokeKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("admin revoke-key", stderr, getenv)
	pos, err := parseWithArgs(c.fs, args, "ID")
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id < 1 {
		return usageError{fmt.Sprintf("admin revoke-key takes a key id (see list-keys), got %q", pos[0])}
	}
	svc, _, done, err := c.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer done()
	k, err := svc.RevokeOperatorKey(ctx, id)
	if err != nil {
		return cliError(err)
	}
	if *c.asJSON {
		return printJSON(stdout, newOperatorKeyJSON(k, ""))
	}
	fmt.Fprintf(stdout, "operator API key %d of %s revoked\n", k.ID, k.Email)
	return nil
}

// readPassword prompts twice without echo on a terminal, or reads one line
// from a pipe (for scripts and Kubernetes Jobs).
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "again: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(first) != string(second) {
			return "", fmt.Errorf("the two passwords differ")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no password on stdin: pipe it in, e.g. `pushgate admin create --email E < password-file`")
	}
	return line, nil
}
