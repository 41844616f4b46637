package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// wsCloudClients lists a workspace's registered Rocket.Chat servers and,
// with --revoke, ends one: the operator's side of what owners do on /cloud.
func wsCloudClients(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLI("workspace cloud-clients", stderr, getenv)
	revoke := c.fs.String("revoke", "", "revoke this client id: its tokens stop and Rocket.Chat drops the registration on its next token request")
	pos, svc, _, done, err := c.start(ctx, stderr, args, "ID")
	if err != nil {
		return err
	}
	defer done()
	if *revoke != "" {
		if err := svc.RevokeCloudClient(ctx, pos[0], *revoke, operatorActor(getenv)); err != nil {
			return cliError(err)
		}
	}
	clients, err := svc.CloudClients(ctx, pos[0])
	if err != nil {
		return cliError(err)
	}
	if *c.asJSON {
		out := make([]map[string]any, 0, len(clients))
		for _, cl := range clients {
			out = append(out, map[string]any{"client_id": cl.ID, "name": cl.Name, "address": cl.Address, "unique_id": cl.UniqueID,
				"origin": cl.Origin, "created_by": cl.CreatedBy, "created_at": cl.CreatedAt, "revoked_at": cl.RevokedAt,
				"revoked_by": cl.RevokedBy, "last_token_at": cl.LastTokenAt})
		}
		return printJSON(stdout, out)
	}
	if *revoke != "" {
		fmt.Fprintf(stdout, "revoked %s\n", *revoke)
	}
	if len(clients) == 0 {
		fmt.Fprintf(stdout, "workspace %s has no Rocket.Chat Cloud clients\n", pos[0])
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSERVER\tORIGIN\tCREATED\tSTATUS")
	for _, cl := range clients {
		status := "active"
		if cl.RevokedAt != nil {
			status = "revoked " + cl.RevokedAt.Format(time.DateOnly) + " by " + cl.RevokedBy
		}
		server := cl.Address
		if server == "" {
			server = cl.Name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cl.ID, server, cl.Origin, cl.CreatedAt.Format(time.DateOnly), status)
	}
	return tw.Flush()
}
