module github.com/trellis-health/trellis/deploy/devstack

go 1.26.0

replace (
	github.com/trellis-health/trellis/pkg => ../../pkg
	github.com/trellis-health/trellis/proto => ../../proto
)

require go.opentelemetry.io/proto/otlp v1.11.1 // indirect
