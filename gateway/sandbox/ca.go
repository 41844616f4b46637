package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// oidUserID is the subject attribute (UID) in which Apple's push certificates carry the topic.
func oidUserID() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1} }

// authority is the sandbox CA: it signs the server certificate and APNs client certificates.
type authority struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// loadOrCreateAuthority loads the CA from the PEM files, creates and writes it when
// both are absent, or keeps it in memory when no paths are given.
func loadOrCreateAuthority(certFile, keyFile string) (*authority, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("sandbox: CACertFile and CAKeyFile must be set together")
	}
	if certFile == "" {
		return newAuthority()
	}
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		return parseAuthority(certPEM, keyPEM)
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		ca, err := newAuthority()
		if err != nil {
			return nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
		if err != nil {
			return nil, fmt.Errorf("sandbox: encode CA key: %w", err)
		}
		if err := writeNewFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
			return nil, err
		}
		if err := writeNewFile(certFile, ca.certPEM, 0o644); err != nil {
			return nil, err
		}
		return ca, nil
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist), keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("sandbox: read CA: %w", errors.Join(certErr, keyErr))
	default:
		return nil, fmt.Errorf("sandbox: only one of %s and %s exists; restore the other or remove both to create a new CA", certFile, keyFile)
	}
}

func newAuthority() (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sandbox: generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{CommonName: "pushgate sandbox CA", Organization: []string{"pushgate sandbox"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sandbox: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sandbox: parse CA certificate: %w", err)
	}
	return &authority{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func parseAuthority(certPEM, keyPEM []byte) (*authority, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("sandbox: CA certificate file holds no PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sandbox: parse CA certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("sandbox: CA key file holds no PEM block")
	}
	var key *ecdsa.PrivateKey
	switch kb.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		var k any
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err == nil {
			var ok bool
			if key, ok = k.(*ecdsa.PrivateKey); !ok {
				err = fmt.Errorf("want an ECDSA key, got %T", k)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: parse CA key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("sandbox: CA key does not match the CA certificate")
	}
	if !cert.IsCA {
		return nil, errors.New("sandbox: CA certificate is not a CA")
	}
	return &authority{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cb.Bytes})}, nil
}

// serverCert issues the TLS certificate for the listener, valid for the given host names and IPs.
func (ca *authority) serverCert(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sandbox: generate server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: mustSerial(),
		Subject:      pkix.Name{CommonName: "pushgate sandbox", Organization: []string{"pushgate sandbox"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sandbox: create server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sandbox: parse server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// clientCert issues an APNs provider certificate for topic, shaped like Apple's.
func (ca *authority) clientCert(topic string) (certPEM, keyPEM []byte, err error) {
	if topic == "" {
		return nil, nil, errors.New("sandbox: client certificate needs a topic")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: generate client key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: mustSerial(),
		Subject: pkix.Name{
			CommonName:         "Apple Push Services: " + topic,
			OrganizationalUnit: []string{"SANDBOXTEAM"},
			Organization:       []string{"pushgate sandbox"},
			Country:            []string{"US"},
			ExtraNames:         []pkix.AttributeTypeAndValue{{Type: oidUserID(), Value: topic}},
		},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: create client certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: encode client key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// certTopic returns the topic an Apple-style push certificate is for.
func certTopic(c *x509.Certificate) string {
	uid := oidUserID()
	for _, n := range c.Subject.Names {
		if n.Type.Equal(uid) {
			if s, ok := n.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

func mustSerial() *big.Int {
	// rand.Int on crypto/rand does not fail on supported platforms.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

// writeNewFile creates path (and its directory) with mode, refusing to overwrite.
func writeNewFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("sandbox: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sandbox: write %s: %w", path, err)
	}
	return nil
}
