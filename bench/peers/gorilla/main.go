// Echo peer for bench/compare: gorilla/websocket, as in the package's examples/echo server (one
// goroutine per connection: ReadMessage, WriteMessage with the same type). GOMAXPROCS=1 makes
// it single-threaded like the other peers.
// Usage: gorilla_echo PORT   (binds 127.0.0.1)
// With PEER_TLS_CERT and PEER_TLS_KEY (PEM files) set it serves wss:// through
// http.ListenAndServeTLS, as net/http documents for HTTPS.
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	CheckOrigin: func(r *http.Request) bool { return true },
}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetReadLimit(64 << 20)
	for {
		mt, message, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, message); err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gorilla_echo PORT")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)
	addr := "127.0.0.1:" + os.Args[1]
	http.HandleFunc("/", echo)
	fmt.Fprintln(os.Stderr, "gorilla_echo: listening on "+addr)
	cert, key := os.Getenv("PEER_TLS_CERT"), os.Getenv("PEER_TLS_KEY")
	var err error
	if cert != "" && key != "" {
		err = http.ListenAndServeTLS(addr, cert, key, nil)
	} else {
		err = http.ListenAndServe(addr, nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
