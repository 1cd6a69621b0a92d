package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestAttendanceSync(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"shows absent", "records E-1001 present", "delivered", "shows present",
		"(Ada Lovelace, Engineering)", "has sync_status synced"} {
		if !strings.Contains(s, want) {
			t.Errorf("story lacks %q:\n%s", want, s)
		}
	}
	if strings.Index(s, "shows absent") > strings.Index(s, "shows present") {
		t.Errorf("A showed present before B recorded it:\n%s", s)
	}
	if strings.Index(s, "shows present") > strings.Index(s, "sync_status synced") {
		t.Errorf("B showed synced before A was updated:\n%s", s)
	}
}
