package gateway

import (
	"net"
	"syscall"
	"time"
)

// peerClosed reports whether the client of a hijacked connection has gone:
// a non-blocking peek reads end of file or an error. Nobody reads a stream's
// connection otherwise, so without it a departed client would only be
// noticed at the next write (a heartbeat), holding its connection slots
// until then.
func peerClosed(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EINTR)
		return true // never wait
	})
	return closed || err != nil
}

// reapInterval is how often every hijacked stream is checked for a client
// that went away.
const reapInterval = time.Second

// reap ends the streams (among cs) whose client went away. It reports how
// many.
func reap(cs []*conn) int {
	n := 0
	for _, c := range cs {
		if nc := c.netConn(); nc != nil && peerClosed(nc) {
			c.kick(reasonGone)
			n++
		}
	}
	return n
}

// streams returns the connections of key (all of them for ""), for reap.
func (h *hub) streams(key string) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*conn
	if key == "" {
		out = make([]*conn, 0, len(h.conns))
		for c := range h.conns {
			out = append(out, c)
		}
		return out
	}
	for c := range h.subs[key] {
		out = append(out, c)
	}
	return out
}
