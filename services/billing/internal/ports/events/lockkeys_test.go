package events

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/billing/internal/adapters/postgres"
	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/migrations"
)

// TestDeclaredLockKeysAreTheLocksTheHandlersTake runs each locking consumer's handler on its
// own in a transaction and compares the advisory locks the transaction then holds with the
// keys the consumer declares (ConsumerConfig.LockKeys): equal, so that a group really takes
// every lock first, sorted, and the declaration cannot drift from the handlers' SQL.
func TestDeclaredLockKeysAreTheLocksTheHandlersTake(t *testing.T) {
	ctx := auth.WithSystemScope(context.Background())
	pool := testkit.Pool(t, "billing")
	if err := bus.Migrate(ctx, pool, "billing", nil); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "billing", "goose_db_version", migrations.FS, nil); err != nil {
		t.Fatal(err)
	}
	store := bus.NewStore(pool, "billing")
	store.EnableClinicScope()
	ledger := app.NewPatientLedger(store, postgres.NewLedger(), app.New(postgres.NewAccounts(store)), 720*time.Hour)
	charges := app.NewCharges(store, postgres.NewCharges(store, fieldcrypt.Dev()), ledger)
	costs := app.NewCosts(store, postgres.NewCosts(store), postgres.NewConfig(store))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	const clinic, patient = "0190c000-0000-7000-8000-0000000000c1", "0190c000-0000-7000-8000-0000000000a1"
	attendance := func(appointment, session string, upper bool) *schedulingv1.AttendanceRecorded {
		m := &schedulingv1.AttendanceRecorded{AppointmentId: appointment, PatientId: patient, ClinicId: clinic,
			EnrollmentId: "0190c000-0000-7000-8000-0000000000e1", ProgramCode: "iop",
			ServiceType: schedulingv1.ServiceType_SERVICE_TYPE_GROUP, SessionId: session, LocalDate: "2026-03-02",
			StartsAt: timestamppb.New(time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)),
			Status:   schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT, MinutesAttended: 60, ScheduledMinutes: 60,
			Version: 1, RecordedAt: timestamppb.Now()}
		if upper { // ids as another producer may spell them: the handlers normalize them
			m.AppointmentId, m.PatientId, m.ClinicId = strings.ToUpper(appointment), strings.ToUpper(patient), strings.ToUpper(clinic)
		}
		return m
	}
	cases := []struct {
		name    string
		cfg     bus.ConsumerConfig
		handle  bus.Handler
		subject string
		msg     proto.Message
	}{
		{"attendance", AttendanceConfig(), NewAttendance(charges, log).Handle, SubjectAttendanceRecorded,
			attendance("0190c000-0000-7000-8000-000000000101", "session-1", false)},
		{"attendance upper-case ids", AttendanceConfig(), NewAttendance(charges, log).Handle, SubjectAttendanceCorrected,
			attendance("0190c000-0000-7000-8000-0000000001AB", "session-1", true)},
		{"costs", CostsConfig(), NewCosts(costs, log).Handle, costsSubjectAttendanceRecorded,
			attendance("0190c000-0000-7000-8000-000000000101", "session-1", false)},
		{"costs without session, upper-case ids", CostsConfig(), NewCosts(costs, log).Handle, costsSubjectAttendanceRecorded,
			attendance("0190c000-0000-7000-8000-0000000001CD", "", true)},
		{"costs program completed", CostsConfig(), NewCosts(costs, log).Handle, costsSubjectProgramCompleted,
			&schedulingv1.ProgramCompleted{EnrollmentId: "0190c000-0000-7000-8000-0000000000e1", PatientId: patient,
				ClinicId: clinic, ProgramCode: "iop", CompletedOn: "2026-04-01"}},
		{"consent granted", ConsentConfig(), NewConsent(charges, log).Handle, SubjectConsentGranted,
			&intakev1.ConsentGranted{ConsentId: "0190c000-0000-7000-8000-0000000000d1", PatientId: patient, ClinicId: clinic,
				Version: 1, Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT},
				EffectiveFrom: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}},
		{"consent revoked", ConsentConfig(), NewConsent(charges, log).Handle, SubjectConsentRevoked,
			&intakev1.ConsentRevoked{ConsentId: "0190c000-0000-7000-8000-0000000000d1", PatientId: patient, ClinicId: clinic,
				Scopes: []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_PAYMENT}, EffectiveAt: timestamppb.Now()}},
		{"coverage", CoverageConfig(), NewCoverage(charges, log).Handle, SubjectCoverageChanged,
			&intakev1.CoverageChanged{Coverage: &intakev1.Coverage{CoverageId: "0190c000-0000-7000-8000-0000000000f1",
				PatientId: patient, ClinicId: clinic, PayerId: "acme", MemberId: "M1", EffectiveFrom: "2026-01-01",
				Priority: intakev1.CoveragePriority_COVERAGE_PRIORITY_PRIMARY, UpdatedAt: timestamppb.Now()}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clinicID := clinic
			if m, ok := c.msg.(*schedulingv1.AttendanceRecorded); ok {
				clinicID = m.GetClinicId()
			}
			d := &bus.Delivery{Subject: c.subject, Envelope: servicetest.Envelope(t, c.msg, clinicID, "test"), NumDelivered: 1}
			declared := c.cfg.LockKeys(d)
			var want, held []int64
			if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
				if err := c.handle(ctx, tx, d); err != nil {
					return err
				}
				var err error
				if held, err = advisoryLocksHeld(ctx, tx); err != nil {
					return err
				}
				return tx.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT hashtextextended(k, 0) ORDER BY hashtextextended(k, 0)), '{}')
					FROM unnest($1::text[]) k`, declared).Scan(&want)
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(held, want) {
				t.Fatalf("the handler holds advisory locks %v, the consumer declares %q (%v)", held, declared, want)
			}
			if c.subject != costsSubjectProgramCompleted && len(held) == 0 {
				t.Fatal("the handler took no advisory lock: the test would prove nothing")
			}
		})
	}
}

// advisoryLocksHeld returns the 64-bit advisory locks the transaction's backend holds, sorted.
func advisoryLocksHeld(ctx context.Context, tx *bus.Tx) ([]int64, error) {
	var keys []int64
	err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(k ORDER BY k), '{}') FROM (
		SELECT DISTINCT ((classid::bigint << 32) | objid::bigint) AS k FROM pg_locks
		WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objsubid = 1 AND granted) l`).Scan(&keys)
	return keys, err
}
