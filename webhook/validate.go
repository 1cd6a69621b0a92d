package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/transform"
)

// MaxBatchLimit is the largest MaxBatch a webhook may ask for.
const MaxBatchLimit = 1000

// validate checks w for Register and Update, collecting every problem;
// the error wraps ErrInvalidWebhook and never echoes secrets.
func (d *Dispatcher) validate(w *Webhook) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	w.Name = strings.TrimSpace(w.Name)
	if w.Name == "" {
		bad("name is required")
	}
	if strings.TrimSpace(w.Table) == "" {
		bad("table is required")
	}
	if len(w.Ops) == 0 {
		bad("ops: at least one of INSERT, UPDATE, DELETE is required")
	}
	for _, op := range w.Ops {
		if !op.Valid() {
			bad("ops: unknown op %q (INSERT, UPDATE or DELETE)", op)
		}
	}
	if err := d.checkURL(w.URL); err != nil {
		errs = append(errs, err)
	}
	switch w.Method {
	case "POST", "PUT", "PATCH":
	case "GET":
		if w.Body.Format != transform.Form || len(w.Body.Fields) == 0 {
			bad("method GET sends its body as a query string: it needs body format form with fields")
		}
	default:
		bad("method %q is not POST, PUT, PATCH or GET", w.Method)
	}
	for k, v := range w.Headers {
		if err := transform.CheckHeader(k, v); err != nil {
			bad("headers: %v", err)
		}
	}
	if err := w.Body.Validate(); err != nil {
		bad("body: %w", err)
	}
	if w.MaxBatch < 0 || w.MaxBatch > MaxBatchLimit {
		bad("max_batch %d is outside 0..%d", w.MaxBatch, MaxBatchLimit)
	}
	if w.MaxBatch > 1 && (w.Body.Format == transform.Form || w.Method == "GET") {
		bad("max_batch > 1 needs a JSON body: form and GET bodies cannot carry a batch")
	}
	errs = append(errs, checkLimits(*w)...)
	if err := d.checkHooks(*w); err != nil {
		errs = append(errs, err)
	}
	// Each hook may take HookTimeout: the attempt must still end within
	// its lease, or another worker would send the message again.
	if n := len(w.Before) + len(w.After); n > 0 {
		if need := d.cfg.AttemptTimeout + time.Duration(n)*d.cfg.HookTimeout; need >= d.cfg.LeaseDuration {
			bad("%d hooks may take %v with the attempt, not less than Config.LeaseDuration (%v): raise LeaseDuration or lower HookTimeout", n, need, d.cfg.LeaseDuration)
		}
	}
	if _, err := condition.Compile(w.When); err != nil {
		bad("when: %v", err)
	}
	errs = append(errs, d.validateCredentials(w)...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidWebhook, err)
	}
	return nil
}

func (d *Dispatcher) checkHooks(w Webhook) error {
	var errs []error
	for _, name := range w.Before {
		if _, err := d.cfg.Hooks.LookupBefore(name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range w.After {
		if _, err := d.cfg.Hooks.LookupAfter(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkURL accepts only absolute http(s) URLs with a host, and applies the
// transport's guard to what can be judged without DNS (the port, an IP
// literal, loopback and numeric names); the connect-time check of the
// resolved addresses is the real guard.
func (d *Dispatcher) checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("url is required")
	case err != nil:
		return fmt.Errorf("url %s does not parse", RedactURL(raw))
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url scheme %q is not http or https", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("url %s has no host", RedactURL(raw))
	case u.Opaque != "":
		return fmt.Errorf("url %s is not absolute", RedactURL(raw))
	}
	if strings.ContainsAny(raw, "\r\n\x00 ") {
		return errors.New("url holds white space or control characters")
	}
	if err := newGuard(&d.cfg).checkTarget(u); err != nil {
		return fmt.Errorf("url: %w", err)
	}
	return nil
}
