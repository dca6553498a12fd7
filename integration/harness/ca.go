package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCA is a certificate authority for a test: it issues serving certificates for 127.0.0.1
// and localhost, as the chart's generated one does for a port-forward.
type TestCA struct {
	// File is the CA certificate's PEM file (what clients and policies trust).
	File string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewTestCA writes a new CA certificate into dir.
func NewTestCA(t testing.TB, dir string) *TestCA {
	t.Helper()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "backup-oracle test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}

	ca := &TestCA{File: filepath.Join(dir, "ca.crt"), cert: cert, key: key}
	writePEM(t, ca.File, "CERTIFICATE", der)

	return ca
}

// Issue writes a serving certificate with serial number serial for 127.0.0.1 and localhost, and
// its key, to certFile and keyFile. Each is written to a new file renamed over the old one, as a
// renewal lands (the key first: a reader never pairs the new certificate with the old key for
// long).
func (ca *TestCA) Issue(t testing.TB, certFile, keyFile string, serial int64) {
	t.Helper()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "backup-oracle"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}

	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{keyFile, "EC PRIVATE KEY", keyDER}, {certFile, "CERTIFICATE", der}} {
		tmp := f.path + ".new"
		writePEM(t, tmp, f.typ, f.der)

		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
}
