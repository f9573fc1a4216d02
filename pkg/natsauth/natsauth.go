// Package natsauth declares, in one place, what each Trellis service may do on NATS: the
// stream it owns, the durable consumers it runs, and from those the subjects its user may
// publish to and subscribe on. The dev stack's embedded server, the compose cluster's
// nats.conf and the Helm chart's NATS values are all generated from this declaration
// (ADR 0013, docs/security.md#nats-credentials).
//
// Each service connects as its own nkey user. It may publish its own events
// (trellis.<svc>.>), dead letters of its own consumers, and the JetStream API requests its
// platform makes (its own stream; info and create-if-missing of the streams it reads; its own
// consumers' create, info, fetch, delete and acks). It subscribes only to its own inbox
// prefix (_INBOX.<svc>.>): with pull consumers every message a service receives arrives on
// its inbox, so no service can read another's deliveries or its JetStream API replies.
package natsauth

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Platform streams every service touches (pkg/bus.DeadLetterStream and AdvisoryStream).
const (
	DeadLetterStream = "DEADLETTER"
	AdvisoryStream   = "ADVISORIES"
)

// Consumer is one durable pull consumer: its stream and durable name.
type Consumer struct {
	Stream string // e.g. "INTAKE"
	Name   string // e.g. "billing--identity"
}

// Service is what one service does on NATS.
type Service struct {
	Name      string     // "billing": also the user's name, its stream (BILLING) and its inbox prefix
	Consumers []Consumer // the durable consumers it creates and fetches from
}

// Stream is the service's own stream (pkg/bus.ContextStream): BILLING for billing.
func (s Service) Stream() string { return strings.ToUpper(s.Name) }

// InboxPrefix is the service's inbox prefix; the service connects with it
// (nats.CustomInboxPrefix) and may subscribe only below it.
func (s Service) InboxPrefix() string { return InboxPrefix(s.Name) }

// InboxPrefix is the inbox prefix of the named service: "_INBOX.billing".
func InboxPrefix(service string) string { return "_INBOX." + service }

// Services is the declaration: every service's consumers, as their code registers them
// (services/<svc>/internal/ports/events and the dashboard's projection). A consumer that is
// not listed here cannot be created: the service fails to start in the dev stack, which is
// how a new consumer is noticed (the end-to-end tests run the dev stack).
var Services = []Service{
	{Name: "intake", Consumers: []Consumer{
		{"SCHEDULING", "intake--clinics"},
	}},
	{Name: "scheduling", Consumers: []Consumer{
		{"INTAKE", "scheduling--admissions"},
		{"INTAKE", "scheduling--discharges"},
		{"INTAKE", "scheduling--consents"},
	}},
	{Name: "billing", Consumers: []Consumer{
		{"SCHEDULING", "billing--enrollments"},
		{"SCHEDULING", "billing--attendance"},
		{"SCHEDULING", "billing--costs"},
		{"INTAKE", "billing--coverage"},
		{"INTAKE", "billing--consent"},
		{"INTAKE", "billing--identity"},
		{"BILLING", "billing--contracts"},
	}},
	{Name: "notification", Consumers: []Consumer{
		{"INTAKE", "notification--admissions"},
		{"INTAKE", "notification--contacts"},
		{"INTAKE", "notification--consents"},
		{"INTAKE", "notification--discharges"},
		{"BILLING", "notification--accounts"},
		{"BILLING", "notification--statements"},
		{"BILLING", "notification--authorizations"},
		{"BILLING", "notification--charges"},
		{"SCHEDULING", "notification--appointments"},
		{"SCHEDULING", "notification--enrollments"},
		{"SCHEDULING", "notification--attendance"},
		{"SCHEDULING", "notification--risk"},
		{"NOTIFICATION", "notification--failures"},
		{DeadLetterStream, "notification--deadletters"},
	}},
	{Name: "dashboard", Consumers: []Consumer{
		{"INTAKE", "dashboard--intake"},
		{"SCHEDULING", "dashboard--scheduling"},
		{"BILLING", "dashboard--billing"},
		{"NOTIFICATION", "dashboard--notification"},
	}},
}

