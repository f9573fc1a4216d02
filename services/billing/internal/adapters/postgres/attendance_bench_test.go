package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
	"github.com/trellis-health/trellis/services/billing/migrations"
)

// countingTracer counts what a connection sends: statements (each query, exec or batched
// query) and round trips (each query or exec outside a batch, each batch).
type countingTracer struct{ statements, roundTrips atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.statements.Add(1)
	c.roundTrips.Add(1)
	return ctx
}
func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *countingTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.roundTrips.Add(1)
	return ctx
}
func (c *countingTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.statements.Add(1)
}
func (c *countingTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// benchPool migrates billing on a fresh database and returns a store (clinic scope enabled,
// as Setup does) on a pool whose connections count statements and round trips.
func benchPool(b testing.TB) (*bus.Store, *countingTracer) {
	b.Helper()
	ctx := context.Background()
	tracer := &countingTracer{}
	cfg, err := pgxpool.ParseConfig(testkit.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = "billing"
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.Tracer = tracer
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS billing`); err != nil {
		b.Fatal(err)
	}
	if err := bus.Migrate(ctx, pool, "billing", nil); err != nil {
		b.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, "billing", "goose_db_version", migrations.FS, nil); err != nil {
		b.Fatal(err)
	}
	// For pgWork; where the extension is not loaded the benchmark reports no blocks.
	_, _ = pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public`)
	store := bus.NewStore(pool, "billing")
	store.EnableClinicScope()
	return store, tracer
}

// pgWork returns what pg_stat_statements recorded for this database so far: shared blocks
// (hit or read) and milliseconds of execution of the top-level statements (a trigger's work
// counts in the statement that fired it). ok is false without the extension.
func pgWork(ctx context.Context, store *bus.Store) (blocks int64, ms float64, ok bool) {
	err := store.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT coalesce(sum(shared_blks_hit + shared_blks_read), 0)::bigint,
			coalesce(sum(total_exec_time), 0)::float8
			FROM public.pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`).
			Scan(&blocks, &ms)
	})
	return blocks, ms, err == nil
}

type allClinics struct{}

func (allClinics) CanSeeClinic(string) bool { return true }

const (
	benchClinic   = "0190b000-0000-7000-8000-0000000000c1"
	benchPatients = 40
)

func benchPatient(i int) string { return fmt.Sprintf("0190b000-0000-7000-8000-%012d", i) }

// seedAttendanceBench configures a per-service payer contract that requires authorization,
// and gives every patient a primary coverage, a payment consent and an authorization.
func seedAttendanceBench(b testing.TB, store *bus.Store, charges *app.Charges, repo *Charges) {
	b.Helper()
	ctx := auth.WithSystemScope(context.Background())
	if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO payers (code, name, kind, x12_payer_id) VALUES ('bench-payer', 'Bench', 'commercial', 'BENCH1')`); err != nil {
			return err
		}
		return repo.cfg.SaveContract(ctx, tx, domain.Contract{ID: bus.NewID(), PayerID: "bench-payer", ClinicID: benchClinic,
			Mode: domain.ModePerService, ClaimType: domain.ClaimProfessional, BelowMinimum: domain.BelowBillNothing, PerDiemMinimumMinutes: 180,
			TimelyFilingDays: 90, EffectiveFrom: "2026-01-01", RequiresAuthorization: true,
			Codes: []domain.ServiceCode{{Service: domain.ServiceGroup, ProcedureCode: "90853", RateCents: 8500, Modifiers: []string{}}}})
	}); err != nil {
		b.Fatal(err)
	}
	for p := range benchPatients {
		patient := benchPatient(p)
		if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			if _, err := charges.RecordCoverage(ctx, tx, domain.Coverage{ID: bus.NewID(), PatientID: patient, ClinicID: benchClinic,
				PayerID: "bench-payer", Plan: "bench", MemberID: "M1", SubscriberRelationship: "self", EffectiveFrom: "2026-01-01",
				Eligibility: "eligible", Priority: 1, UpdatedAt: time.Now(), SourceEventID: bus.NewID()}); err != nil {
				return err
			}
			_, err := charges.GrantConsent(ctx, tx, domain.Consent{ID: bus.NewID(), PatientID: patient, ClinicID: benchClinic,
				Version: 1, Payment: true, EffectiveFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), SourceEventID: bus.NewID()})
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := charges.UpsertAuthorization(ctx, allClinics{}, domain.Authorization{PatientID: patient, ClinicID: benchClinic,
			PayerID: "bench-payer", Service: domain.ServiceGroup, Number: fmt.Sprintf("A%d", p), AuthorizedUnits: 10000,
			StartsOn: "2026-01-01", EndsOn: "2027-12-31"}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchAttendance is the i-th event of the workload: each of benchPatients patients attends
// two group sessions a day, day after day; every tenth event corrects the patient's session
// of the day before to absent (version 2), which voids a charge and gives a unit back.
func benchAttendance(i int) domain.Attendance {
	p, round := i%benchPatients, i/benchPatients
	day, slot := round/2, round%2
	version, status := int32(1), domain.AttendPresent
	if i%10 == 9 && round >= 2 {
		day, version, status = day-1, 2, domain.AttendAbsent
	}
	date := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, day)
	return domain.Attendance{AppointmentID: fmt.Sprintf("0190b000-%04x-7%03x-8000-%012d", day%0x10000, slot, p),
		PatientID: benchPatient(p), ClinicID: benchClinic, EnrollmentID: fmt.Sprintf("0190b000-0000-7000-8000-e%011d", p),
		ProgramCode: "iop", Service: domain.ServiceGroup, ClinicianID: "clin-1",
		SessionID: fmt.Sprintf("0190b000-%04x-7%03x-8000-00000000000a", day%0x10000, slot), LocalDate: date.Format(time.DateOnly),
		StartsAt: date.Add(time.Duration(14+3*slot) * time.Hour), Status: status, MinutesAttended: 60, ScheduledMinutes: 60,
		Version: version, SourceEventID: bus.NewID()}
}

