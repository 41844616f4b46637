package main

import "github.com/pushgate/pushgate/gateway"

// appIDs lists the push apps' ids, for the delivery log's filter.
func appIDs(apps *gateway.Registry) []string {
	if apps == nil {
		return nil
	}
	var ids []string
	for _, a := range apps.Apps() {
		ids = append(ids, a.ID())
	}
	return ids
}
