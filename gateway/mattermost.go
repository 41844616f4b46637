package gateway

import (
	"strconv"
	"strings"

	"github.com/sideshow/apns2"
)

// MattermostPush is the body of Mattermost's send_push request (model.PushNotification).
type MattermostPush struct {
	AckID    string `json:"ack_id"`
	Platform string `json:"platform"`
	ServerID string `json:"server_id"`
	DeviceID string `json:"device_id"`
	PostID   string `json:"post_id"`
	Category string `json:"category"`
	Sound    string `json:"sound"`
	Message  string `json:"message"`
	Badge    int    `json:"badge"`
	// ContentAvailable is an int on the wire (model.PushNotification.ContentAvailable); Flag also takes a boolean.
	ContentAvailable Flag   `json:"cont_ava"`
	TeamID           string `json:"team_id"`
	ChannelID        string `json:"channel_id"`
	RootID           string `json:"root_id"`
	ChannelName      string `json:"channel_name"`
	Type             string `json:"type"`
	SubType          string `json:"sub_type"`
	Transport        string `json:"transport"`
	SenderID         string `json:"sender_id"`
	SenderName       string `json:"sender_name"`
	OverrideUsername string `json:"override_username"`
	OverrideIconURL  string `json:"override_icon_url"`
	FromWebhook      string `json:"from_webhook"`
	Version          string `json:"version"`
	IsCRTEnabled     bool   `json:"is_crt_enabled"`
	IsIDLoaded       bool   `json:"is_id_loaded"`
	Signature        string `json:"signature"`
}

// Mattermost push types and transports.
const (
	MattermostTypeMessage     = "message"
	MattermostTypeSession     = "session"
	MattermostTypeClear       = "clear"
	MattermostTypeUpdateBadge = "update_badge"
	MattermostTypeTest        = "test"
	MattermostTransportVoIP   = "voip"

	// IDLoadedMessage is the generic text of an id-only push (Mattermost's own wording).
	IDLoadedMessage = "You've received a new message."
)

// Field limits of the reference push proxy (bytes; it cuts longer values).
const (
	mattermostMessageMax     = 2047
	mattermostMessageCut     = 2046
	mattermostChannelNameMax = 64
)

// PlatformName strips the app-version suffix Mattermost appends ("apple_rn-v2" → "apple_rn").
func PlatformName(platform string) string {
	name, _ := splitPlatform(platform)
	return name
}

// splitPlatform returns the platform without "-vN" and the app version N (1 when absent).
func splitPlatform(platform string) (string, int) {
	i := strings.Index(platform, "-v")
	if i < 0 {
		return platform, 1
	}
	v, err := strconv.Atoi(platform[i+2:])
	if err != nil {
		v = 1
	}
	return platform[:i], v
}

// prepareMattermost applies the proxy's field limits and the workspace's
// id-only privacy policy to a copy of p.
func prepareMattermost(p *MattermostPush, idOnly bool) MattermostPush {
	q := *p
	if len(q.Message) > mattermostMessageMax {
		q.Message = truncateUTF8(q.Message, mattermostMessageCut)
	}
	q.ChannelName = truncateUTF8(q.ChannelName, mattermostChannelNameMax)
	if idOnly {
		q.ChannelName, q.SenderName, q.OverrideUsername, q.OverrideIconURL = "", "", "", ""
		if q.Type == MattermostTypeMessage || q.Type == "" {
			q.IsIDLoaded = true
			q.Message = IDLoadedMessage
		}
	}
	return q
}

// buildMattermostAPNs fills n with the APNs request the official apps expect,
// mirroring mattermost-push-proxy's AppleNotificationServer.
func buildMattermostAPNs(n *apnsMessage, topic string, p *MattermostPush, idOnly bool) {
	q := prepareMattermost(p, idOnly)
	n.token = q.DeviceID
	n.priority = apns2.PriorityHigh
	if q.Transport == MattermostTransportVoIP {
		n.topic = topic + ".voip"
		n.pushType = apns2.PushTypeVOIP
		n.limit = apnsVoIPLimit
		n.payload = appendMattermostVoIP(n.payload[:0], &q)
		return
	}
	n.topic = topic
	n.pushType = apns2.PushTypeAlert
	n.limit = apnsLimit
	_, appVersion := splitPlatform(q.Platform)
	n.payload = appendMattermostAPNs(n.payload[:0], &q, appVersion)
}

