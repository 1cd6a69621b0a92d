package webhook

// Test helpers for the external test package.
var (
	CPUTime   = cpuTime
	ReportCPU = reportCPU
)
