module github.com/trellis-health/trellis/services/billing

go 1.26.0

replace (
	github.com/trellis-health/trellis/pkg => ../../pkg
	github.com/trellis-health/trellis/proto => ../../proto
)
