// Package gateway delivers notifications to APNs and FCM through the shared
// credentials of the official apps.
//
// A Registry holds one App per entry of the apps file, each with one provider
// client (one HTTP/2 connection pool) used by every workspace. An App builds
// the payload the official Mattermost or Rocket.Chat app expects, refuses it
// if it is over the provider's size limit, and sends it through one retry loop
// shared by both providers. Every send ends in one Outcome:
//
//   - Delivered.
//   - DeadToken: APNs BadDeviceToken, Unregistered, MissingDeviceToken,
//     DeviceTokenNotForTopic and ExpiredToken (410, the token is gone); FCM
//     UNREGISTERED, and INVALID_ARGUMENT when FCM says it is the registration
//     token that is invalid (a malformed token never becomes valid). FCM
//     SENDER_ID_MISMATCH is Failed: the token belongs to another Firebase
//     project, which is our configuration, not the device's.
//   - RetryLater: 429, 5xx, transport errors and timeouts, with the
//     provider's Retry-After.
//   - Failed: everything else (payload, topic, our credentials), with the
//     provider's reason.
//
// APNs goes through sideshow/apns2. FCM is spoken directly (HTTP v1, one
// POST per attempt, OAuth2 with the app's service account): the message is
// the one the Firebase Admin SDK would send, built without reflection, and
// the errors are classified by the FcmError code as the SDK classifies them.
// Neither client retries on its own: the Registry's loop, its attempt count
// and its deadline are the only ones.
package gateway
