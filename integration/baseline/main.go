// Command baseline is the yardstick of the throughput benchmark: the smallest useful net/http
// server, answering a fixed JSON body, started on 127.0.0.1:0 like backup-oracle; over HTTPS
// when TLS_CERT_FILE and TLS_KEY_FILE are set (the yardstick of the secured service).
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	body := []byte(`{"exists":true,"decision":"restore","authoritative":true}`)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})

	srv := &http.Server{Handler: mux} //nolint:gosec // benchmark yardstick on loopback

	cert, key := os.Getenv("TLS_CERT_FILE"), os.Getenv("TLS_KEY_FILE")
	if cert == "" {
		fmt.Printf("baseline listening on http://%s\n", ln.Addr())
		err = srv.Serve(ln)
	} else {
		fmt.Printf("baseline listening on https://%s\n", ln.Addr())
		err = srv.ServeTLS(ln, cert, key)
	}

	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
