package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/pg"
	"github.com/trellis-health/trellis/pkg/testkit/rlstest"
	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
	"github.com/trellis-health/trellis/services/dashboard/migrations"
)

const (
	rlsClinicA = rlstest.ClinicA
	rlsClinicB = rlstest.ClinicB
)

// rlsTables are the dashboard's projections holding clinic data (a clinic_id column), each
// with the column that makes a copy of a row a new row (its key; "" for clinics, whose key is
// clinic_id itself, and for the rollups keyed by clinic and day) and a row of a clinic ($1) for
// the seed: the other values are fixed ids and dates the per-clinic queries below find. The
// rollups (migration 00008) have no insert: the projections' triggers write their row (the
// track's program lasts one week, so the enrollment has one program week, for program_weeks
// and minimum_*).
var rlsTables = []struct{ name, key, insert string }{
	{"clinics", "", `INSERT INTO clinics (clinic_id, name, time_zone, updated_at) VALUES ($1, 'c', 'UTC', now())`},
	{"tracks", "track_id", `, program AS (INSERT INTO programs VALUES ('iop', 120, 1, now()) ON CONFLICT DO NOTHING)
		INSERT INTO tracks VALUES ($2, $1, 'T', 'iop', 10, true, now())`},
	{"enrollments", "enrollment_id", `INSERT INTO enrollments (enrollment_id, clinic_id, track_id, patient_id, status, start_date, updated_at, seated_at)
		VALUES ($3, $1, $2, $4, 'active', current_date - 14, now(), now() - interval '14 days')`},
	{"referrals", "referral_id", `INSERT INTO referrals VALUES (gen_random_uuid(), $1, 'new', now(), now())`},
	{"admissions", "episode_id", `INSERT INTO admissions VALUES (gen_random_uuid(), $1, $4, now() - interval '2 days', now(), current_date)`},
	{"attendance", "appointment_id", `INSERT INTO attendance VALUES ($5, $1, $3, $2, 'present', 180, 180, current_date, 1)`},
	{"risks", "enrollment_id", `INSERT INTO risks VALUES ($3, now(), $1, $4, '{absences}', NULL)`},
	{"completions", "enrollment_id", `INSERT INTO completions VALUES (gen_random_uuid(), $1, 'iop', current_date, 12, 12)`},
	{"discharges", "episode_id", `INSERT INTO discharges VALUES (gen_random_uuid(), $1, $4, 'completed', current_date - 90, current_date)`},
	{"charges", "charge_id", `INSERT INTO charges VALUES (gen_random_uuid(), $1, 'medicaid', 25000, current_date, 'held', 'no_auth', now())`},
	{"claims", "claim_id", `INSERT INTO claims (claim_id, clinic_id, payer_id, total_cents, status, submitted_at, status_at)
		VALUES (gen_random_uuid(), $1, 'medicaid', 75000, 'submitted', now(), now())`},
	{"appointments", "appointment_id", `INSERT INTO appointments VALUES ($5, $1, NULL, 'group', current_date, '09:00', '12:00', 'scheduled', now())`},
	{"write_offs", "write_off_id", `INSERT INTO write_offs VALUES (gen_random_uuid(), $6, 'denials', NULL, $1, 'medicaid', 1000, 'timely_filing', now())`},
	{"attendance_days", "", ""},
	{"charge_days", "", ""},
	{"claim_days", "", ""},
	{"program_weeks", "enrollment_id", ""},
	{"minimum_days", "", ""},
	{"attendance_weekly", "", ""},
	{"charge_weekly", "", ""},
	{"claim_weekly", "", ""},
	{"minimum_weekly", "", ""},
	{"census_days", "", ""},
	{"census_weekly", "", ""},
	{"admission_days", "", ""},
	{"hold_counts", "", ""},
	{"admission_samples", "episode_id", ""},
	{"admission_weekly", "", ""},
}

// probeTables are rlsTables as rlstest probes them: a copy of a row is a new row under a
// fresh key.
func probeTables() []rlstest.Table {
	out := make([]rlstest.Table, len(rlsTables))
	for i, tb := range rlsTables {
		out[i] = rlstest.Table{Name: tb.name}
		if tb.key != "" {
			out[i].Fresh = map[string]string{tb.key: "gen_random_uuid()"}
		}
	}
	return out
}

