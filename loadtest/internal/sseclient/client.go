// Package sseclient is the load generator's Server-Sent Events client: a
// raw HTTP/1.1 GET over a socket bound to a chosen loopback source address
// (so that tens of thousands of streams do not run out of ephemeral
// ports), the text/event-stream parser, resuming with Last-Event-ID, and
// the tokens the sse-gateway accepts.
//
// A Client is used by one goroutine at a time; Close may be called from
// another to end a blocked Next.
package sseclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/freshet/freshet/loadtest/internal/safety"
)

// Event is one dispatched SSE event.
type Event struct {
	ID   string
	Type string // "message" when the stream named none
	Data []byte // valid until the next call of Next
}

// Client is one stream.
type Client struct {
	Addr   string // host:port, loopback only
	Source net.IP // local address to bind; nil: any
	Path   string // request path with query, e.g. /v1/stream?token=...
	// LastID is the id of the last event received, sent as Last-Event-ID
	// on Connect when set.
	LastID string

	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	data []byte
}

// ErrStatus is returned by Connect when the answer is not 200.
var ErrStatus = errors.New("stream refused")

// Connect opens the stream (after closing any previous one) and reads the
// response head.
func (c *Client) Connect(ctx context.Context) error {
	c.Close()
	var local net.Addr
	if c.Source != nil {
		local = &net.TCPAddr{IP: c.Source}
	}
	conn, err := safety.Dialer(local, 10*time.Second).DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: freshet\r\nAccept: text/event-stream\r\nConnection: close\r\n", c.Path)
	if c.LastID != "" {
		fmt.Fprintf(&req, "Last-Event-ID: %s\r\n", c.LastID)
	}
	req.WriteString("\r\n")
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(req.Bytes()); err != nil {
		conn.Close()
		return err
	}
	r := bufio.NewReaderSize(conn, 4096)
	status, err := r.ReadString('\n')
	if err != nil {
		conn.Close()
		return fmt.Errorf("read status: %w", err)
	}
	if !strings.Contains(status, " 200 ") {
		body, _ := io.ReadAll(io.LimitReader(r, 512))
		conn.Close()
		return fmt.Errorf("%w: %s %s", ErrStatus, strings.TrimSpace(status), lastLine(string(body)))
	}
	for { // headers
		l, err := r.ReadSlice('\n')
		if err != nil {
			conn.Close()
			return fmt.Errorf("read headers: %w", err)
		}
		if len(bytes.TrimSpace(l)) == 0 {
			break
		}
	}
	conn.SetDeadline(time.Time{})
	c.mu.Lock()
	c.conn, c.r = conn, r
	c.mu.Unlock()
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// Next reads until the next event is dispatched. The gateway sends no
// chunked encoding on a hijacked stream (it writes the raw event stream),
// and a stream served with chunked encoding is read through as-is: chunk
// size lines are not "field: value" lines and are ignored.
func (c *Client) Next() (Event, error) {
	c.mu.Lock()
	r := c.r
	c.mu.Unlock()
	if r == nil {
		return Event{}, net.ErrClosed
	}
	return parse(r, &c.data, &c.LastID)
}

// parse reads one event from r. data is reused between calls; lastID is
// updated by id fields.
func parse(r *bufio.Reader, data *[]byte, lastID *string) (Event, error) {
	ev := Event{}
	*data = (*data)[:0]
	hasData := false
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather it whole.
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			return Event{}, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if !hasData && ev.Type == "" {
				continue // nothing to dispatch (e.g. after a comment)
			}
			if ev.Type == "" {
				ev.Type = "message"
			}
			ev.Data = *data
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			ev.ID = string(value)
			*lastID = ev.ID
		case "event":
			ev.Type = string(value)
		case "data":
			if hasData {
				*data = append(*data, '\n')
			}
			*data = append(*data, value...)
			hasData = true
		}
	}
}

// Close closes the stream; safe to call twice and concurrently with Next.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// Source returns the i-th source address of client group g: addresses in
// 127.0.0.0/8 spread so that no source address holds more than 250
// streams, far from the 28,000 ephemeral ports each allows.
func Source(g, i int) net.IP {
	return net.IPv4(127, byte(10+g%200), byte(1+i/250%250), byte(1+i%250))
}

// Token returns an HS256 token the sse-gateway accepts (iss freshet, aud
// freshet-sse) for user, allowed on channels, valid for ttl.
func Token(secret, user string, channels []string, ttl time.Duration) (string, error) {
	claims := jwt.MapClaims{"iss": "freshet", "aud": "freshet-sse", "sub": user, "exp": time.Now().Add(ttl).Unix()}
	if len(channels) > 0 {
		claims["channels"] = channels
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

// StreamPath is the gateway's stream path for a token and channels.
func StreamPath(token string, channels []string) string {
	p := "/v1/stream?token=" + token
	if len(channels) > 0 {
		p += "&channels=" + strings.Join(channels, ",")
	}
	return p
}
