package transform_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhr/herald/transform"
)

// FuzzMapping feeds admin-written expressions, value maps and redaction
// paths to Compile and runs what compiles over a record: nothing may
// panic, a compile error must name the field, and a mapped object must
// either encode or fail with an error.
func FuzzMapping(f *testing.F) {
	f.Add("new.status == 'Present' ? 'P' : 'A'", "Present", "ssn")
	f.Add("{'a': new, 'b': old?.x ?? 1}", "null", "bank.iban")
	f.Add("time.Format('2006-01-02') + key", "true", "children.ssn")
	f.Fuzz(func(t *testing.T, src, from, redact string) {
		b := transform.Body{
			Fields: map[string]string{"out": src},
			Values: map[string]map[string]any{"out": {from: "mapped"}},
			Redact: strings.Split(redact, ","),
		}
		m, err := b.Compile()
		if err != nil {
			if strings.TrimSpace(src) != "" && !strings.Contains(err.Error(), "fields[") && !strings.Contains(err.Error(), "redact") {
				t.Fatalf("compile error names neither the field nor the list: %v", err)
			}
			return
		}
		r := m.Shape(employee())
		obj, err := m.Map(r)
		if err != nil {
			return
		}
		_, _ = json.Marshal(obj)
		_ = transform.FormValues(obj).Encode()
		_ = m.RedactResponse([]byte(src), "application/json", []transform.Record{employee()})
	})
}
