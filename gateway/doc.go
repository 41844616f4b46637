// Package gateway delivers notifications to APNs and FCM through the shared
// credentials of the official apps.
//
// A Registry holds one App per entry of the apps file, each with one provider
// client (one HTTP/2 connection pool) used by every workspace. Each kind of
// provider (apns.go, fcm.go) builds its own message type, sends it and
// classifies the answer; providerKinds lists the kinds. An App builds
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
//     provider's Retry-After; also our credential refused as stale (APNs
//     ExpiredProviderToken, FCM 401 UNAUTHENTICATED), which the send rebuilds
//     for the next attempt.
//   - Failed: everything else (payload, topic, our credentials), with the
//     provider's reason.
//
// Both providers are spoken directly over one HTTP/2 pool per app, one POST
// per attempt and no retries of their own: the Registry's loop, its attempt
// count and its deadline are the only ones. The APNs request is the one
// sideshow/apns2 sends (apns2 still signs the provider token and reads
// certificates); the FCM v1 request carries the message the Firebase Admin
// SDK would send, built without reflection, with OAuth2 from the app's
// service account, and its errors are classified by the FcmError code as the
// SDK classifies them. Tests compare both requests with those libraries'.
package gateway
