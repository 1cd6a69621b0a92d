package webhook

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// delay returns the wait after the given number of failed attempts (1 after
// the first), drawn from the policy's exponential schedule with jitter.
func (p RetryPolicy) delay(failed int) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: p.Jitter,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.MaxInterval,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	var d time.Duration
	for range max(failed, 1) {
		d = b.NextBackOff()
	}
	return d
}

// retryAfter reads a Retry-After header (seconds or an HTTP date) and
// returns the wait it asks for, capped, or 0 when absent or unreadable.
func retryAfter(h http.Header, now time.Time, limit time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs >= uint64(limit/time.Second) {
			return limit // also keeps a huge number from overflowing
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, limit)
}
