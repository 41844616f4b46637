package tenants

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

func testDigest(i int) digest {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

func testPrincipal(id string) *Principal { return &Principal{Workspace: Workspace{ID: id}} }

func TestAuthCacheBounds(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	const goroutines, each = 32, 500

	t.Run("concurrent puts below the bound keep every entry", func(t *testing.T) {
		c := newAuthCache(time.Minute, time.Hour, goroutines*each)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					c.put(testDigest(g*each+i), testPrincipal("ws"), TokenSigned, now)
					c.get(testDigest(i))
				}
			}()
		}
		wg.Wait()
		if n := c.len(); n != goroutines*each {
			t.Fatalf("%d entries, want %d", n, goroutines*each)
		}
	})
	t.Run("a full cache forgets its oldest entries, never all of them", func(t *testing.T) {
		const max = 1000
		c := newAuthCache(time.Minute, time.Hour, max)
		for i := range max {
			c.put(testDigest(i), testPrincipal("old"), TokenSigned, now.Add(time.Duration(i)))
		}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					c.put(testDigest(max+g*each+i), testPrincipal("new"), TokenSigned, now.Add(time.Hour))
				}
			}()
		}
		wg.Wait()
		if n := c.len(); n != max {
			t.Fatalf("%d entries, want exactly %d", n, max)
		}
		for i := range max {
			if c.get(testDigest(i)) != nil {
				t.Fatalf("old entry %d survived %d newer ones", i, goroutines*each)
			}
		}
	})
	t.Run("unknown tokens fill their own ring and never evict a workspace", func(t *testing.T) {
		c := newAuthCache(time.Minute, time.Hour, 400) // a ring of 101
		for i := range 10 {
			c.put(testDigest(-1-i), testPrincipal("real"), TokenSigned, now)
		}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					c.unknown.put(testDigest(g*each+i), now)
				}
			}()
		}
		wg.Wait()
		if n := c.unknown.len(); n != 101 {
			t.Fatalf("negative cache holds %d entries, want its bound 101", n)
		}
		if n := c.len(); n != 10 {
			t.Fatalf("the positive cache holds %d entries after a flood of unknown tokens, want 10", n)
		}
	})
	t.Run("an unknown token is remembered for ttl only", func(t *testing.T) {
		c := newAuthCache(time.Minute, time.Hour, 100)
		c.unknown.put(testDigest(1), now)
		if !c.unknown.has(testDigest(1), now.Add(59*time.Second)) || c.unknown.has(testDigest(1), now.Add(time.Minute)) {
			t.Fatal("the negative entry does not live exactly ttl")
		}
	})
	t.Run("invalidating a workspace removes its entries, stale ones included", func(t *testing.T) {
		c := newAuthCache(time.Minute, time.Hour, 100)
		c.put(testDigest(1), testPrincipal("a"), TokenSigned, now)
		c.put(testDigest(2), testPrincipal("a"), TokenSigned, now.Add(-30*time.Minute))
		c.put(testDigest(3), testPrincipal("b"), TokenSigned, now)
		c.invalidateWorkspace("a")
		if c.len() != 1 || c.get(testDigest(3)) == nil {
			t.Fatalf("after invalidating a: %d entries", c.len())
		}
	})
}
