package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestOnboarding(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		`payroll got application/json {"employee_id":"E-2001","event":"hired"`,
		`"event":"salary_changed"`,
		"it got application/json",
		"manager got application/x-www-form-urlencoded",
		"identity got application/cloudevents+json",
		"every system got exactly what it should",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("story lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "QQ123456C"); n != 2 {
		t.Errorf("the national ID shows %d times, want twice (payroll's two requests):\n%s", n, s)
	}
}

// check must be able to fail: a system that got the national ID, or a
// request too many, is reported.
func TestCheckFails(t *testing.T) {
	systems := map[string]*system{}
	for _, n := range []string{"payroll", "it", "manager", "identity"} {
		systems[n] = &system{name: n}
	}
	systems["it"].got = []received{{contentType: "application/json", body: []byte(`{"data":{"new":{"national_id":"QQ123456C"}}}`)}}
	err := check(systems)
	if err == nil {
		t.Fatal("check passed with nothing delivered")
	}
	for _, want := range []string{"payroll got 0 requests, want 2", `it saw "QQ123456C"`, "identity got 0 requests"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("check's error lacks %q: %v", want, err)
		}
	}
}
