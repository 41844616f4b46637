package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pushgate/pushgate/gateway"
)

// DirectConfig describes the same notifications sent straight to the
// providers through the gateway's own provider clients, with no gateway in between.
type DirectConfig struct {
	Registry *gateway.Registry
	Protocol string
	Mix      Mix
	// IOSPlatform and AndroidPlatform pick the apps for Mattermost pushes.
	IOSPlatform, AndroidPlatform string
	// Topic picks the APNs app for Rocket.Chat pushes; they use the default FCM app otherwise.
	Topic string
}

// Direct sends through a gateway.Registry's apps: one HTTP/2 pool per app, as in the gateway.
type Direct struct {
	mix       Mix
	protocol  string
	ios, andr *gateway.App
	iosPlat   string
	andrPlat  string
	payload   json.RawMessage
}

// NewDirect finds the apps of the mix in the registry.
func NewDirect(cfg DirectConfig) (*Direct, error) {
	if cfg.Registry == nil {
		return nil, errors.New("no push apps")
	}
	d := &Direct{mix: cfg.Mix, protocol: cfg.Protocol,
		iosPlat: orDefault(cfg.IOSPlatform, DefaultIOSPlatform), andrPlat: orDefault(cfg.AndroidPlatform, DefaultAndroidPlatform)}
	d.mix.init()
	var ok bool
	switch cfg.Protocol {
	case ProtocolMattermost:
		if d.ios, ok = cfg.Registry.App(d.iosPlat); !ok {
			return nil, fmt.Errorf("no app for platform %q in the apps file", d.iosPlat)
		}
		if d.andr, ok = cfg.Registry.App(d.andrPlat); !ok {
			return nil, fmt.Errorf("no app for platform %q in the apps file", d.andrPlat)
		}
	case ProtocolRocketChat:
		topic := orDefault(cfg.Topic, DefaultTopic)
		if d.ios, _, ok = cfg.Registry.APNsByTopic(topic); !ok {
			return nil, fmt.Errorf("no APNs app with topic %q in the apps file", topic)
		}
		if d.andr, ok = cfg.Registry.DefaultFCM(); !ok {
			return nil, errors.New("no FCM app in the apps file")
		}
		d.payload = json.RawMessage(`{"host":"https://chat.example.org/","messageId":"Lm7xw2","notificationType":"message","rid":"GENERAL",` +
			`"sender":{"_id":"u1","username":"bob","name":"Bob"},"senderName":"bob","type":"c","name":"general","messageType":""}`)
	default:
		return nil, fmt.Errorf("protocol %q: use %s or %s", cfg.Protocol, ProtocolMattermost, ProtocolRocketChat)
	}
	return d, nil
}

// NewSender returns a worker's sender.
func (d *Direct) NewSender(int) Sender { return &directSender{d: d, buf: make([]byte, 0, 128)} }

type directSender struct {
	d   *Direct
	buf []byte
}

func (s *directSender) Send(ctx context.Context, seq uint64) Outcome {
	d := s.d
	sh := d.mix.Shape(seq)
	app := d.andr
	if sh.IOS {
		app = d.ios
	}
	// The strings a decoder would have made from the request body.
	s.buf = d.mix.AppendDeviceToken(s.buf[:0], sh)
	token := string(s.buf)
	var res gateway.Result
	if d.protocol == ProtocolMattermost {
		platform := d.andrPlat
		if sh.IOS {
			platform = d.iosPlat
		}
		p := gateway.MattermostPush{
			AckID: string(d.mix.AppendID(s.buf[:0], 'a', seq)), Platform: platform,
			ServerID: string(d.mix.AppendID(s.buf[:0], 's', uint64(sh.Workspace))), DeviceID: token,
			PostID: string(d.mix.AppendID(s.buf[:0], 'p', seq)), Category: "CAN_REPLY",
			Message: "alice: the build is green", Badge: 3, TeamID: "t4ghiycm7g7bb41ihg85pqgah",
			ChannelID: "et3ghiycm7g7bb41ihg85pqgah", ChannelName: "town-square", Type: gateway.MattermostTypeMessage,
			SenderID: "g774dzud4tgaxgphso4wm8xrxe", SenderName: "alice", Version: "v2", IsCRTEnabled: true,
			Signature: "eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl",
		}
		res = app.SendMattermost(ctx, &p, false)
	} else {
		badge, notID := 2, -1398311196
		p := gateway.RocketChatPush{Token: token}
		o := &p.Options
		o.Title, o.Text, o.Badge, o.Sound, o.NotID = "general", "bob: deploy at 5?", &badge, "default", &notID
		o.Topic = app.Topic()
		o.APN.Category = "MESSAGE"
		o.GCM.Style, o.GCM.Image = "inbox", "https://chat.example.org/images/logo/android-chrome-192x192.png"
		o.Payload = d.payload
		o.UniqueID = string(d.mix.AppendID(s.buf[:0], 'u', seq))
		res = app.SendRocketChat(ctx, &p, false)
	}
	switch res.Outcome {
	case gateway.Delivered:
		return Outcome{Status: StatusOK}
	case gateway.DeadToken:
		return Outcome{Status: StatusRemove}
	}
	return Outcome{Status: StatusFail, Reason: res.Outcome.String() + ": " + res.Reason}
}
