//go:build !race

package webhook_test

const underRace = false
