module github.com/trellis-health/trellis/deploy/images/healthcheck

go 1.26.0