// BenchmarkAttendanceHandlers measures the work of the billing--attendance and billing--costs
// handlers per AttendanceRecorded event on a real Postgres, one event per transaction (the
// consumer's inbox and batching are left out): events per second, statements and round trips
// per event (a serial consumer waits for each round trip) and, with pg_stat_statements,
// shared blocks and milliseconds of Postgres execution per event.
func BenchmarkAttendanceHandlers(b *testing.B) {
	store, tracer := benchPool(b)
	repo := NewCharges(store, fieldcrypt.Dev())
	ledger := app.NewPatientLedger(store, NewLedger(), app.New(NewAccounts(store)), 720*time.Hour)
	charges := app.NewCharges(store, repo, ledger)
	costs := app.NewCosts(store, NewCosts(store), NewConfig(store))
	seedAttendanceBench(b, store, charges, repo)
	ctx := auth.WithSystemScope(context.Background())

	run := func(b *testing.B, apply func(ctx context.Context, tx *bus.Tx, a domain.Attendance) error) {
		var statements, roundTrips int64
		events := 0
		blocks0, ms0, pgss := pgWork(ctx, store)
		for i := 0; b.Loop(); i++ {
			a := benchAttendance(i)
			if err := store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
				s0, r0 := tracer.statements.Load(), tracer.roundTrips.Load()
				if err := apply(ctx, tx, a); err != nil {
					return err
				}
				statements += tracer.statements.Load() - s0
				roundTrips += tracer.roundTrips.Load() - r0
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			events++
		}
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(statements)/float64(events), "stmts/event")
		b.ReportMetric(float64(roundTrips)/float64(events), "roundtrips/event")
		if blocks1, ms1, ok := pgWork(ctx, store); pgss && ok {
			b.ReportMetric(float64(blocks1-blocks0)/float64(events), "blocks/event")
			b.ReportMetric((ms1-ms0)/float64(events), "pg-ms/event")
		}
	}
	b.Run("charges", func(b *testing.B) {
		run(b, func(ctx context.Context, tx *bus.Tx, a domain.Attendance) error {
			_, err := charges.RecordAttendance(ctx, tx, a)
			return err
		})
	})
	b.Run("costs", func(b *testing.B) {
		run(b, func(ctx context.Context, tx *bus.Tx, a domain.Attendance) error {
			_, err := costs.RecordAttendance(ctx, tx, domain.AttendanceFact{AppointmentID: a.AppointmentID, PatientID: a.PatientID,
				ClinicID: a.ClinicID, ProgramCode: a.ProgramCode, ClinicianID: a.ClinicianID, SessionKey: a.SessionID,
				LocalDate: a.LocalDate, AttendedMinutes: a.MinutesAttended, ScheduledMinutes: a.ScheduledMinutes,
				Version: a.Version, SourceEventID: a.SourceEventID}, map[string]string{domain.AttendPresent: domain.AttendancePresent,
				domain.AttendAbsent: domain.AttendanceAbsent}[a.Status])
			return err
		})
	})
}
