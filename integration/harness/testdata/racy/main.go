// Command racy has a data race on purpose: it checks that harness.Oracle reports what the race
// detector finds in a program built by harness.BuildOracleRace. It prints the line StartOracle
// waits for and serves nothing.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	counter := 0
	done := make(chan struct{})

	go func() {
		counter++ // races with the increment below

		close(done)
	}()

	counter++

	<-done
	fmt.Println("racy listening on http://127.0.0.1:0", counter)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	<-stop
}
