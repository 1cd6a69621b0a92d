package webhook

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// Attempts that wait for a token while a fetch runs share its outcome: a
// failing token endpoint is asked once, not once per queued message. An
// attempt that comes after the failure asks again.
func TestTokenWaitersShareOneFetch(t *testing.T) {
	for _, fail := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			var e tokenEntry
			e.lock = make(chan struct{}, 1)
			release := make(chan struct{})
			fetches := 0
			fetch := func(context.Context) (string, time.Time, error) {
				fetches++
				<-release
				if fail {
					return "", time.Time{}, errors.New("token endpoint down")
				}
				return "Bearer t", time.Time{}, nil
			}
			ctx := context.Background()
			var wg sync.WaitGroup
			results := make([]error, 5)
			for i := range results {
				wg.Go(func() {
					_, results[i] = e.get(ctx, fetch, time.Now)
				})
				synctest.Wait() // the first runs the fetch; the others wait on it
			}
			close(release)
			wg.Wait()
			assert.Equal(t, 1, fetches, "one fetch for five waiting attempts")
			for _, err := range results {
				if fail {
					assert.EqualError(t, err, "token endpoint down")
				} else {
					assert.NoError(t, err)
				}
			}
			if fail {
				release = make(chan struct{})
				close(release)
				_, _ = e.get(ctx, fetch, time.Now)
				assert.Equal(t, 2, fetches, "a later attempt asks again")
			}
		})
	}
}

// A waiting attempt whose context ends stops waiting.
func TestTokenWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var e tokenEntry
		e.lock = make(chan struct{}, 1)
		release := make(chan struct{})
		go func() {
			_, _ = e.get(context.Background(), func(context.Context) (string, time.Time, error) {
				<-release
				return "Bearer t", time.Time{}, nil
			}, time.Now)
		}()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := e.get(ctx, nil, time.Now)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		close(release)
	})
}
