package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
	"github.com/trellis-health/trellis/services/dashboard/internal/store"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

// scaleFill fills the read model with SQL, as a replay of a year of 100 clinics would leave it:
// three tracks a clinic, 240 enrollments a clinic starting over the past year (12-week programs,
// about 55 active at a time), three or four 3-hour sessions a week for each enrollment up to
// today (one in eight absent, some late), a charge per attended session (a few held or void),
// three claims per enrollment (paid, denied or still submitted), write-offs, referrals, risks and
// the appointments of the last four weeks and today. Set-based: the whole fill is a dozen
// statements.
var scaleFill = []string{
	`INSERT INTO programs VALUES ('adult-iop', 540, 12, now())`,
	`INSERT INTO clinics (clinic_id, name, time_zone)
		SELECT ('0190a000-0000-7000-8000-' || lpad(to_hex(c), 12, '0'))::uuid, 'Clinic ' || c,
			CASE WHEN c % 2 = 0 THEN 'America/Chicago' ELSE 'America/New_York' END FROM generate_series(1, 100) c`,
	`INSERT INTO tracks SELECT gen_random_uuid(), clinic_id, 'adult-' || t, 'adult-iop', 20, true, now()
		FROM clinics, generate_series(1, 3) t`,
	`INSERT INTO enrollments (enrollment_id, clinic_id, track_id, patient_id, status, start_date, ended_at, updated_at, seated_at)
		SELECT gen_random_uuid(), k.clinic_id, k.tracks[1 + n % 3], gen_random_uuid(),
			CASE WHEN s > current_date - 84 THEN 'active' ELSE 'ended' END, s,
			CASE WHEN s > current_date - 84 THEN NULL ELSE (s + 84)::timestamptz END, now(), s::timestamptz
		FROM (SELECT clinic_id, array_agg(track_id ORDER BY track_code) AS tracks FROM tracks GROUP BY 1) k,
			generate_series(1, 240) n, LATERAL (SELECT current_date - ((n * 3 + get_byte(uuid_send(k.clinic_id), 15)) % 365) AS s) d`,
	`INSERT INTO attendance (appointment_id, clinic_id, enrollment_id, track_id, status, minutes_attended, scheduled_minutes, local_date, version)
		SELECT gen_random_uuid(), e.clinic_id, e.enrollment_id, e.track_id,
			CASE WHEN (w * 4 + x + extract(doy FROM e.start_date)::int) % 8 = 0 THEN 'absent'
				WHEN (w * 4 + x) % 13 = 0 THEN 'late' ELSE 'present' END,
			CASE WHEN (w * 4 + x + extract(doy FROM e.start_date)::int) % 8 = 0 THEN 0
				WHEN (w * 4 + x) % 13 = 0 THEN 150 ELSE 180 END,
			180, e.start_date + w * 7 + (ARRAY[0, 2, 4, 5])[x + 1], 1 + (w + x) % 3 / 2
		FROM enrollments e, generate_series(0, 11) w, generate_series(0, 3) x
		WHERE (x < 3 OR extract(doy FROM e.start_date)::int % 2 = 0) AND e.start_date + w * 7 + (ARRAY[0, 2, 4, 5])[x + 1] <= current_date`,
	`INSERT INTO appointments SELECT appointment_id, clinic_id, NULL, 'group', local_date, '09:00', '12:00', 'scheduled', now()
		FROM attendance WHERE local_date >= current_date - 28`,
	`INSERT INTO admissions SELECT gen_random_uuid(), clinic_id, patient_id, start_date - 5, start_date - 2, start_date FROM enrollments`,
	`INSERT INTO discharges SELECT gen_random_uuid(), clinic_id, patient_id, 'completed', start_date, start_date + 84 FROM enrollments WHERE status = 'ended'`,
	`INSERT INTO referrals SELECT gen_random_uuid(), clinic_id, (ARRAY['new', 'contacted', 'screened', 'admitted'])[1 + get_byte(uuid_send(patient_id), 0) % 4],
		seated_at - interval '9 days', seated_at FROM enrollments`,
	`INSERT INTO risks SELECT enrollment_id, now() - interval '3 days', clinic_id, patient_id, '{absences}', NULL
		FROM enrollments WHERE status = 'active' AND get_byte(uuid_send(enrollment_id), 0) < 16`,
	`INSERT INTO charges SELECT gen_random_uuid(), clinic_id, 'medicaid', 25000, local_date,
			CASE WHEN get_byte(uuid_send(appointment_id), 0) < 4 THEN 'held' WHEN get_byte(uuid_send(appointment_id), 0) < 6 THEN 'void' ELSE 'submitted' END,
			CASE WHEN get_byte(uuid_send(appointment_id), 0) < 4 THEN 'no_auth: prior authorization' ELSE '' END, now()
		FROM attendance WHERE status <> 'absent'`,
	`INSERT INTO claims (claim_id, clinic_id, payer_id, total_cents, paid_cents, status, submitted_at, status_at, adjudicated_at, ever_denied)
		SELECT gen_random_uuid(), clinic_id, CASE WHEN m = 2 THEN 'aetna' ELSE 'medicaid' END, 75000,
			CASE WHEN s = 'paid' THEN 63000 ELSE 0 END, s, (start_date + 14 + 28 * m)::timestamptz, now(),
			CASE WHEN s = 'submitted' THEN NULL ELSE (start_date + 40 + 28 * m)::timestamptz END, s = 'denied'
		FROM enrollments, generate_series(0, 2) m,
			LATERAL (SELECT CASE WHEN start_date + 40 + 28 * m > current_date THEN 'submitted'
				WHEN get_byte(uuid_send(enrollment_id), m) < 26 THEN 'denied' ELSE 'paid' END AS s) x
		WHERE start_date + 14 + 28 * m <= current_date`,
	`INSERT INTO write_offs SELECT gen_random_uuid(), gen_random_uuid(), 'denials', claim_id, clinic_id, payer_id, 5000,
			CASE WHEN get_byte(uuid_send(claim_id), 1) % 2 = 0 THEN 'timely_filing' ELSE 'small_balance' END, adjudicated_at + interval '10 days'
		FROM claims WHERE status = 'denied'`,
	`ANALYZE`,
}

