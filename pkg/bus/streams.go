package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names of the platform.
const (
	DeadLetterStream = "DEADLETTER"
	AdvisoryStream   = "ADVISORIES"
	deadLetterPrefix = "trellis.deadletter."
)

// StreamOptions are the deployment-dependent stream settings (from config).
type StreamOptions struct {
	Replicas int           // 1 locally, 3 in production
	Storage  string        // "file" (default) or "memory"
	MaxAge   time.Duration // retention; default 30 days
}

func (o StreamOptions) storage() jetstream.StorageType {
	if strings.EqualFold(o.Storage, "memory") {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// ContextStream is the stream of one producing context: INTAKE on trellis.intake.>.
func ContextStream(context string, o StreamOptions) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       strings.ToUpper(context),
		Subjects:   []string{"trellis." + context + ".>"},
		Retention:  jetstream.LimitsPolicy,
		Storage:    o.storage(),
		Replicas:   max(o.Replicas, 1),
		MaxAge:     orDefault(o.MaxAge, 30*24*time.Hour),
		Duplicates: 2 * time.Minute,
	}
}

// PlatformStreams are the streams every service may write to: dead letters (one subject per
// consumer) and the JetStream max-deliveries advisories, captured rather than only listened to.
func PlatformStreams(o StreamOptions) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:      DeadLetterStream,
			Subjects:  []string{deadLetterPrefix + ">"},
			Retention: jetstream.LimitsPolicy,
			Storage:   o.storage(),
			Replicas:  max(o.Replicas, 1),
			MaxAge:    orDefault(o.MaxAge, 30*24*time.Hour),
		},
		{
			Name:      AdvisoryStream,
			Subjects:  []string{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>", "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>"},
			Retention: jetstream.LimitsPolicy,
			Storage:   o.storage(),
			Replicas:  max(o.Replicas, 1),
			MaxAge:    orDefault(o.MaxAge, 30*24*time.Hour),
		},
	}
}

// EnsureStreams creates or updates each stream; it is idempotent, so every service can ensure
// the streams it produces to and consumes from at start-up.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, c := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, c); err != nil {
			return fmt.Errorf("bus: ensure stream %s: %w", c.Name, err)
		}
	}
	return nil
}

// CreateMissingStreams creates each stream that does not exist yet and leaves existing ones
// as they are: a service creates the streams it consumes (so it can start before their
// producer) without overriding the producer's settings.
func CreateMissingStreams(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, c := range cfgs {
		_, err := js.Stream(ctx, c.Name)
		if err == nil {
			continue
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("bus: look up stream %s: %w", c.Name, err)
		}
		if _, err := js.CreateStream(ctx, c); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("bus: create stream %s: %w", c.Name, err)
		}
	}
	return nil
}

// DeadLetterSubject is where consumer's dead letters go.
func DeadLetterSubject(consumer string) string { return deadLetterPrefix + consumer }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
