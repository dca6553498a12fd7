// Command baseline is the yardstick of the throughput benchmark: the smallest useful net/http
// server, answering a fixed JSON body, started on 127.0.0.1:0 like backup-oracle.
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

	fmt.Printf("baseline listening on http://%s\n", ln.Addr())

	srv := &http.Server{Handler: mux} //nolint:gosec // benchmark yardstick on loopback
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
