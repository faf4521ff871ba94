// The gorilla/websocket side of bench/fanout: a hub written like the classic gorilla chat example
// (one hub goroutine owning the client set, register/unregister/broadcast channels, a buffered
// send channel and a write goroutine per client). Two differences, so both servers do the same
// work: each message goes out as its own frame (the example joins queued messages with newlines
// into one), and only clients of /sub receive (the publisher connects to /pub).
//
// Usage: fanout_go -addr 127.0.0.1:0   (prints "port N" once listening)
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan []byte
}

type hub struct {
	clients    map[*client]bool
	broadcast  chan []byte
	register   chan *client
	unregister chan *client
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case message := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- message:
				default: // the slow consumer goes, as in the example
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

func (c *client) writePump() {
	defer c.conn.Close()
	for message := range c.send {
		if err := c.conn.WriteMessage(websocket.BinaryMessage, message); err != nil {
			return
		}
	}
	c.conn.WriteMessage(websocket.CloseMessage, []byte{})
}

func (c *client) readPump(publisher bool) {
	defer func() {
		if !publisher {
			c.hub.unregister <- c
		}
		c.conn.Close()
	}()
	for {
		_, message, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if publisher {
			c.hub.broadcast <- message
		}
	}
}

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}

func serve(h *hub, publisher bool, w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn.EnableWriteCompression(true) // a no-op unless the client offered permessage-deflate
	c := &client{hub: h, conn: conn, send: make(chan []byte, 256)}
	if !publisher {
		h.register <- c
		go c.writePump()
	}
	go c.readPump(publisher)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	deflate := flag.Bool("deflate", false, "accept permessage-deflate (compressed per connection)")
	flag.Parse()
	upgrader.EnableCompression = *deflate
	h := &hub{
		clients:    make(map[*client]bool),
		broadcast:  make(chan []byte),
		register:   make(chan *client),
		unregister: make(chan *client),
	}
	go h.run()
	http.HandleFunc("/sub", func(w http.ResponseWriter, r *http.Request) { serve(h, false, w, r) })
	http.HandleFunc("/pub", func(w http.ResponseWriter, r *http.Request) { serve(h, true, w, r) })
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("port %d\n", listener.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(http.Serve(listener, nil))
}
