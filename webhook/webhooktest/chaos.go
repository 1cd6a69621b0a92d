package webhooktest

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhr/herald/signer"
)

// Fault is one way a chaos receiver misbehaves.
type Fault int

// The faults a ChaosReceiver injects. Only FaultNone and FaultSlowBody
// process the request (the receiver's application took it in); every
// other fault leaves it unprocessed.
const (
	FaultNone      Fault = iota // 204 No Content, at once
	Fault500                    // 500 Internal Server Error
	Fault503                    // 503 with Retry-After: 1
	Fault429                    // 429, with a Retry-After date every other time
	FaultSlowBody               // processed; 200, then a body trickling for longer than a sender waits
	FaultHang                   // never answers; the sender times out
	FaultReset                  // the connection is reset (TCP RST) before any answer
	FaultBadStatus              // a malformed status line, or a 1xx and then nothing
	faultCount
)

var faultNames = [...]string{"ok", "500", "503", "429", "slow-body", "hang", "reset", "bad-status"}

// String names the fault.
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// badStatusLines are the wrong answers FaultBadStatus chooses from: each
// must make an HTTP client fail the request, never read it as an answer.
var badStatusLines = []string{
	"HTTP/1.1 2OO Fine\r\nContent-Length: 0\r\n\r\n", // letters for digits
	"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",    // two digits
	"ICY 200 OK\r\nContent-Length: 0\r\n\r\n",        // not HTTP at all
	"HTTP/1.1 100 Continue\r\n\r\n",                  // a 1xx, then the line drops
}

// slowBodyFor is how long a slow body trickles: longer than any attempt
// timeout a chaos run uses, so the sender always gives up first.
const slowBodyFor = 2 * time.Second

// ChaosArrival is one request a ChaosReceiver got.
type ChaosArrival struct {
	Request
	// Fault is how the receiver answered.
	Fault Fault
	// N counts the arrivals of this webhook-id: 1 for the first.
	N int
	// Processed: the receiver's application took the request in (its
	// answer was 2xx, or began as 2xx).
	Processed bool
	// Cut: the sender hung up before the answer was complete, so it saw a
	// failure although the request was processed (a slow body).
	Cut bool
	// Epoch is the value of SetEpoch when the request arrived.
	Epoch int
	// At is when the receiver had read the whole request; Remote is the
	// sender's address (which tells one connection from another).
	At     time.Time
	Remote string
}

// ChaosReceiver answers with a seeded, reproducible mix of successes and
// faults. Whether a request fails, and how, is decided by a hash of the
// seed, the request's webhook-id and the number of times that id arrived,
// so one seed gives every message the same sequence of answers however
// the requests interleave. It verifies every signature with the secrets it
// was given and records every request, so a run can check that each
// message arrived, once after de-duplication, in order, and signed.
type ChaosReceiver struct {
	*httptest.Server
	seed  uint64
	rate  float64 // share of requests that fail
	calm  atomic.Bool
	total atomic.Int64

	mu      sync.Mutex
	secrets []string
	got     []ChaosArrival
	seen    map[string]int // arrivals by path and webhook-id
	counts  [faultCount]int
	epoch   int

	trap      netip.AddrPort
	trapConns atomic.Int64

	// Connections, for Quiesce: the open ones by the order the server
	// accepted them, and a channel closed (and replaced) whenever one
	// opens or ends.
	connMu   sync.Mutex
	accepted uint64
	open     map[net.Conn]uint64
	changed  chan struct{}
}

// NewChaosReceiver starts a chaos receiver on loopback that misbehaves for
// the given share of requests (0.3: 30%), with faults chosen by seed. It
// is closed when the test ends.
func NewChaosReceiver(t testing.TB, seed uint64, rate float64) *ChaosReceiver {
	c := newChaosReceiver(seed, rate)
	c.Server = httptest.NewUnstartedServer(c)
	c.Server.Config.ReadHeaderTimeout = 5 * time.Second
	c.Server.Config.ConnState = c.connState
	c.Server.Start()
	t.Cleanup(c.Server.Close)
	c.openTrap(t)
	return c
}

func newChaosReceiver(seed uint64, rate float64) *ChaosReceiver {
	return &ChaosReceiver{seed: seed, rate: rate, seen: map[string]int{}, open: map[net.Conn]uint64{}, changed: make(chan struct{})}
}