func appendMattermostAPNs(b []byte, q *MattermostPush, appVersion int) []byte {
	w := objWriter{b: b}
	w.begin()
	w.object("aps")
	content := q.IsIDLoaded || q.Type == MattermostTypeMessage || q.Type == MattermostTypeSession
	if content {
		switch {
		case q.IsIDLoaded:
			w.object("alert")
			w.str("body", q.Message)
			w.end()
		case q.ChannelName != "" && q.Version == "v2":
			w.object("alert")
			w.str("title", q.ChannelName)
			w.str("body", q.Message)
			w.end()
		default:
			w.str("alert", q.Message)
		}
	}
	switch {
	case q.Badge == 0 && q.Type == MattermostTypeClear && appVersion > 1:
		w.int("badge", 1)
	case q.Badge != -1:
		w.int("badge", int64(q.Badge))
	}
	if content {
		w.str("sound", "default")
		w.strIfSet("category", q.Category)
	}
	if q.ChannelID != "" {
		if q.IsCRTEnabled && q.RootID != "" {
			w.str("thread-id", q.RootID)
		} else {
			w.str("thread-id", q.ChannelID)
		}
	}
	if q.IsIDLoaded || q.Type == MattermostTypeMessage || q.Type == MattermostTypeClear || q.Type == MattermostTypeTest {
		w.int("content-available", 1)
	}
	if content {
		w.int("mutable-content", 1)
	}
	w.end()

	if content {
		w.str("version", q.Version)
	}
	if q.IsIDLoaded {
		w.bool("id_loaded", true)
	} else if content {
		w.strIfSet("channel_name", q.ChannelName)
	}
	w.str("type", q.Type)
	w.str("sub_type", q.SubType)
	w.str("server_id", q.ServerID)
	w.strIfSet("ack_id", q.AckID)
	w.bool("is_crt_enabled", q.IsCRTEnabled)
	w.strIfSet("channel_id", q.ChannelID)
	w.str("signature", signature(q.Signature))
	w.strIfSet("team_id", q.TeamID)
	w.strIfSet("sender_id", q.SenderID)
	w.strIfSet("sender_name", q.SenderName)
	w.strIfSet("post_id", q.PostID)
	w.strIfSet("root_id", q.RootID)
	w.strIfSet("override_username", q.OverrideUsername)
	w.strIfSet("override_icon_url", q.OverrideIconURL)
	w.strIfSet("from_webhook", q.FromWebhook)
	w.end()
	return w.b
}

// appendMattermostVoIP builds the PushKit payload: routing fields only, the
// call itself is fetched by the app.
func appendMattermostVoIP(b []byte, q *MattermostPush) []byte {
	w := objWriter{b: b}
	w.begin()
	w.object("aps")
	w.int("content-available", 1)
	w.end()
	w.str("type", q.Type)
	w.str("sub_type", q.SubType)
	w.str("channel_id", q.ChannelID)
	w.str("server_id", q.ServerID)
	w.str("post_id", q.PostID)
	w.str("thread_id", q.RootID)
	w.str("sender_id", q.SenderID)
	w.bool("id_loaded", q.IsIDLoaded)
	w.strIfSet("sender_name", q.SenderName)
	w.strIfSet("channel_name", q.ChannelName)
	w.strIfSet("ack_id", q.AckID)
	w.str("signature", signature(q.Signature))
	w.end()
	return w.b
}

// buildMattermostFCM fills n with the data-only FCM message the official
// Android app expects, mirroring mattermost-push-proxy's AndroidNotificationServer.
func buildMattermostFCM(n *fcmMessage, p *MattermostPush, idOnly bool) {
	q := prepareMattermost(p, idOnly)
	n.token = q.DeviceID
	n.limit = fcmLimit
	d := n.data
	d["ack_id"] = q.AckID
	d["type"] = q.Type
	d["sub_type"] = q.SubType
	d["version"] = q.Version
	d["channel_id"] = q.ChannelID
	d["is_crt_enabled"] = strconv.FormatBool(q.IsCRTEnabled)
	d["server_id"] = q.ServerID
	d["category"] = q.Category
	if q.Badge != -1 {
		d["badge"] = strconv.Itoa(q.Badge)
	}
	if q.RootID != "" {
		d["root_id"] = q.RootID
	}
	d["signature"] = signature(q.Signature)
	switch {
	case q.IsIDLoaded:
		d["post_id"] = q.PostID
		d["message"] = q.Message
		d["id_loaded"] = "true"
		d["sender_id"] = q.SenderID
		d["sender_name"] = "Someone"
		d["team_id"] = q.TeamID
	case q.Type == MattermostTypeMessage || q.Type == MattermostTypeSession:
		d["team_id"] = q.TeamID
		d["sender_id"] = q.SenderID
		d["sender_name"] = q.SenderName
		d["message"] = q.Message
		d["channel_name"] = q.ChannelName
		d["post_id"] = q.PostID
		d["override_username"] = q.OverrideUsername
		d["override_icon_url"] = q.OverrideIconURL
		d["from_webhook"] = q.FromWebhook
	}
}

func signature(s string) string {
	if s == "" {
		return "NO_SIGNATURE"
	}
	return s
}
