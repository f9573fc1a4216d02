module github.com/trellis-health/trellis/e2e

go 1.26.0

replace (
	github.com/trellis-health/trellis/pkg => ../pkg
	github.com/trellis-health/trellis/proto => ../proto
)