// serviceRole is the dashboard's own role (rlstest.ServiceRole: a login role that is no
// superuser and has no BYPASSRLS, owning its schema; the administrative role a member of it)
// with the dashboard's schema migrated as it, and a pool connected as it (no clinic scope set).
func serviceRole(t *testing.T) (*pgxpool.Pool, *rlstest.Role) {
	t.Helper()
	r := rlstest.ServiceRole(t, "dashboard", func(ctx context.Context, pool *pgxpool.Pool) error {
		return pg.Migrate(ctx, pool, "dashboard", "goose_db_version", migrations.FS, nil)
	})
	return r.Pool, r
}

// seeded is one clinic's seed: the ids the per-clinic queries look up.
type seeded struct{ track, enrollment, patient, appointment, workItem string }

// seedClinic writes one row of clinic into every table of rlsTables, in system scope.
func seedClinic(t *testing.T, db *bus.Store, clinic string) seeded {
	t.Helper()
	s := seeded{bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID()}
	err := db.InTx(auth.WithSystemScope(context.Background()), func(ctx context.Context, tx *bus.Tx) error {
		for _, tb := range rlsTables {
			if tb.insert == "" {
				continue // a rollup: written by the triggers
			}
			// Every statement gets every parameter: an unused CTE types the ones it does not use
			// (an insert starting with "," adds CTEs of its own).
			q := "WITH unused AS (SELECT $2::uuid, $3::uuid, $4::uuid, $5::uuid, $6::uuid) " + tb.insert
			if _, err := tx.Exec(ctx, q, clinic, s.track, s.enrollment, s.patient, s.appointment, s.workItem); err != nil {
				return errors.Join(errors.New(tb.name), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// userCtx is a signed-in user of clinics (as the web layer puts the session's principal in the
// context).
func userCtx(clinics ...string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "rls-test", Roles: []string{"operator"}, Clinics: clinics})
}

// With the dashboard's own role (not a superuser, no BYPASSRLS, the tables' owner) the database,
// not the code, keeps each clinic's projections to users of that clinic: in a transaction
// scoped to clinic A every table shows only A's rows, B's rows cannot be counted, updated or
// deleted, a row cannot be written to (or moved into) clinic B, and without a scope nothing is
// visible; a role granted SELECT sees nothing; the administrative role, a member of the owner,
// is not bound.
func TestRowLevelSecurityIsolatesClinics(t *testing.T) {
	pool, r := serviceRole(t)
	tables := probeTables()
	rlstest.CheckCatalog(t, pool, rlstest.Names(tables)...)
	db := r.Store()
	seedClinic(t, db, rlsClinicA)
	seedClinic(t, db, rlsClinicB)
	rlstest.OtherRoles(t, r, "claims", tables...)
	rlstest.Probe(t, db, pool, tables...)
}

// The store's reads, called directly with a user of clinic A and a Scope that forgets the
// user's clinics (All) or names clinic B, return none of B's rows: the database's policies
// hold where the code's clinic condition does not. A user of B, of A and B, or of "*" does see
// them; a token whose clinics are not clinic ids sees nothing.
func TestRowLevelSecurityStopsForgottenFilters(t *testing.T) {
	pool, r := serviceRole(t)
	db := r.Store()
	a := seedClinic(t, db, rlsClinicA)
	b := seedClinic(t, db, rlsClinicB)
	st := New(db)
	everything := Scope{All: true}
	// The seed's dates are the database's current_date: the same day here, even at midnight.
	var today time.Time
	if err := pool.QueryRow(context.Background(), `SELECT current_date`).Scan(&today); err != nil {
		t.Fatal(err)
	}
	rng := kpi.Range{From: today.AddDate(0, 0, -27), To: today}

	// seen reads, as the user of ctx, what every page query finds of the seed, by clinic.
	seen := func(ctx context.Context) map[string][]string {
		t.Helper()
		out := map[string][]string{}
		add := func(what string, clinic string, ok bool) {
			if ok {
				out[what] = append(out[what], clinic)
			}
		}
		cs, err := st.Clinics(ctx, everything)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			add("clinics", c.ID, true)
		}
		for clinic, s := range map[string]seeded{rlsClinicA: a, rlsClinicB: b} {
			_, found, err := st.Clinic(ctx, everything, clinic)
			add("clinic", clinic, found)
			tracks, err1 := st.Tracks(ctx, clinic)
			add("tracks", clinic, len(tracks) == 1 && tracks[0].ID == s.track && tracks[0].Active == 1)
			risks, err2 := st.AtRisk(ctx, clinic)
			add("at risk", clinic, len(risks) == 1 && risks[0].PatientID == s.patient)
			sessions, err3 := st.Sessions(ctx, clinic, today)
			add("sessions", clinic, len(sessions) == 1 && sessions[0].Attended == 1)
			funnel, err4 := st.Funnel(ctx, clinic, rng)
			add("funnel", clinic, funnel[0].Count == 1)
			wo, err5 := st.WrittenOff(ctx, []string{s.workItem})
			add("written off", clinic, wo[s.workItem] == 1000)
			if err := errors.Join(err, err1, err2, err3, err4, err5); err != nil {
				t.Fatal(err)
			}
		}
		weeks, err := st.MinimumWeeks(ctx, everything, rng, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		inputs, err := st.Inputs(ctx, everything, rng)
		if err != nil {
			t.Fatal(err)
		}
		weeks.AddToInputs(inputs)
		for clinic, in := range inputs {
			add("census", clinic, in.Census == 1)
		}
		trends, err := st.Trends(ctx, everything, rng)
		if err != nil {
			t.Fatal(err)
		}
		weeks.AddToTrends(trends)
		for clinic := range trends {
			add("trends", clinic, true)
		}
		// Network-wide sums: one clinic's worth per clinic seen.
		flow, err := st.Flow(ctx, everything, rng)
		if err != nil {
			t.Fatal(err)
		}
		holds, err := st.Holds(ctx, everything)
		if err != nil {
			t.Fatal(err)
		}
		aging, err := st.Aging(ctx, everything, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		wos, err := st.WriteOffs(ctx, everything, rng)
		if err != nil {
			t.Fatal(err)
		}
		sums := []int64{flow.Charges / 25000, flow.ClaimsSubmitted / 75000, flow.WrittenOff / 1000}
		if len(holds) == 1 {
			sums = append(sums, int64(holds[0].Count))
		}
		if len(aging) == 1 {
			sums = append(sums, aging[0].Total/75000)
		}
		if len(wos) == 1 {
			sums = append(sums, int64(wos[0].Count))
		}
		for _, s := range sums {
			out["network sums"] = append(out["network sums"], string(rune('0'+s)))
		}
		for k := range out {
			slices.Sort(out[k])
		}
		return out
	}
	want := func(clinics ...string) map[string][]string {
		out := map[string][]string{}
		for _, what := range []string{"clinics", "clinic", "tracks", "at risk", "sessions", "funnel", "written off", "census", "trends"} {
			if len(clinics) > 0 {
				out[what] = clinics
			}
		}
		if len(clinics) > 0 {
			n := string(rune('0' + len(clinics)))
			out["network sums"] = []string{n, n, n, n, n, n}
		} else {
			out["network sums"] = []string{"0", "0", "0"}
		}
		return out
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
		want map[string][]string
	}{
		{"clinic A", userCtx(rlsClinicA), want(rlsClinicA)},
		{"clinic B", userCtx(rlsClinicB), want(rlsClinicB)},
		{"clinics A and B", userCtx(rlsClinicA, rlsClinicB), want(rlsClinicA, rlsClinicB)},
		{"every clinic", userCtx(auth.AllClinics), want(rlsClinicA, rlsClinicB)},
		{"system scope", auth.WithSystemScope(context.Background()), want(rlsClinicA, rlsClinicB)},
		{"clinics that are not ids", userCtx("not-a-clinic'; --"), want()},
		{"no user", context.Background(), want()},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := seen(c.ctx); !mapsEqual(got, c.want) {
				t.Errorf("seen %v\nwant %v", got, c.want)
			}
		})
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
