// The HTTP server of the http benchmark (bench/http/run.py): both clients, Weft's and Go's
// (bench/peers/http_client.go), fetch from this one process, so they are measured against the
// same server. Go's net/http with keep-alive; GET / answers 64 bytes of text.
// Usage: server [port]   (prints the port it listens on, on 127.0.0.1, as the first line)
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body := []byte(strings.Repeat("weft-bench!\n", 5) + "ok-ok\n")[:64]
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	http.Serve(ln, nil)
}