// connState follows the server's connections. The server reports a new
// one from its accept loop, so in the order it accepted them.
func (c *ChaosReceiver) connState(conn net.Conn, st http.ConnState) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	switch st {
	case http.StateNew:
		c.accepted++
		c.open[conn] = c.accepted
	case http.StateHijacked, http.StateClosed:
		if _, ok := c.open[conn]; !ok {
			return
		}
		delete(c.open, conn)
	default:
		return
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// Quiesce returns once the receiver has finished with every connection
// opened to it before the call: each request sent on them has been
// recorded (tagged with the epoch then in force) and answered, or its
// connection has ended. A test whose sending process has died calls it
// before SetEpoch, so a request the dead process wrote is counted for it
// even when the server reads it late: the server accepts connections in
// the order they were made, so once it has accepted one Quiesce dials
// itself, it has accepted every earlier one. It fails when ctx ends first,
// as it does while a live sender keeps a connection open.
func (c *ChaosReceiver) Quiesce(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Listener.Addr().String())
	if err != nil {
		return fmt.Errorf("chaos receiver: quiesce: %w", err)
	}
	defer conn.Close()
	me := conn.LocalAddr().String()
	for {
		c.connMu.Lock()
		var mine uint64
		for oc, n := range c.open {
			if oc.RemoteAddr().String() == me {
				mine = n
			}
		}
		busy := 0
		for _, n := range c.open {
			if mine == 0 || n < mine {
				busy++
			}
		}
		changed := c.changed
		c.connMu.Unlock()
		if mine != 0 && busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos receiver: quiesce: %d connections still open: %w", busy, ctx.Err())
		case <-changed:
		}
	}
}

// AddSecret adds a secret the receiver verifies signatures with (see
// Receiver.AddSecret).
func (c *ChaosReceiver) AddSecret(s string) {
	if strings.HasPrefix(s, "whsk_") {
		if pub, err := signer.PublicKey(s); err == nil {
			s = pub
		}
	}
	c.mu.Lock()
	c.secrets = append(c.secrets, s)
	c.mu.Unlock()
}

// Calm stops the faults: every later request is answered 204.
func (c *ChaosReceiver) Calm() { c.calm.Store(true) }

// SetEpoch tags the requests that arrive from now on, so a test that
// restarts its dispatcher can tell which process sent what.
func (c *ChaosReceiver) SetEpoch(n int) {
	c.mu.Lock()
	c.epoch = n
	c.mu.Unlock()
}

// Faults returns how many requests got each fault.
func (c *ChaosReceiver) Faults() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for f, n := range c.counts {
		out[Fault(f).String()] = n
	}
	return out
}

// Arrivals returns every request received, in order of arrival.
func (c *ChaosReceiver) Arrivals() []ChaosArrival {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ChaosArrival(nil), c.got...)
}

// Processed returns every request the receiver processed, in order of
// arrival, slow bodies included.
func (c *ChaosReceiver) Processed() []Request {
	var out []Request
	for _, a := range c.Arrivals() {
		if a.Processed {
			out = append(out, a.Request)
		}
	}
	return out
}

// Total is the number of requests received.
func (c *ChaosReceiver) Total() int64 { return c.total.Load() }

// FaultFor returns the answer the receiver gives to the nth arrival of a
// message at a path while it misbehaves: a pure function of the seed, the
// path, the webhook-id and n.
func (c *ChaosReceiver) FaultFor(path, id string, n int) Fault {
	return c.faultFor(path+" "+id, n)
}

func (c *ChaosReceiver) faultFor(id string, n int) Fault {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], c.seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(n))
	h.Write(b[:])
	h.Write([]byte(id))
	x := mix(h.Sum64())
	if float64(x>>11)/(1<<53) >= c.rate {
		return FaultNone
	}
	return Fault(1 + mix(x)%uint64(faultCount-1))
}

// variant picks among the forms of a fault, reproducibly.
func (c *ChaosReceiver) variant(id string, n, of int) int {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(mix(h.Sum64()^c.seed^uint64(n)*0x9e3779b97f4a7c15) % uint64(of))
}

