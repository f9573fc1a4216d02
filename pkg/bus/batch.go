package bus

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/pg"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
)

// Applying several messages in one transaction (ConsumerConfig.TxBatch, ADR 12).
//
// A group is applied in fetch order in one transaction: for each message a savepoint, its
// inbox row (a conflict means it was applied before, or earlier in this group: skipped), its
// handler and its outbox rows, written with its own cause and trace context. A handler error
// rolls back to the message's savepoint only; after the commit the others are acked and the
// failed one is settled with its error exactly as if it had run alone (nak with backoff, or
// dead-letter). Anything that breaks the transaction itself (the HandlerTimeout of the group,
// a lost connection, a failed commit) rolls everything back and the group is applied again one
// message per transaction, as TxBatch 1 would.

// member is one message of a group.
type member struct {
	*received
	env       *eventsv1.Envelope
	undecoded error // the envelope could not be decoded: dead-lettered, not applied
	duplicate bool
	err       error // the handler's error; its savepoint was rolled back
}

// processGroup applies msgs in one transaction and settles each; waiting learns which are done.
func (c *Consumer) processGroup(ctx context.Context, msgs []jetstream.Msg, waiting *inFlight) {
	// The handler timeout covers the whole transaction. Message contexts derive from it (for
	// their spans); settling uses them without the deadline. Consumers act for no caller: the
	// transaction and every handler run in system scope (see apply).
	hctx, cancel := context.WithTimeout(auth.WithSystemScope(ctx), c.cfg.HandlerTimeout)
	defer cancel()
	group := make([]*member, len(msgs))
	for i, msg := range msgs {
		m := &member{received: c.begin(hctx, msg)}
		m.env, m.undecoded = decodeEnvelope(msg.Data())
		group[i] = m
	}
	var err error
	if slices.ContainsFunc(group, func(m *member) bool { return m.undecoded == nil }) {
		err = c.applyGroup(hctx, group)
	}
	if err != nil {
		c.log.InfoContext(ctx, "group transaction failed; applying its messages one by one",
			"messages", len(group), "error", pg.Redact(err))
	}
	// Settle in stream order.
	for _, m := range group {
		sctx := context.WithoutCancel(m.ctx)
		var outcome string
		switch {
		case m.undecoded != nil:
			outcome = c.deadLetter(sctx, m.msg, m.subject, m.delivered, m.streamSeq, m.undecoded)
		case err != nil:
			// The transaction failed as a whole: apply this message on its own, as TxBatch 1.
			outcome = c.handleMsg(sctx, m.msg, m.subject, m.delivered, m.streamSeq)
		default:
			outcome = c.settle(sctx, m.msg, m.subject, m.delivered, m.streamSeq, m.env, m.duplicate, m.err)
		}
		c.finish(m.received, outcome)
		waiting.done(m.msg)
	}
}

// applyGroup runs the group's handlers in one transaction (see the top of this file). It
// returns an error only when the transaction as a whole failed.
func (c *Consumer) applyGroup(hctx context.Context, group []*member) error {
	defer c.commits.Add(1)
	return c.store.InTx(hctx, func(_ context.Context, tx *Tx) error {
		if err := c.lockGroup(hctx, tx, group); err != nil {
			return err
		}
		savepoint := false
		var applied []*Delivery
		for _, m := range group {
			if m.undecoded != nil {
				continue
			}
			mctx := WithCause(m.ctx, m.env.GetCorrelationId(), m.env.GetEventId())
			b := &pgx.Batch{}
			if !c.noSavepoints {
				if savepoint {
					b.Queue(`RELEASE SAVEPOINT bus_message`)
				}
				b.Queue(`SAVEPOINT bus_message`)
				savepoint = true
			}
			var inserted int64
			b.Queue(`INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
				c.cfg.Name, m.env.GetEventId()).Exec(func(tag pgconn.CommandTag) error {
				inserted = tag.RowsAffected()
				return nil
			})
			if err := tx.SendBatch(mctx, b).Close(); err != nil {
				return err
			}
			if inserted == 0 {
				m.duplicate = true
				continue
			}
			hooks := len(tx.afterCommit)
			d := &Delivery{Subject: m.subject, Envelope: m.env, NumDelivered: m.delivered}
			err := c.handle(mctx, tx, d)
			if err == nil {
				err = c.store.flush(mctx, tx)
			}
			if err == nil {
				applied = append(applied, d)
				continue
			}
			// Nothing of this message stays: its events, its after-commit hooks, its writes.
			tx.events, tx.afterCommit = tx.events[:0], tx.afterCommit[:hooks]
			if c.noSavepoints || hctx.Err() != nil {
				return err
			}
			if _, rerr := tx.Exec(hctx, `ROLLBACK TO SAVEPOINT bus_message`); rerr != nil {
				return rerr
			}
			m.err = err
		}
		if c.cfg.AfterApply == nil || len(applied) == 0 {
			return nil
		}
		return c.cfg.AfterApply(hctx, tx, applied)
	})
}

// lockGroup takes the advisory locks of every message of the group (ConsumerConfig.LockKeys)
// in one statement, in sorted order, before anything else of the transaction: a fixed order
// for every group, so two groups (or a group and an API call taking one of the locks) cannot
// wait for each other in a cycle.
func (c *Consumer) lockGroup(ctx context.Context, tx *Tx, group []*member) error {
	if c.cfg.LockKeys == nil {
		return nil
	}
	var keys []string
	for _, m := range group {
		if m.undecoded == nil {
			keys = append(keys, c.cfg.LockKeys(&Delivery{Subject: m.subject, Envelope: m.env, NumDelivered: m.delivered})...)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	// unnest yields the array in order; the locks are taken row by row in that order.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k`, keys); err != nil {
		return fmt.Errorf("bus: lock the group's keys: %w", err)
	}
	return nil
}
