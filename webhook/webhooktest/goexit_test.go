package webhooktest_test

import "runtime"

func runtimeGoexit() { runtime.Goexit() }
