package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

func cmdAdmin(stdin io.Reader) func(context.Context, []string, func(string) string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		if len(args) == 0 || args[0] != "create" {
			fmt.Fprintln(stderr, "usage: pushgate admin create --email E   (the password is read from stdin or a prompt)")
			return usageError{"admin needs the subcommand create"}
		}
		c := newCLI("admin create", stderr, getenv)
		email := c.fs.String("email", "", "the operator's email (required)")
		if _, err := parseWithArgs(c.fs, args[1:]); err != nil {
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