// scaleResult is one endpoint's times, as the bench harness reads them (SCALE_RESULT lines).
type scaleResult struct {
	Name     string  `json:"name"`
	Requests int     `json:"requests"`
	P50      float64 `json:"p50_ms"`
	P95      float64 `json:"p95_ms"`
	Max      float64 `json:"max_ms"`
}

// percentile is the nearest-rank p-th percentile of sorted (ascending) times, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	i := max(int(math.Ceil(p/100*float64(len(sorted))))-1, 0)
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/100) / 10 }

// TestOverviewAtScale measures the dashboard's pages on a network of 100 clinics and a year
// (DASHBOARD_SCALE=1 to run it; it only logs the times, it asserts no timing): each endpoint
// 20 times after 2 warm-ups, one SCALE_RESULT line each; SCALE_FILL says what was filled.
func TestOverviewAtScale(t *testing.T) {
	if os.Getenv("DASHBOARD_SCALE") == "" {
		t.Skip("set DASHBOARD_SCALE=1 to measure the dashboard on 100 clinics and a year")
	}
	e := start(t)
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	began := time.Now()
	for _, q := range scaleFill {
		if _, err := e.Pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q[:40], err)
		}
	}
	fill := time.Since(began)
	counts := map[string]int{"clinics": e.Count(t, `SELECT count(*) FROM clinics`), "enrollments": e.Count(t, `SELECT count(*) FROM enrollments`),
		"attendance_rows": e.Count(t, `SELECT count(*) FROM attendance`), "charges": e.Count(t, `SELECT count(*) FROM charges`),
		"claims": e.Count(t, `SELECT count(*) FROM claims`)}
	t.Logf("filled in %v: %d enrollments, %d attendance rows, %d charges, %d claims", fill.Round(time.Millisecond),
		counts["enrollments"], counts["attendance_rows"], counts["charges"], counts["claims"])
	fillLine, _ := json.Marshal(struct {
		Clinics        int     `json:"clinics"`
		Enrollments    int     `json:"enrollments"`
		AttendanceRows int     `json:"attendance_rows"`
		Charges        int     `json:"charges"`
		Claims         int     `json:"claims"`
		FillS          float64 `json:"fill_s"`
	}{counts["clinics"], counts["enrollments"], counts["attendance_rows"], counts["charges"], counts["claims"], math.Round(fill.Seconds()*10) / 10})
	t.Logf("SCALE_FILL %s", fillLine)

	cookie := e.signIn("operator", "*")
	measure := func(name, path string, v any) {
		t.Helper()
		for range 2 {
			e.json(path, cookie, v)
		}
		var times []time.Duration
		for range 20 {
			t0 := time.Now()
			e.json(path, cookie, v)
			times = append(times, time.Since(t0))
		}
		slices.Sort(times)
		r := scaleResult{Name: name, Requests: len(times), P50: percentile(times, 50), P95: percentile(times, 95), Max: ms(times[len(times)-1])}
		res, _ := json.Marshal(r)
		t.Logf("%-40s median %.1f ms, p95 %.1f ms (min %.1f, max %.1f)", name, r.P50, r.P95, ms(times[0]), r.Max)
		t.Logf("SCALE_RESULT %s", res)
	}
	year := "?from=" + today.AddDate(0, 0, -364).Format(time.DateOnly) + "&to=" + today.Format(time.DateOnly)
	var o web.Overview
	measure("overview, last 28 days", "/api/overview.json", &o)
	if len(o.Clinics) != 100 || o.Total.KPIs["meeting_minimum"] == "—" {
		t.Errorf("overview: %d clinics, meeting minimum %s", len(o.Clinics), o.Total.KPIs["meeting_minimum"])
	}
	t.Logf("network, last 28 days: %v", o.Total.KPIs)
	measure("overview, a year", "/api/overview.json"+year, &o)
	t.Logf("network, a year: %v", o.Total.KPIs)
	measure("overview, a year, sorted and filtered", "/api/overview.json"+year+"&sort=meeting_minimum&dir=desc&tz=America/Chicago", &o)
	measure("overview, a year, one clinic's trends", "/api/overview.json"+year+"&clinic=0190a000-0000-7000-8000-000000000007", &o)
	var c web.ClinicPage
	measure("clinic page, last 28 days", "/api/clinics/0190a000-0000-7000-8000-000000000007.json", &c)
	measure("clinic page, a year", "/api/clinics/0190a000-0000-7000-8000-000000000007.json"+year, &c)
	var b web.Billing
	measure("billing, last 28 days", "/api/billing.json", &b)
	measure("billing, a year", "/api/billing.json"+year, &b)
	t.Logf("billing, a year: %v, rates %v", b.Flow, b.Rates)
	var h web.Health
	measure("health", "/api/health.json", &h)

	// Where a year's overview spends its time.
	st := store.New(serviceStore(t, e.Service))
	ctx = auth.WithSystemScope(ctx) // the store's transactions in every clinic's scope, as for a user of "*"
	sc := store.Scope{All: true}
	rng := kpi.Range{From: today.AddDate(0, 0, -364), To: today}
	// Inputs and Trends without the program weeks (MinimumWeeks, read once and shared).
	for _, s := range []struct {
		name string
		fn   func() error
	}{
		{"store.MinimumWeeks", func() error { _, err := st.MinimumWeeks(ctx, sc, rng, time.Now()); return err }},
		{"store.Inputs", func() error { _, err := st.Inputs(ctx, sc, rng); return err }},
		{"store.Trends", func() error { _, err := st.Trends(ctx, sc, rng); return err }},
		{"store.Flow", func() error { _, err := st.Flow(ctx, sc, rng); return err }},
		{"store.FlowWeeks", func() error { _, err := st.FlowWeeks(ctx, sc, rng); return err }},
		{"store.ClaimRates", func() error { _, err := st.ClaimRates(ctx, sc, rng); return err }},
		{"store.Aging", func() error { _, err := st.Aging(ctx, sc, time.Now()); return err }},
	} {
		var times []time.Duration
		for range 5 {
			t0 := time.Now()
			if err := s.fn(); err != nil {
				t.Fatal(err)
			}
			times = append(times, time.Since(t0))
		}
		slices.Sort(times)
		t.Logf("%-40s median %v (a year)", s.name, times[2].Round(100*time.Microsecond))
	}
}