// Lookup returns the declared service by name.
func Lookup(name string) (Service, bool) {
	for _, s := range Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Names are the declared services' names, in declaration order.
func Names() []string {
	out := make([]string, len(Services))
	for i, s := range Services {
		out[i] = s.Name
	}
	return out
}

// Permissions are the subjects a user may publish to and subscribe on (NATS wildcards).
// Everything else is denied.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// Permissions derives the service's permissions from its declaration.
func (s Service) Permissions() Permissions {
	pub := []string{
		"trellis." + s.Name + ".>", // its own events (the outbox relay)
		"$JS.API.INFO",             // readiness: account info
	}
	own := s.Stream()
	// Its own stream: created and updated at start (bus.EnsureStreams).
	pub = append(pub, "$JS.API.STREAM.CREATE."+own, "$JS.API.STREAM.UPDATE."+own, "$JS.API.STREAM.INFO."+own)
	// The streams it reads and the platform's: looked up, and created when missing, never
	// changed (bus.CreateMissingStreams).
	read := map[string]bool{DeadLetterStream: true, AdvisoryStream: true}
	for _, c := range s.Consumers {
		read[c.Stream] = true
	}
	delete(read, own)
	for _, st := range sortedKeys(read) {
		pub = append(pub, "$JS.API.STREAM.INFO."+st, "$JS.API.STREAM.CREATE."+st)
	}
	// The `deadletters` tool (list, show, replay) reads and removes dead letters.
	pub = append(pub, "$JS.API.STREAM.MSG.GET."+DeadLetterStream, "$JS.API.DIRECT.GET."+DeadLetterStream,
		"$JS.API.STREAM.MSG.DELETE."+DeadLetterStream)
	for _, c := range s.Consumers {
		api := c.Stream + "." + c.Name
		pub = append(pub,
			"$JS.API.CONSUMER.CREATE."+api,      // CreateOrUpdateConsumer (filters in the body)
			"$JS.API.CONSUMER.CREATE."+api+".>", // the same with one filter subject in the subject
			"$JS.API.CONSUMER.INFO."+api,        // lag metrics
			"$JS.API.CONSUMER.MSG.NEXT."+api,    // fetch
			"$JS.API.CONSUMER.DELETE."+api,      // the dashboard's rebuild
			"$JS.ACK."+api+".>",                 // ack, nak, in progress, term
		)
		if c.Stream != DeadLetterStream {
			pub = append(pub, "trellis.deadletter."+c.Name)
		}
	}
	return Permissions{Publish: pub, Subscribe: []string{s.InboxPrefix() + ".>"}}
}

// Check reports a declaration mistake: duplicate services or consumers, or a consumer whose
// name does not start with its service's name.
func Check(svcs []Service) error {
	seen := map[string]bool{}
	consumers := map[string]bool{}
	for _, s := range svcs {
		if s.Name == "" || strings.ContainsAny(s.Name, ".*> ") || seen[s.Name] {
			return fmt.Errorf("natsauth: bad or duplicate service name %q", s.Name)
		}
		seen[s.Name] = true
		for _, c := range s.Consumers {
			if !strings.HasPrefix(c.Name, s.Name+"--") || strings.ContainsAny(c.Name, ".*> ") {
				return fmt.Errorf("natsauth: consumer %q of %s must be named %s--<purpose>", c.Name, s.Name, s.Name)
			}
			if c.Stream == "" || strings.ContainsAny(c.Stream, ".*> ") {
				return fmt.Errorf("natsauth: consumer %q has a bad stream %q", c.Name, c.Stream)
			}
			if consumers[c.Name] {
				return fmt.Errorf("natsauth: consumer %q declared twice", c.Name)
			}
			consumers[c.Name] = true
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Allows reports whether subject matches one of the patterns (NATS wildcards: * one token,
// > the rest). The tests use it to check the rendered configurations.
func Allows(patterns []string, subject string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, subject) })
}

func match(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}
