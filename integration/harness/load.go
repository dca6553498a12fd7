package harness

import (
	"context"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Client returns an HTTP client that keeps enough idle connections for conc workers.
func Client(conc int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone() //nolint:forcetypeassert // stdlib default
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conc*2, conc*2

	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// Throughput sends GETs for path from conc workers for d and returns requests per second.
// Only 200 answers count; any other answer or error is returned in failures.
func Throughput(client *http.Client, url string, conc int, d time.Duration) (perSecond float64, failures int64) {
	var ok, bad atomic.Int64

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()

	var wg sync.WaitGroup

	start := time.Now()

	for range conc {
		wg.Add(1)

		go func() {
			defer wg.Done()

			for ctx.Err() == nil {
				if get(ctx, client, url) == http.StatusOK {
					ok.Add(1)
				} else if ctx.Err() == nil {
					bad.Add(1)
				}
			}
		}()
	}

	wg.Wait()

	return float64(ok.Load()) / time.Since(start).Seconds(), bad.Load()
}

// Wave sends one request per URL, all at once, and returns each latency and status, in order.
func Wave(client *http.Client, urls []string) ([]time.Duration, []int) {
	lat, codes := make([]time.Duration, len(urls)), make([]int, len(urls))

	var wg sync.WaitGroup

	gate := make(chan struct{})

	for i, u := range urls {
		wg.Add(1)

		go func() {
			defer wg.Done()
			<-gate

			t := time.Now()
			codes[i] = get(context.Background(), client, u)
			lat[i] = time.Since(t)
		}()
	}

	close(gate)
	wg.Wait()

	return lat, codes
}

// Percentile returns the p-th percentile (0-100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })

	i := int(float64(len(s)-1) * p / 100)

	return s[i]
}

func get(ctx context.Context, client *http.Client, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}

	resp, err := client.Do(req)
	if err != nil {
		return 0
	}

	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()

	return resp.StatusCode
}

// Compare measures two URLs in alternating rounds (A then B, then B then A, ...) so drift in
// the machine's load affects both alike, and returns each one's requests per second.
func Compare(client *http.Client, a, b string, conc, rounds int, per time.Duration) (rpsA, rpsB float64, failures int64) {
	rpsA, rpsB, _, failures = CompareRatio(client, a, b, conc, rounds, per)
	return rpsA, rpsB, failures
}

// CompareRatio is Compare that also returns the median, over the rounds, of A's rate divided by
// B's measured right before or after it: on a shared machine a burst of other work spoils a
// round or two, which moves a mean but not a median.
func CompareRatio(client *http.Client, a, b string, conc, rounds int, per time.Duration) (rpsA, rpsB, medianRatio float64, failures int64) {
	var sumA, sumB float64

	ratios := make([]float64, 0, rounds)

	for i := range rounds {
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}

		r1, f1 := Throughput(client, first, conc, per)
		r2, f2 := Throughput(client, second, conc, per)
		failures += f1 + f2

		if i%2 == 1 {
			r1, r2 = r2, r1
		}

		sumA, sumB = sumA+r1, sumB+r2

		if r2 > 0 {
			ratios = append(ratios, r1/r2)
		}
	}

	sort.Float64s(ratios)

	if n := len(ratios); n > 0 {
		medianRatio = ratios[n/2]
		if n%2 == 0 {
			medianRatio = (ratios[n/2-1] + ratios[n/2]) / 2
		}
	}

	return sumA / float64(rounds), sumB / float64(rounds), medianRatio, failures
}
