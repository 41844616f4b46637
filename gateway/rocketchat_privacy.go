package gateway

import (
	"encoding/json"
)

// RocketChatIDOnlyText is the generic text of an id-only Rocket.Chat push.
const RocketChatIDOnlyText = "You have a new message"

// rocketChatRef is the part of a Rocket.Chat payload that identifies the message.
type rocketChatRef struct {
	MessageID        string `json:"messageId"`
	NotificationType string `json:"notificationType"`
}

// MessageRef returns the payload's messageId and notificationType, which
// identify a notification across Rocket.Chat's retries; both are "" when the
// payload is missing (the admin test push) or has none.
func (o *RocketChatOptions) MessageRef() (messageID, notificationType string) {
	if len(o.Payload) == 0 || o.Payload[0] != '{' {
		return "", ""
	}
	var ref rocketChatRef
	if json.Unmarshal(o.Payload, &ref) != nil {
		return "", ""
	}
	return ref.MessageID, ref.NotificationType
}

// idOnlyPayloadKeys are the payload keys an id-only push keeps: enough for
// the app to fetch the message from its own server.
var idOnlyPayloadKeys = [...]string{"host", "messageId", "rid", "type", "messageType", "tmid"}

// StripContent applies the id_only privacy policy: titles, text and every
// name leave the process no more, and the payload asks the app to fetch the
// message itself (Rocket.Chat's "message-id-only" notification type).
func (p *RocketChatPush) StripContent() error {
	o := &p.Options
	o.Title = ""
	o.Text = RocketChatIDOnlyText
	o.APN.Text = ""
	o.GCM.Image = ""
	if len(o.Payload) == 0 || string(o.Payload) == "null" {
		return nil
	}
	var full map[string]json.RawMessage
	if err := json.Unmarshal(o.Payload, &full); err != nil {
		return err
	}
	kept := make(map[string]json.RawMessage, len(idOnlyPayloadKeys)+1)
	for _, k := range idOnlyPayloadKeys {
		if v, ok := full[k]; ok {
			kept[k] = v
		}
	}
	if _, ok := kept["messageId"]; ok {
		kept["notificationType"] = json.RawMessage(`"message-id-only"`)
	}
	raw, err := json.Marshal(kept)
	if err != nil {
		return err
	}
	o.Payload = raw
	return nil
}
