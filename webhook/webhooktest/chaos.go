package webhooktest

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is one way a chaos receiver misbehaves.
type Fault int

// The faults a ChaosReceiver injects.
const (
	FaultNone      Fault = iota // 2xx
	Fault500                    // 500 Internal Server Error
	Fault503                    // 503 with Retry-After: 1
	Fault429                    // 429 Too Many Requests
	FaultSlowBody               // 200, then the body trickles
	FaultHang                   // never answers; the sender times out
	FaultReset                  // the connection is reset before any answer
	FaultBadStatus              // a malformed status line
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

// ChaosReceiver answers with a seeded, reproducible mix of successes and
// faults. It records the webhook-id, body and verification result of every
// request it processed (answered 2xx, including slow bodies whose sender
// may have given up), so a test can check that each message arrived, once
// after de-duplication, and in order.
type ChaosReceiver struct {
	*httptest.Server
	rate   float64 // share of requests that fail
	mu     sync.Mutex
	rng    *rand.Rand
	on     bool
	got    []Request
	counts [faultCount]int
	total  atomic.Int64
}

// NewChaosReceiver starts a chaos receiver on loopback that misbehaves for
// the given share of requests (0.3: 30%), choosing faults with a PRNG
// seeded by seed. It is closed when the test ends.
func NewChaosReceiver(t testing.TB, seed uint64, rate float64) *ChaosReceiver {
	c := &ChaosReceiver{rate: rate, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), on: true}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	c.Server.Config.ReadHeaderTimeout = 5 * time.Second
	c.Server.Start()
	t.Cleanup(c.Server.Close)
	return c
}

// Calm stops the faults: every later request is answered 200.
func (c *ChaosReceiver) Calm() {
	c.mu.Lock()
	c.on = false
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

// Processed returns every request answered 2xx, in order of arrival.
func (c *ChaosReceiver) Processed() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.got...)
}

// Total is the number of requests received.
func (c *ChaosReceiver) Total() int64 { return c.total.Load() }

func (c *ChaosReceiver) pick() Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := FaultNone
	if c.on && c.rng.Float64() < c.rate {
		f = Fault(1 + c.rng.IntN(int(faultCount)-1))
	}
	c.counts[f]++
	return f
}

func (c *ChaosReceiver) serve(w http.ResponseWriter, r *http.Request) {
	c.total.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f := c.pick()
	switch f {
	case Fault500:
		w.WriteHeader(http.StatusInternalServerError)
	case Fault503:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	case Fault429:
		w.WriteHeader(http.StatusTooManyRequests)
	case FaultHang:
		<-r.Context().Done()
	case FaultReset:
		hijack(w, func(conn net.Conn, _ *bufio.ReadWriter) {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		})
	case FaultBadStatus:
		hijack(w, func(_ net.Conn, rw *bufio.ReadWriter) {
			_, _ = rw.WriteString("HTTP/1.1 2OO Fine\r\nContent-Length: 0\r\n\r\n")
			_ = rw.Flush()
		})
	case FaultSlowBody:
		c.record(r, body)
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		for i := 0; i < 50; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			_, _ = w.Write([]byte("."))
			if fl != nil {
				fl.Flush()
			}
		}
	default:
		c.record(r, body)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (c *ChaosReceiver) record(r *http.Request, body []byte) {
	c.mu.Lock()
	c.got = append(c.got, Request{Method: r.Method, URL: r.URL.String(), Header: r.Header.Clone(), Body: body, Status: http.StatusOK})
	c.mu.Unlock()
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
