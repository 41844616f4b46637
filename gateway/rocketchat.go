package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/sideshow/apns2"
)

// RocketChatPush is the body Rocket.Chat servers send to a push gateway.
type RocketChatPush struct {
	Token   string            `json:"token"`
	Options RocketChatOptions `json:"options"`
}

// RocketChatOptions is the notification Rocket.Chat asks the gateway to deliver.
type RocketChatOptions struct {
	Title string `json:"title"`
	Text  string `json:"text"`
	Badge *int   `json:"badge"`
	Sound string `json:"sound"`
	// NotID groups notifications (iOS thread, Android notification id); often negative.
	NotID *int   `json:"notId"`
	Topic string `json:"topic"`
	APN   struct {
		Category string `json:"category"`
		Text     string `json:"text"`
	} `json:"apn"`
	GCM struct {
		Style string `json:"style"`
		Image string `json:"image"`
	} `json:"gcm"`
	// Payload is kept raw; the apps read it back as the JSON string "ejson".
	Payload          json.RawMessage `json:"payload"`
	ContentAvailable Flag            `json:"contentAvailable"`
	UniqueID         string          `json:"uniqueId"`
	CreatedAt        string          `json:"createdAt"`
	From             string          `json:"from"`
	UserID           string          `json:"userId"`
}

// rocketChatExpiry is how long APNs keeps an undelivered Rocket.Chat push (Rocket.Chat's own choice).
const rocketChatExpiry = time.Hour

// Flag is an on/off option that senders write as a number, a boolean or a
// string; it keeps the literal so it can be passed on as text.
type Flag string

// UnmarshalJSON accepts 1, 0, true, false, "1" and null.
func (f *Flag) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*f = ""
	case string(b) == "true" || string(b) == "false":
		*f = Flag(b)
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = Flag(s)
	default:
		if _, err := strconv.ParseFloat(string(b), 64); err != nil {
			return errors.New("flag must be a number, a boolean or a string")
		}
		*f = Flag(b)
	}
	return nil
}

// On reports whether the flag is set to something other than 0 or false.
func (f Flag) On() bool {
	return f != "" && f != "0" && f != "false"
}

// ejson returns the payload as compact JSON text, or "" when it is missing or null.
func (o *RocketChatOptions) ejson(scratch *bytes.Buffer) (string, error) {
	raw := bytes.TrimSpace(o.Payload)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	scratch.Reset()
	if err := json.Compact(scratch, raw); err != nil {
		return "", errors.New("options.payload is not valid JSON")
	}
	return scratch.String(), nil
}

// buildRocketChatAPNs fills n with the APNs request Rocket.Chat's own gateway sends.
func buildRocketChatAPNs(n *apnsMessage, topic string, p *RocketChatPush, voip bool, now time.Time) error {
	o := &p.Options
	ejson, err := o.ejson(&n.scratch)
	if err != nil {
		return err
	}
	n.token = p.Token
	n.priority = apns2.PriorityHigh
	n.expiration = now.Add(rocketChatExpiry)
	n.topic, n.pushType, n.limit = topic, apns2.PushTypeAlert, apnsLimit
	if voip {
		n.topic, n.pushType, n.limit = topic+".voip", apns2.PushTypeVOIP, apnsVoIPLimit
	}
	text := o.Text
	if o.APN.Text != "" {
		text = o.APN.Text
	}

	w := objWriter{b: n.payload[:0]}
	w.begin()
	w.object("aps")
	if o.Title != "" || text != "" {
		w.object("alert")
		w.strIfSet("title", o.Title)
		w.strIfSet("body", text)
		w.end()
	}
	if o.Badge != nil {
		w.int("badge", int64(*o.Badge))
	}
	w.strIfSet("sound", o.Sound)
	w.strIfSet("category", o.APN.Category)
	if o.NotID != nil {
		w.key("thread-id")
		w.b = append(w.b, '"')
		w.b = strconv.AppendInt(w.b, int64(*o.NotID), 10)
		w.b = append(w.b, '"')
	}
	if o.ContentAvailable.On() {
		w.int("content-available", 1)
	}
	w.int("mutable-content", 1)
	w.end()
	w.strIfSet("ejson", ejson)
	w.strIfSet("messageFrom", o.From)
	w.end()
	n.payload = w.b
	return nil
}

// buildRocketChatFCM fills n with the data-only FCM message Rocket.Chat's Android app reads.
func buildRocketChatFCM(n *fcmMessage, p *RocketChatPush) error {
	o := &p.Options
	ejson, err := o.ejson(&n.scratch)
	if err != nil {
		return err
	}
	n.token = p.Token
	n.limit = fcmLimit
	d := n.data
	if ejson != "" {
		d["ejson"] = ejson
	}
	if o.Title != "" {
		d["title"] = o.Title
	}
	if o.Text != "" {
		d["message"] = o.Text
	}
	if o.GCM.Image != "" {
		d["image"] = o.GCM.Image
	}
	if o.Badge != nil {
		d["msgcnt"] = strconv.Itoa(*o.Badge)
	}
	if o.Sound != "" {
		d["soundname"] = o.Sound
	}
	if o.NotID != nil {
		d["notId"] = strconv.Itoa(*o.NotID)
	}
	if o.GCM.Style != "" {
		d["style"] = o.GCM.Style
	}
	if o.ContentAvailable != "" {
		d["content-available"] = string(o.ContentAvailable)
	}
	return nil
}
