package sandbox_test

import (
	"context"
	"testing"

	"github.com/sideshow/apns2"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

// BenchmarkAPNsPush measures apns2 pushing to the sandbox over TLS and HTTP/2, client and server on the same cores.
func BenchmarkAPNsPush(b *testing.B) {
	f := mustAPNsSandbox(b, sandbox.Config{PayloadHistory: -1})
	c := mustTokenClient(b, f.s, f.key, testKeyID)
	n := &apns2.Notification{DeviceToken: "5f2a9c0d1e", Topic: testTopic, Payload: []byte(alertPayload)}
	mustPush(b, c, n)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.Push(n)
			if err != nil || res.StatusCode != 200 {
				b.Errorf("push: %v %+v", err, res)
				return
			}
		}
	})
}

// BenchmarkFCMSend measures the Firebase SDK sending to the sandbox.
func BenchmarkFCMSend(b *testing.B) {
	f := mustFCMSandbox(b, sandbox.Config{PayloadHistory: -1})
	client := mustMessaging(b, f.s, f.saJSON, f.kit.ProjectID)
	msg := androidMessage("fcm-5f2a9c")
	if _, err := client.Send(context.Background(), msg); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Send(context.Background(), msg); err != nil {
				b.Errorf("send: %v", err)
				return
			}
		}
	})
}
