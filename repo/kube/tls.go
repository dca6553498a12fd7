package kube

import (
	"context"
	"crypto/tls"
	"fmt"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// ServingTLS is a TLS configuration serving the certificate and key in two PEM files, reloaded
// when they change on disk (k8s.io/apiserver's dynamiccertificates: an fsnotify watch, which
// follows a Kubernetes Secret volume's symlink swap, checked again every minute), so a renewed
// certificate is served without a restart. When clientCA is set, client certificates are
// requested (not required) and advertised as signed by it: an authenticating proxy presents one
// (AuthConfig.Proxy verifies it).
type ServingTLS struct {
	Config *tls.Config

	cert       *dynamiccertificates.DynamicCertKeyPairContent
	ca         *dynamiccertificates.DynamicFileCAContent
	controller *dynamiccertificates.DynamicServingCertificateController
}

// NewServingTLS reads the files once (an error names the file and the problem) and returns the
// configuration; Run keeps it current.
func NewServingTLS(certFile, keyFile, clientCA string) (*ServingTLS, error) {
	cert, err := dynamiccertificates.NewDynamicServingContentFromFiles("serving-cert", certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("kube: serving certificate %q, key %q: %w", certFile, keyFile, err)
	}

	s := &ServingTLS{cert: cert}
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}

	var caProvider dynamiccertificates.CAContentProvider

	if clientCA != "" {
		if s.ca, err = dynamiccertificates.NewDynamicCAContentFromFile("client-ca", clientCA); err != nil {
			return nil, fmt.Errorf("kube: client CA %q: %w", clientCA, err)
		}

		caProvider = s.ca
		base.ClientAuth = tls.RequestClientCert
	}

	s.controller = dynamiccertificates.NewDynamicServingCertificateController(base, caProvider, cert, nil, nil)
	cert.AddListener(s.controller)

	if s.ca != nil {
		s.ca.AddListener(s.controller)
	}

	if err := s.controller.RunOnce(); err != nil {
		return nil, fmt.Errorf("kube: TLS configuration: %w", err)
	}

	s.Config = &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: s.controller.GetConfigForClient, NextProtos: base.NextProtos} //nolint:gosec // the per-client configuration sets everything

	return s, nil
}

// Run watches the files until ctx is done.
func (s *ServingTLS) Run(ctx context.Context) {
	go s.cert.Run(ctx, 1)

	if s.ca != nil {
		go s.ca.Run(ctx, 1)
	}

	go s.controller.Run(1, ctx.Done())
}
