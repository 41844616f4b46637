package redisquota

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

func TestTheAdmitCommandIsEncodedOnce(t *testing.T) {
	s := New(nil, Options{Prefix: "pg:"})
	at := time.Date(2026, 11, 22, 3, 4, 5, 678e6, time.UTC)
	for name, a := range map[string]tenants.Admission{
		"with a dedupe key":     {WorkspaceID: "ws-1", Limit: 10_000, DedupeKey: "AbCdEfGhIjKlMnOp", At: at, LimitVersion: at.Add(-time.Hour)},
		"without a dedupe key":  {WorkspaceID: "ws-2", Limit: tenants.Unlimited, At: at},
		"with a negative limit": {WorkspaceID: "w", Limit: -1, DedupeKey: "k", At: at},
	} {
		t.Run(name+": the keys are the workspace's, in its slot", func(t *testing.T) {
			p := tenants.PeriodOf(at)
			got, rest, ok := splitCommand(s.appendAdmit(nil, &a, at, p, seedCheck, 7))
			if !ok || len(rest) != 0 {
				t.Fatalf("appendAdmit wrote no single well-formed command (ok %v, %d bytes left)", ok, len(rest))
			}
			nk := 1
			if a.DedupeKey != "" {
				nk += bucketsChecked
			}
			keys, field, off := s.keys(a.WorkspaceID, p, at, nk, a.DedupeKey)
			want := []string{"EVALSHA", admitScript.Hash(), fmt.Sprint(nk)}
			want = append(want, keys...)
			want = append(want, fmt.Sprint(a.Limit), dayField(at, 's'), fmt.Sprint(monthTTL(p, at).Milliseconds()),
				field, fmt.Sprint(off), fmt.Sprint(bucketTTL(off)), fmt.Sprint(versionMillis(a.LimitVersion)), string(rune(seedCheck)), "7")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("appendAdmit wrote\n%q\nwant\n%q", got, want)
			}
			for _, k := range keys {
				if !strings.HasPrefix(k, "pg:{"+a.WorkspaceID+"}:") {
					t.Errorf("key %q has not the workspace's hash tag", k)
				}
			}
			if len(got) != 3+nk+admitArgc {
				t.Errorf("%d parts, want %d", len(got), 3+nk+admitArgc)
			}
		})
	}
}

func TestReadInts(t *testing.T) {
	reader := func(s string) *respConn { return &respConn{r: bufio.NewReader(strings.NewReader(s))} }
	var dst [3]int64

	t.Run("an array of integers fills the slots", func(t *testing.T) {
		n, err := reader("*3\r\n:1\r\n:-42\r\n:9007199254740993\r\n").readInts(dst[:])
		if err != nil || n != 3 || dst != [3]int64{1, -42, 9007199254740993} {
			t.Fatalf("readInts = %v %v %v", n, dst, err)
		}
	})
	t.Run("an error reply leaves the stream in step", func(t *testing.T) {
		rc := reader("-NOSCRIPT No matching script. Please use EVAL.\r\n*2\r\n:3\r\n:7\r\n")
		_, err := rc.readInts(dst[:])
		var re redisError
		if !errors.As(err, &re) || !re.noScript() {
			t.Fatalf("readInts = %v, want a NOSCRIPT error", err)
		}
		if n, err := rc.readInts(dst[:]); err != nil || n != 2 || dst[0] != 3 || dst[1] != 7 {
			t.Fatalf("the reply after an error = %v %v %v", n, dst, err)
		}
	})
	for name, reply := range map[string]string{
		"a bulk string":           "$3\r\nabc\r\n",
		"a longer array":          "*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n",
		"a nested array":          "*1\r\n*1\r\n:1\r\n",
		"a bare LF":               "*1\n:1\n",
		"a number with junk":      "*1\r\n:1x\r\n",
		"a truncated reply":       "*2\r\n:1\r\n",
		"an empty line":           "\r\n",
		"a number out of int64's": "*1\r\n:123456789012345678901\r\n",
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			_, err := reader(reply).readInts(dst[:])
			var re redisError
			if err == nil || errors.As(err, &re) {
				t.Fatalf("readInts(%q) = %v, want a connection error", reply, err)
			}
		})
	}
}
