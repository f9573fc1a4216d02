// Package validate checks the deployment packaging (container build files, compose, Helm chart,
// Prometheus rules, Grafana dashboards, runbooks) without a cluster or a container engine.
package validate
