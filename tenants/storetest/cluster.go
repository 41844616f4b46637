package storetest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClusterAddrs are the test Redis Cluster's nodes;
// PUSHGATE_TEST_REDIS_CLUSTER (comma-separated host:port) overrides them.
func RedisClusterAddrs() []string {
	if v := os.Getenv("PUSHGATE_TEST_REDIS_CLUSTER"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
}

// RedisCluster returns a client of the test Redis Cluster and a key prefix
// unique to this test; keys under the prefix are deleted on every master
// when the test ends.
func RedisCluster(t testing.TB) (*redis.ClusterClient, string) {
	t.Helper()
	addrs := RedisClusterAddrs()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := rdb.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
	if err == nil {
		err = rdb.ClusterInfo(ctx).Err()
	}
	if err != nil {
		_ = rdb.Close()
		t.Fatalf("a Redis Cluster is required for this test and is not reachable at %s: %v (run `make test`, which starts it)", strings.Join(addrs, ","), err)
	}
	prefix := "pgtest:" + Suffix() + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rdb.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
			return iter.Err()
		})
		_ = rdb.Close()
	})
	return rdb, prefix
}
