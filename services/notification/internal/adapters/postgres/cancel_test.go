package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/services/notification/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/notification/internal/app"
	"github.com/trellis-health/trellis/services/notification/internal/domain"
	"github.com/trellis-health/trellis/services/notification/internal/notifytest"
)

// CancelQueued cancels exactly the queued messages its conditions name, whichever of them are
// given: the patient's, the subject's, of the kinds listed (all when none); never a sent one,
// never another patient's, never a staff alert (no patient) when a patient is named.
func TestCancelQueuedCancelsOnlyWhatItNames(t *testing.T) {
	system, repo := setup(t)
	ctx := sys()
	p1, p2 := bus.NewID(), bus.NewID()
	s1, s2 := bus.NewID(), bus.NewID()
	type msg struct{ name, patient, subject, kind string }
	msgs := []msg{
		{"p1 s1 check-in", p1, s1, domain.KindCheckIn},
		{"p1 s1 reminder", p1, s1, domain.KindReminder},
		{"p1 s2 reminder", p1, s2, domain.KindReminder},
		{"p1 welcome", p1, "", domain.KindWelcome},
		{"p2 s1 reminder", p2, s1, domain.KindReminder},
		{"staff s1", "", s1, domain.KindStaffAtRisk},
		{"p1 s1 check-in sent", p1, s1, domain.KindCheckIn},
	}
	ids := map[string]string{}
	inTx(t, system, func(tx pgx.Tx) error {
		for _, m := range msgs {
			id := bus.NewID()
			ids[m.name] = id
			audience := domain.AudiencePatient
			if m.patient == "" {
				audience = domain.AudienceStaff
			}
			if _, err := repo.QueueMessage(ctx, tx, app.NewMessage{ID: id, PatientID: m.patient, ClinicID: clinic, Kind: m.kind,
				Channel: domain.ChannelEmail, DedupeKey: m.name, SubjectRef: m.subject, Audience: audience}); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE messages SET status = 'sent' WHERE id = $1`, ids["p1 s1 check-in sent"])
		return err
	})
	steps := []struct {
		patient, subject string
		kinds            []string
		reason           string
		want             []string // the messages cancelled by this step
	}{
		{p1, s1, []string{domain.KindCheckIn}, "attendance", []string{"p1 s1 check-in"}},
		{p1, s1, []string{domain.KindReminder, domain.KindAppointmentMoved}, "cancelled", []string{"p1 s1 reminder"}},
		{p1, "", []string{}, "discharged", []string{"p1 s2 reminder", "p1 welcome"}},
		{"", s1, nil, "subject", []string{"p2 s1 reminder", "staff s1"}},
	}
	for i, st := range steps {
		var n int
		inTx(t, system, func(tx pgx.Tx) error {
			var err error
			n, err = repo.CancelQueued(ctx, tx, st.patient, st.subject, st.kinds, st.reason)
			return err
		})
		if n != len(st.want) {
			t.Errorf("step %d: cancelled %d, want %d", i, n, len(st.want))
		}
		for _, name := range st.want {
			var status, reason string
			if err := system.QueryRow(ctx, `SELECT status, status_reason FROM messages WHERE id = $1`, ids[name]).Scan(&status, &reason); err != nil {
				t.Fatal(err)
			}
			if status != "cancelled" || reason != st.reason {
				t.Errorf("step %d: %s is %s (%q), want cancelled (%q)", i, name, status, reason, st.reason)
			}
		}
	}
	var status string
	if err := system.QueryRow(ctx, `SELECT status FROM messages WHERE id = $1`, ids["p1 s1 check-in sent"]).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != "sent" {
		t.Errorf("a sent message became %s", status)
	}
}

// Every variant of CancelQueued's statement its callers use keeps an index plan as the
// generic plan of a prepared statement (what pgx gets after five executions), on a queue of
// 20,000 messages: the catch-all form it replaced scanned every queued message there.
func TestCancelQueuedPlansUseIndexes(t *testing.T) {
	pool, system := notifytest.Pools(t)
	notifytest.Migrate(t, pool)
	ctx := sys()
	fillQueue(t, system, 2000, 10)
	var patient, subject string
	if err := system.QueryRow(ctx, `SELECT patient_id::text, subject_ref FROM messages WHERE status = 'queued' LIMIT 1`).Scan(&patient, &subject); err != nil {
		t.Fatal(err)
	}
	store := notifytest.Store(pool)
	for _, v := range cancelVariants(patient, subject) {
		t.Run(v.name, func(t *testing.T) {
			plan := genericPlan(t, ctx, store, v.sql, v.args, false)
			if strings.Contains(plan, "Seq Scan on messages") || !strings.Contains(plan, "Index") {
				t.Errorf("the generic plan does not use an index:\n%s", plan)
			}
		})
	}
}

type cancelVariant struct {
	name string
	sql  string
	args []any
}

// cancelVariants are CancelQueued's statements as its callers call it: attendance and
// appointment cancellation (patient, subject, kinds), discharge and consent revocation
// (patient only).
func cancelVariants(patient, subject string) []cancelVariant {
	var out []cancelVariant
	for _, c := range []struct {
		name             string
		patient, subject string
		kinds            []string
	}{
		{"attendance", patient, subject, []string{domain.KindCheckIn}},
		{"appointment cancelled", patient, subject, []string{domain.KindReminder, domain.KindAppointmentMoved}},
		{"discharge", patient, "", []string{}},
		{"consent revoked", patient, "", nil},
	} {
		sql, args := postgres.CancelQueuedSQL(c.patient, c.subject, c.kinds, "test")
		out = append(out, cancelVariant{c.name, sql, args})
	}
	return out
}

// fillQueue inserts patients x perPatient queued messages of clinic, one subject each.
func fillQueue(t testing.TB, system *pgxpool.Pool, patients, perPatient int) {
	t.Helper()
	ctx := sys()
	if _, err := system.Exec(ctx, `
		INSERT INTO messages (id, patient_id, clinic_id, kind, channel, dedupe_key, subject_ref, next_attempt_at)
		SELECT gen_random_uuid(), p.id, $1, CASE WHEN i % 2 = 0 THEN 'reminder' ELSE 'check_in' END, 'email',
			'q:' || p.n || ':' || i, gen_random_uuid()::text, now() + interval '1 day'
		FROM (SELECT gen_random_uuid() id, n FROM generate_series(1, $2::int) n) p, generate_series(1, $3::int) i`,
		clinic, patients, perPatient); err != nil {
		t.Fatal(err)
	}
	if _, err := system.Exec(ctx, `ANALYZE messages`); err != nil {
		t.Fatal(err)
	}
}

// genericPlan is the plan of sql with args as a prepared statement's generic plan, in a
// transaction of store in ctx's scope that is rolled back; analyze runs it (EXPLAIN ANALYZE,
// BUFFERS).
func genericPlan(t testing.TB, ctx context.Context, store *bus.Store, sql string, args []any, analyze bool) string {
	t.Helper()
	literals := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			literals[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		case []string:
			literals[i] = "'{" + strings.Join(v, ",") + "}'"
		default:
			t.Fatalf("argument %d: %T", i, a)
		}
	}
	explain := "EXPLAIN "
	if analyze {
		explain = "EXPLAIN (ANALYZE, BUFFERS) "
	}
	var plan string
	errRollback := errors.New("rollback")
	err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`, pgx.QueryExecModeSimpleProtocol); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `PREPARE cancel_queued AS `+sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, explain+fmt.Sprintf("EXECUTE cancel_queued(%s)", strings.Join(literals, ", ")), pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		plan = strings.Join(lines, "\n")
		if err == nil {
			err = errRollback
		}
		return err
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	// PREPARE outlives the transaction: the connection goes back to the pool without it.
	if _, err := store.Pool.Exec(context.Background(), `DEALLOCATE ALL`); err != nil {
		t.Fatal(err)
	}
	return plan
}