// mix is splitmix64's finaliser: it spreads every input bit over the word.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// ServeHTTP answers one request as the seed decides.
func (c *ChaosReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.total.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the sender hung up mid-request: nothing arrived
	}
	id := r.URL.Path + " " + r.Header.Get("Webhook-Id")
	c.mu.Lock()
	c.seen[id]++
	n := c.seen[id]
	f := FaultNone
	if !c.calm.Load() {
		f = c.faultFor(id, n)
	}
	c.counts[f]++
	a := ChaosArrival{Request: Request{Method: r.Method, URL: r.URL.String(), Header: r.Header.Clone(), Body: body},
		Fault: f, N: n, Processed: f == FaultNone || f == FaultSlowBody, Epoch: c.epoch,
		At: time.Now(), Remote: r.RemoteAddr}
	a.VerifyErr = verify(c.secrets, time.Now(), r.Header, body)
	switch f {
	case FaultNone:
		a.Status = http.StatusNoContent
	case FaultSlowBody:
		a.Status = http.StatusOK
	}
	i := len(c.got)
	c.got = append(c.got, a)
	c.mu.Unlock()

	switch f {
	case Fault500:
		w.WriteHeader(http.StatusInternalServerError)
	case Fault503:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	case Fault429:
		if c.variant(id, n, 2) == 0 {
			w.Header().Set("Retry-After", time.Now().Add(time.Second).UTC().Format(http.TimeFormat))
		}
		w.WriteHeader(http.StatusTooManyRequests)
	case FaultHang:
		<-r.Context().Done()
	case FaultReset:
		hijack(w, func(conn net.Conn, _ *bufio.ReadWriter) {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close sends RST, not FIN
			}
		})
	case FaultBadStatus:
		line := badStatusLines[c.variant(id, n, len(badStatusLines))]
		hijack(w, func(_ net.Conn, rw *bufio.ReadWriter) {
			_, _ = rw.WriteString(line)
			_ = rw.Flush()
		})
	case FaultSlowBody:
		if !trickle(w, r) {
			c.mu.Lock()
			c.got[i].Cut = true
			c.mu.Unlock()
		}
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// trickle answers 200 and sends the body a byte at a time for
// slowBodyFor; it reports whether the whole body went out before the
// sender hung up.
func trickle(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Set("Content-Length", strconv.Itoa(int(slowBodyFor/(20*time.Millisecond))))
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for range int(slowBodyFor / (20 * time.Millisecond)) {
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return false
		case <-t.C:
		}
		if _, err := w.Write([]byte(".")); err != nil {
			return false
		}
	}
	return true
}

func hijack(w http.ResponseWriter, f func(net.Conn, *bufio.ReadWriter)) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	f(conn, rw)
	_ = conn.Close()
}

// ChaosTargets says where a chaos receiver and its trap listen. The trap
// is a listener a guarded sender must never reach: it listens on the
// receiver's port at an address the guard refuses (127.0.0.2, or [::1]
// where that is not available). Trap is the zero AddrPort when neither
// could be opened.
type ChaosTargets struct {
	Receiver netip.AddrPort
	Trap     netip.AddrPort
}

// String encodes the targets for a child process; ParseChaosTargets reads
// them back.
func (t ChaosTargets) String() string {
	trap := "-"
	if t.Trap.IsValid() {
		trap = t.Trap.String()
	}
	return t.Receiver.String() + " " + trap
}

// ParseChaosTargets reads what ChaosTargets.String wrote.
func ParseChaosTargets(s string) (ChaosTargets, error) {
	rcv, trap, ok := strings.Cut(s, " ")
	var t ChaosTargets
	var err error
	if !ok {
		return t, fmt.Errorf("chaos targets %q: want two addresses", s)
	}
	if t.Receiver, err = netip.ParseAddrPort(rcv); err != nil {
		return t, fmt.Errorf("chaos targets: %w", err)
	}
	if trap != "-" {
		if t.Trap, err = netip.ParseAddrPort(trap); err != nil {
			return t, fmt.Errorf("chaos targets: %w", err)
		}
	}
	return t, nil
}

// Targets returns where the receiver and its trap listen.
func (c *ChaosReceiver) Targets() ChaosTargets {
	rcv, _ := netip.ParseAddrPort(c.Listener.Addr().String())
	return ChaosTargets{Receiver: rcv, Trap: c.trap}
}

// TrapConnections returns how many connections the trap accepted.
func (c *ChaosReceiver) TrapConnections() int { return int(c.trapConns.Load()) }

// openTrap listens on the receiver's port at an address the guard
// refuses, counting and closing every connection it accepts.
func (c *ChaosReceiver) openTrap(t testing.TB) {
	rcv, err := netip.ParseAddrPort(c.Listener.Addr().String())
	if err != nil || !rcv.Addr().Is4() {
		return
	}
	var l net.Listener
	for _, host := range []string{"127.0.0.2", "[::1]"} {
		if l, err = net.Listen("tcp", host+":"+strconv.Itoa(int(rcv.Port()))); err == nil {
			break
		}
	}
	if err != nil {
		return
	}
	c.trap, _ = netip.ParseAddrPort(l.Addr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.trapConns.Add(1)
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
}
