package transform_test

import (
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/heraldhr/herald/transform"
)

// tenFields is a payroll-style mapping of 10 keys: plain reads, a
// conditional, string building, a default and a date.
var tenFields = map[string]string{
	"employee_id": "new.employee_id",
	"name":        "new.first_name + ' ' + new.last_name",
	"department":  "new.department",
	"status":      "new.status == 'Present' ? 'P' : 'A'",
	"date":        "new.date",
	"hours":       "new.hours",
	"manager":     "new.manager ?? 'none'",
	"event":       "table + '.' + lower(op)",
	"actor":       "context.actor",
	"key":         "key",
}

func benchRecord() transform.Record {
	return transform.Record{
		EventID: "0190c1d2-0000-7000-8000-000000000001", Table: "attendance", Op: "INSERT", Key: "E-1001/2026-03-02",
		Tenant: "acme", Time: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		New: map[string]any{"employee_id": "E-1001", "first_name": "Ada", "last_name": "Lovelace",
			"department": "Engineering", "status": "Present", "date": "2026-03-02", "hours": 8.0},
		Context: map[string]any{"actor": "team-lead"},
	}
}

// BenchmarkMap measures a Fields mapping of 10 keys per record, against a
// bare expr.Run of the same 10 programs over a ready environment (the
// floor: no environment filled, no output object, no value maps or
// redaction). "interleaved" times both in turns within one loop and
// reports their ratio, which a busy machine disturbs less than two
// separate runs.
func BenchmarkMap(b *testing.B) {
	r := benchRecord()
	m, err := transform.Body{Fields: tenFields}.Compile()
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]any{"old": r.Old, "new": r.New, "changed": r.Changed, "op": r.Op, "table": r.Table,
		"key": r.Key, "tenant": r.Tenant, "context": r.Context, "id": r.EventID, "time": r.Time}
	var progs []*vm.Program
	for _, src := range tenFields {
		p, err := expr.Compile(src, expr.Env(env))
		if err != nil {
			b.Fatal(err)
		}
		progs = append(progs, p)
	}
	mapper := func() {
		if _, err := m.Map(r); err != nil {
			b.Fatal(err)
		}
	}
	bare := func() {
		for _, p := range progs {
			if _, err := expr.Run(p, env); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("mapper", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mapper()
		}
	})
	b.Run("expr.Run", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bare()
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		var inMapper, inBare time.Duration
		n := 0
		for b.Loop() {
			start := time.Now()
			mapper()
			mid := time.Now()
			bare()
			inMapper += mid.Sub(start)
			inBare += time.Since(mid)
			n++
		}
		b.ReportMetric(float64(inMapper.Nanoseconds())/float64(n), "mapper-ns/op")
		b.ReportMetric(float64(inBare.Nanoseconds())/float64(n), "expr.Run-ns/op")
		b.ReportMetric(float64(inMapper)/float64(inBare), "ratio")
	})
}

// BenchmarkShape measures selection, redaction and masking of one record.
func BenchmarkShape(b *testing.B) {
	m, err := transform.Body{Select: []string{"employee_id", "department", "status", "date", "hours"},
		Redact: []string{"ssn"}, Mask: []string{"hours"}}.Compile()
	if err != nil {
		b.Fatal(err)
	}
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Shape(r)
	}
}
