package api

import "testing"

func TestIPLimiterForgetsTheLeastRecentlySeenClientWhenFull(t *testing.T) {
	l := newIPLimiter(1, 1)
	l.max = 3
	mustAllow := func(ip string, want bool) {
		t.Helper()
		if _, ok := l.allow(ip); ok != want {
			t.Fatalf("allow(%s) = %v, want %v", ip, ok, want)
		}
	}
	mustAllow("192.0.2.1", true)
	mustAllow("192.0.2.1", false) // limited from here on
	mustAllow("192.0.2.2", true)
	mustAllow("192.0.2.3", true) // the table is full
	mustAllow("192.0.2.1", false)
	mustAllow("192.0.2.4", true) // forgets 192.0.2.2, seen least recently
	mustAllow("192.0.2.1", false)
	if len(l.buckets) != 3 || l.lru.Len() != 3 {
		t.Fatalf("table holds %d buckets (%d in order), want 3", len(l.buckets), l.lru.Len())
	}
	if _, kept := l.buckets["192.0.2.2"]; kept {
		t.Fatal("the client seen least recently was kept")
	}
}
