package webhooktest_test

import (
	"fmt"

	"github.com/heraldhr/herald/webhook/webhooktest"
)

// A chaos run's report lists the promises it saw broken; a sound run has
// none.
func ExampleChaosReport_Failures() {
	sound := webhooktest.ChaosReport{Expected: 3, Delivered: 3, Duplicates: 1,
		DuplicateCauses: map[string]int{webhooktest.CauseSlowBody: 1}}
	fmt.Println(len(sound.Failures()))

	broken := webhooktest.ChaosReport{Expected: 3, Delivered: 2, Lost: 1, OutOfOrder: 1}
	for _, f := range broken.Failures() {
		fmt.Println(f)
	}
	// Output:
	// 0
	// 2 of 3 expected records were processed
	// 1 lost
	// 1 out of order
}

// The receiver and trap addresses travel to a child process as a string.
func ExampleParseChaosTargets() {
	tg, err := webhooktest.ParseChaosTargets("127.0.0.1:41000 127.0.0.2:41000")
	fmt.Println(tg.Receiver, tg.Trap, err)
	tg, err = webhooktest.ParseChaosTargets("127.0.0.1:41000 -")
	fmt.Println(tg.Trap.IsValid(), tg, err)
	// Output:
	// 127.0.0.1:41000 127.0.0.2:41000 <nil>
	// false 127.0.0.1:41000 - <nil>
}
