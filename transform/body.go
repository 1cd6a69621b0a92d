package transform

import "fmt"

// Format is the shape of a request body.
type Format string

// Body formats.
const (
	// Envelope is the default JSON envelope: id, type, timestamp, data.
	Envelope Format = ""
	// JSON is the mapped object (or, for a batch, a list of them) as JSON.
	JSON Format = "json"
	// Form is the mapped object as application/x-www-form-urlencoded (the
	// query string for GET).
	Form Format = "form"
)

// Body says how a webhook's request body is made. The zero value is the
// default envelope.
type Body struct {
	Format Format `json:"format,omitempty"`
	// Fields maps output keys to expressions over the record.
	Fields map[string]string `json:"fields,omitempty"`
}

// Validate checks the body settings.
func (b Body) Validate() error {
	switch b.Format {
	case Envelope, JSON, Form:
	default:
		return fmt.Errorf("body format %q is not one of json, form or the default envelope", b.Format)
	}
	if b.Format != Envelope && len(b.Fields) == 0 {
		return fmt.Errorf("body format %s needs fields", b.Format)
	}
	return nil
}
