// Go peer of bench/http/client.weft: N GETs of one URL with at most C in flight, the bodies'
// total length printed as a checksum. One http.Client (connection pool), idle connections per
// host raised to C so that both clients keep every connection open (Weft's curl pool does).
// Usage: http_client URL N C
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: http_client URL N C")
		os.Exit(2)
	}
	url := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	c, _ := strconv.Atoi(os.Args[3])
	tr := &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c}
	client := &http.Client{Transport: tr}
	var next, total int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.AddInt64(&next, 1) <= int64(n) {
				resp, err := client.Get(url)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					fmt.Fprintln(os.Stderr, "bad response", resp.StatusCode, err)
					os.Exit(1)
				}
				atomic.AddInt64(&total, int64(len(b)))
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "%d requests in %.3f s\n", n, time.Since(start).Seconds())
	fmt.Println(total)
}
