package main

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
	"github.com/trellis-health/trellis/services/dashboard/internal/store"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

// TestOverviewAtScale measures the overview and billing endpoints on a network of 100 clinics
// and a year (DASHBOARD_SCALE=1 to run it; it only logs the times, it asserts no timing): the
// read model is filled with SQL, as a replay of that network would leave it.
func TestOverviewAtScale(t *testing.T) {
	if os.Getenv("DASHBOARD_SCALE") == "" {
		t.Skip("set DASHBOARD_SCALE=1 to measure the dashboard on 100 clinics and a year")
	}
	e := start(t)
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	began := time.Now()
	for _, q := range []string{
		`INSERT INTO programs VALUES ('adult-iop', 540, 12, now())`,
		`INSERT INTO clinics (clinic_id, name, time_zone)
			SELECT ('0190a000-0000-7000-8000-' || lpad(to_hex(c), 12, '0'))::uuid, 'Clinic ' || c,
				CASE WHEN c % 2 = 0 THEN 'America/Chicago' ELSE 'America/New_York' END FROM generate_series(1, 100) c`,
		`INSERT INTO tracks SELECT gen_random_uuid(), clinic_id, 'adult-' || t, 'adult-iop', 12, true, now()
			FROM clinics, generate_series(1, 3) t`,
		// 40 enrollments a clinic, starting over the past year; the older ones ended after 12 weeks.
		`INSERT INTO enrollments (enrollment_id, clinic_id, track_id, patient_id, status, start_date, ended_at, updated_at, seated_at)
			SELECT gen_random_uuid(), k.clinic_id, k.track_id, gen_random_uuid(),
				CASE WHEN s > current_date - 84 THEN 'active' ELSE 'ended' END, s,
				CASE WHEN s > current_date - 84 THEN NULL ELSE (s + 84)::timestamptz END, now(), s::timestamptz
			FROM (SELECT clinic_id, (array_agg(track_id))[1] AS track_id FROM tracks GROUP BY 1) k,
				generate_series(1, 40) n, LATERAL (SELECT current_date - ((n * 9) % 365) AS s) d`,
		// Three 3-hour sessions a week for each enrollment's 12 weeks, up to today; one in eight absent.
		`INSERT INTO attendance (appointment_id, clinic_id, enrollment_id, track_id, status, minutes_attended, scheduled_minutes, local_date, version)
			SELECT gen_random_uuid(), e.clinic_id, e.enrollment_id, e.track_id,
				CASE WHEN (w * 3 + x) % 8 = 0 THEN 'absent' ELSE 'present' END,
				CASE WHEN (w * 3 + x) % 8 = 0 THEN 0 ELSE 180 END, 180, e.start_date + w * 7 + x * 2, 1
			FROM enrollments e, generate_series(0, 11) w, generate_series(0, 2) x
			WHERE e.start_date + w * 7 + x * 2 < current_date`,
		`INSERT INTO admissions SELECT gen_random_uuid(), clinic_id, patient_id, start_date - 5, start_date - 2, start_date FROM enrollments`,
		`INSERT INTO discharges SELECT gen_random_uuid(), clinic_id, patient_id, 'completed', start_date, start_date + 84 FROM enrollments WHERE status = 'ended'`,
		`INSERT INTO charges SELECT gen_random_uuid(), clinic_id, 'medicaid', 25000, local_date, 'submitted', '', now() FROM attendance WHERE status = 'present'`,
		`INSERT INTO claims (claim_id, clinic_id, payer_id, total_cents, paid_cents, status, submitted_at, status_at, adjudicated_at)
			SELECT gen_random_uuid(), clinic_id, 'medicaid', 75000, 63000, 'paid', (start_date + 14)::timestamptz, now(), (start_date + 40)::timestamptz
			FROM enrollments, generate_series(1, 3)`,
		`ANALYZE`,
	} {
		if _, err := e.Pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q[:40], err)
		}
	}
	t.Logf("filled in %v: %d enrollments, %d attendance rows, %d charges, %d claims", time.Since(began).Round(time.Millisecond),
		e.Count(t, `SELECT count(*) FROM enrollments`), e.Count(t, `SELECT count(*) FROM attendance`),
		e.Count(t, `SELECT count(*) FROM charges`), e.Count(t, `SELECT count(*) FROM claims`))

	cookie := e.signIn("operator", "*")
	measure := func(name, path string, v any) {
		var times []time.Duration
		for range 5 {
			t0 := time.Now()
			e.json(path, cookie, v)
			times = append(times, time.Since(t0))
		}
		slices.Sort(times)
		t.Logf("%-36s median %v (min %v, max %v)", name, times[2].Round(time.Millisecond), times[0].Round(time.Millisecond), times[4].Round(time.Millisecond))
	}
	year := "?from=" + today.AddDate(0, 0, -364).Format(time.DateOnly) + "&to=" + today.Format(time.DateOnly)
	var o web.Overview
	measure("overview, last 28 days", "/api/overview.json", &o)
	if len(o.Clinics) != 100 || o.Total.KPIs["meeting_minimum"] == "—" {
		t.Errorf("overview: %d clinics, meeting minimum %s", len(o.Clinics), o.Total.KPIs["meeting_minimum"])
	}
	t.Logf("network, last 28 days: %v", o.Total.KPIs)
	measure("overview, a year (53 weeks)", "/api/overview.json"+year, &o)
	measure("overview, a year, sorted and filtered", "/api/overview.json"+year+"&sort=meeting_minimum&dir=desc&tz=America/Chicago", &o)
	var b web.Billing
	measure("billing, a year", "/api/billing.json"+year, &b)

	// Where a year's overview spends its time.
	st := store.New(serviceStore(t, e.Service))
	ctx = auth.WithSystemScope(ctx) // the store's transactions in every clinic's scope, as for a user of "*"
	sc := store.Scope{All: true}
	rng := kpi.Range{From: today.AddDate(0, 0, -364), To: today}
	// Inputs and Trends without the program weeks (MinimumWeeks, read once and shared).
	for name, fn := range map[string]func() error{
		"store.Inputs":       func() error { _, err := st.Inputs(ctx, sc, rng, nil); return err },
		"store.Trends":       func() error { _, err := st.Trends(ctx, sc, rng, nil); return err },
		"store.MinimumWeeks": func() error { _, err := st.MinimumWeeks(ctx, sc, rng, time.Now()); return err },
	} {
		t0 := time.Now()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-36s %v (a year)", name, time.Since(t0).Round(time.Millisecond))
	}
}
