package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// cannedServer answers every HTTP/1.1 request on a keep-alive connection with
// the same bytes, doing as little as possible, so that what a benchmark
// measures is the client.
func cannedServer(tb testing.TB, answer string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					length := 0
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
						if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
							length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
						}
					}
					if _, err := br.Discard(length); err != nil {
						return
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

const cannedOK = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}"

func benchTokens() []string {
	tokens := make([]string, 50)
	for i := range tokens {
		tokens[i] = "pgw_benchmarktoken" + strconv.Itoa(i)
	}
	return tokens
}

// cpuTime is this process's user plus system CPU time.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBuild is templating one request's bytes, without sending it.
func BenchmarkBuild(b *testing.B) {
	for _, protocol := range []string{ProtocolMattermost, ProtocolRocketChat} {
		b.Run(protocol, func(b *testing.B) {
			g, err := NewGateway(GatewayConfig{URL: "http://127.0.0.1:1", Protocol: protocol, Tokens: benchTokens(), Mix: Mix{IOSShare: 0.5}})
			if err != nil {
				b.Fatal(err)
			}
			var body []byte
			b.ReportAllocs()
			for i := range b.N {
				sh := g.mix.Shape(uint64(i))
				if protocol == ProtocolMattermost {
					body = g.appendMattermost(body[:0], &g.targets[sh.Workspace][0], sh)
				} else {
					body = g.appendRocketChat(body[:0], sh)
				}
			}
		})
	}
}

// BenchmarkClient is one whole request over loopback to a server that does
// almost nothing; cpu-ns/op is the process's CPU per request, the canned
// server's included. The net/http case is the standard client with the same
// bodies, for comparison.
func BenchmarkClient(b *testing.B) {
	url := cannedServer(b, cannedOK)
	b.Run("h1", func(b *testing.B) {
		g, err := NewGateway(GatewayConfig{URL: url, Protocol: ProtocolMattermost, Tokens: benchTokens(), Mix: Mix{IOSShare: 0.5}})
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		runClientBench(b, g.NewSender)
	})
	b.Run("net-http", func(b *testing.B) {
		g, err := NewGateway(GatewayConfig{URL: url, Protocol: ProtocolMattermost, Tokens: benchTokens(), Mix: Mix{IOSShare: 0.5}})
		if err != nil {
			b.Fatal(err)
		}
		tr := &http.Transport{MaxIdleConnsPerHost: 16, MaxConnsPerHost: 8}
		defer tr.CloseIdleConnections()
		runClientBench(b, func(int) Sender { return &netHTTPSender{g: g, rt: tr, url: url + "/mm/t/api/v1/send_push"} })
	})
}

func runClientBench(b *testing.B, newSender func(int) Sender) {
	b.ReportAllocs()
	before := cpuTime(b)
	res, err := Run(context.Background(), Config{Concurrency: 8, Count: int64(b.N), NewSender: newSender})
	if err != nil || res.Statuses[StatusOK] != int64(b.N) {
		b.Fatal(err, res.Statuses, res.ErrorSamples)
	}
	b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
}

// netHTTPSender sends the same bodies through net/http, for BenchmarkClient.
type netHTTPSender struct {
	g   *Gateway
	rt  http.RoundTripper
	url string
}

func (s *netHTTPSender) Send(ctx context.Context, seq uint64) Outcome {
	sh := s.g.mix.Shape(seq)
	body := s.g.appendMattermost(nil, &s.g.targets[sh.Workspace][0], sh)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		return Outcome{Err: err}
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Outcome{Err: err}
	}
	return Outcome{HTTPStatus: resp.StatusCode, Status: mattermostStatus(raw)}
}

type nopSender struct{}

func (nopSender) Send(context.Context, uint64) Outcome {
	return Outcome{HTTPStatus: 200, Status: StatusOK}
}

// BenchmarkRunLoop is the scheduler's and the tally's cost per request.
func BenchmarkRunLoop(b *testing.B) {
	for _, rate := range []float64{0, 1e8} {
		b.Run("rate="+strconv.FormatFloat(rate, 'g', -1, 64), func(b *testing.B) {
			b.ReportAllocs()
			res, err := Run(context.Background(), Config{Concurrency: 1, Rate: rate, Count: int64(b.N), NewSender: func(int) Sender { return nopSender{} }})
			if err != nil || res.Requests != int64(b.N) {
				b.Fatal(err, res.Requests)
			}
		})
	}
}

// BenchmarkLoopback is a whole request to a net/http server in the same process.
func BenchmarkLoopback(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"status":"OK"}`)
	}))
	defer srv.Close()
	g, err := NewGateway(GatewayConfig{URL: srv.URL, Protocol: ProtocolMattermost, Tokens: []string{"t"}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	runClientBench(b, g.NewSender)
}
