package failpoint

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestArmAndFire(t *testing.T) {
	var fired []string
	kill = func(name string) { fired = append(fired, name) }
	t.Cleanup(func() {
		kill = killSelf
		_ = Arm("")
	})

	Hit("a")
	assert.False(t, Armed())
	require.NoError(t, Arm("a=kill@3, b=kill@1"))
	assert.True(t, Armed())
	Hit("a")
	Hit("a")
	assert.Empty(t, fired)
	Hit("a")
	assert.Equal(t, []string{"a"}, fired, "the third hit fires")
	Hit("a")
	assert.Len(t, fired, 1, "a point fires once")
	Hit("c")
	Hit("b")
	assert.Equal(t, []string{"a", "b"}, fired)
	assert.Equal(t, 4, Hits("a"))

	require.NoError(t, Arm(""))
	assert.False(t, Armed())
	Hit("b")
	assert.Len(t, fired, 2)
}

func TestArmRejectsBadSpecs(t *testing.T) {
	for _, spec := range []string{"a", "a=kill", "a=kill@0", "a=panic@1", "=kill@1", "a=kill@x"} {
		assert.Error(t, Arm(spec), spec)
	}
	assert.False(t, Armed())
}

func BenchmarkHitUnarmed(b *testing.B) {
	for b.Loop() {
		Hit("publish.after-enqueue")
	}
}
