package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
)

// Dev kit file names and defaults.
const (
	devAPNsKeyFile        = "apns-dev.p8"
	devServiceAccountFile = "fcm-dev-service-account.json"
	devTeamID             = "SANDBOXDEV"
	devProjectID          = "pushgate-dev"
	googleTokenURI        = "https://oauth2.googleapis.com/token"
)

// DevKit holds throwaway credentials for the dev apps, persisted in dir so restarts reuse them.
type DevKit struct {
	APNsKeyFile string // PKCS#8 EC P-256 PEM, like Apple's .p8
	APNsKeyID   string
	APNsTeamID  string
	APNsKey     *ecdsa.PublicKey

	ServiceAccountFile string // Google's service-account JSON
	ClientEmail        string
	ProjectID          string
	FCMKey             *rsa.PublicKey
}

// serviceAccount is Google's service-account key file, fields in Google's order.
type serviceAccount struct {
	Type                    string `json:"type"`
	ProjectID               string `json:"project_id"`
	PrivateKeyID            string `json:"private_key_id"`
	PrivateKey              string `json:"private_key"`
	ClientEmail             string `json:"client_email"`
	ClientID                string `json:"client_id"`
	AuthURI                 string `json:"auth_uri"`
	TokenURI                string `json:"token_uri"`
	AuthProviderX509CertURL string `json:"auth_provider_x509_cert_url"`
	ClientX509CertURL       string `json:"client_x509_cert_url"`
	UniverseDomain          string `json:"universe_domain"`
}

// EnsureDevKit creates the dev credentials in dir once and reuses their keys
// afterwards; the service account's token_uri and project are rewritten on
// every call because the sandbox port may change. An empty tokenURI keeps the
// file's current one, an empty projectID means "pushgate-dev".
func EnsureDevKit(dir, tokenURI, projectID string) (DevKit, error) {
	if projectID == "" {
		projectID = devProjectID
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DevKit{}, fmt.Errorf("sandbox: dev kit: %w", err)
	}
	kit := DevKit{
		APNsKeyFile:        filepath.Join(dir, devAPNsKeyFile),
		APNsTeamID:         devTeamID,
		ServiceAccountFile: filepath.Join(dir, devServiceAccountFile),
		ProjectID:          projectID,
	}

	apnsKey, err := loadOrCreateP8(kit.APNsKeyFile)
	if err != nil {
		return DevKit{}, err
	}
	kit.APNsKey = &apnsKey.PublicKey
	kit.APNsKeyID, err = appleKeyID(kit.APNsKey)
	if err != nil {
		return DevKit{}, err
	}

	sa, fcmKey, err := loadServiceAccount(kit.ServiceAccountFile)
	if err != nil {
		return DevKit{}, err
	}
	if fcmKey == nil {
		if fcmKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return DevKit{}, fmt.Errorf("sandbox: dev kit: generate FCM key: %w", err)
		}
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(fcmKey)
	if err != nil {
		return DevKit{}, fmt.Errorf("sandbox: dev kit: encode FCM key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&fcmKey.PublicKey)
	if err != nil {
		return DevKit{}, fmt.Errorf("sandbox: dev kit: encode FCM public key: %w", err)
	}
	if tokenURI == "" {
		tokenURI = sa.TokenURI
	}
	if tokenURI == "" {
		tokenURI = googleTokenURI
	}
	keyID := sha1.Sum(pubDER)
	idHash := sha256.Sum256(pubDER)
	clientID := new(big.Int).Mod(new(big.Int).SetBytes(idHash[:]), new(big.Int).Exp(big.NewInt(10), big.NewInt(20), nil))
	kit.ClientEmail = "pushgate-dev@" + projectID + ".iam.gserviceaccount.com"
	kit.FCMKey = &fcmKey.PublicKey
	sa = serviceAccount{
		Type:                    "service_account",
		ProjectID:               projectID,
		PrivateKeyID:            hex.EncodeToString(keyID[:]),
		PrivateKey:              string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		ClientEmail:             kit.ClientEmail,
		ClientID:                fmt.Sprintf("1%020d", clientID),
		AuthURI:                 "https://accounts.google.com/o/oauth2/auth",
		TokenURI:                tokenURI,
		AuthProviderX509CertURL: "https://www.googleapis.com/oauth2/v1/certs",
		ClientX509CertURL:       "https://www.googleapis.com/robot/v1/metadata/x509/" + url.PathEscape(kit.ClientEmail),
		UniverseDomain:          "googleapis.com",
	}
	b, err := json.MarshalIndent(sa, "", "  ")
	if err != nil {
		return DevKit{}, fmt.Errorf("sandbox: dev kit: %w", err)
	}
	if err := replaceFile(kit.ServiceAccountFile, append(b, '\n'), 0o600); err != nil {
		return DevKit{}, err
	}
	return kit, nil
}

// NewAPNsKey makes an APNs token-auth key and its .p8 file content, as Apple issues them.
func NewAPNsKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate APNs key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode APNs key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// loadOrCreateP8 reads an Apple-style .p8 key, creating it when absent.
func loadOrCreateP8(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, p8, err := NewAPNsKey()
		if err != nil {
			return nil, fmt.Errorf("sandbox: dev kit: %w", err)
		}
		if err := writeNewFile(path, p8, 0o600); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return nil, err
			}
			return loadOrCreateP8(path) // created concurrently; use that one
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: dev kit: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("sandbox: dev kit: %s is not a PEM file; remove it to create a new key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sandbox: dev kit: %s: %w", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("sandbox: dev kit: %s does not hold an EC P-256 key", path)
	}
	return key, nil
}

// loadServiceAccount reads an existing service-account file; a missing file gives a nil key.
func loadServiceAccount(path string) (serviceAccount, *rsa.PrivateKey, error) {
	var sa serviceAccount
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return sa, nil, nil
	}
	if err != nil {
		return sa, nil, fmt.Errorf("sandbox: dev kit: %w", err)
	}
	if err := json.Unmarshal(b, &sa); err != nil {
		return sa, nil, fmt.Errorf("sandbox: dev kit: %s: %w", path, err)
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return sa, nil, fmt.Errorf("sandbox: dev kit: %s has no PEM private_key; remove it to create a new one", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return sa, nil, fmt.Errorf("sandbox: dev kit: %s: %w", path, err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return sa, nil, fmt.Errorf("sandbox: dev kit: %s does not hold an RSA key", path)
	}
	return sa, key, nil
}

// appleKeyID derives a stable 10-character key id, shaped like Apple's, from the public key.
func appleKeyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("sandbox: dev kit: encode APNs public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base32.StdEncoding.EncodeToString(sum[:])[:10], nil
}

// replaceFile writes path atomically through a temporary file in the same directory.
func replaceFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp, mode)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sandbox: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}
