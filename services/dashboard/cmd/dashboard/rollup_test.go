package main

import (
	"context"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/dashboard/internal/kpi"
	"github.com/trellis-health/trellis/services/dashboard/internal/store"
)

// rollupChecks pair each rollup of migration 00008 with the same figures recomputed from the
// projections' rows (rows summing to nothing left out on both sides), as sorted text.
var rollupChecks = []struct{ name, rollup, raw string }{
	{"attendance_days",
		`SELECT clinic_id, local_date, status, sessions FROM attendance_days WHERE sessions <> 0`,
		`SELECT clinic_id, local_date, status, count(*) FROM attendance GROUP BY 1, 2, 3`},
	{"charge_days",
		`SELECT clinic_id, service_date, amount_cents FROM charge_days WHERE amount_cents <> 0`,
		`SELECT clinic_id, service_date, sum(amount_cents) FROM charges WHERE status <> 'void' AND service_date IS NOT NULL
			GROUP BY 1, 2 HAVING sum(amount_cents) <> 0`},
	{"claim_days, submitted",
		`SELECT clinic_id, day, submitted_cents, submitted_paid_cents, submitted_denied_cents FROM claim_days
			WHERE (submitted_cents, submitted_paid_cents, submitted_denied_cents) <> (0, 0, 0)`,
		`SELECT k.clinic_id, (k.submitted_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date, sum(k.total_cents),
				sum(k.paid_cents), coalesce(sum(k.total_cents) FILTER (WHERE k.status = 'denied'), 0)
			FROM claims k LEFT JOIN clinics c USING (clinic_id) WHERE k.submitted_at IS NOT NULL GROUP BY 1, 2`},
	{"claim_days, adjudicated",
		`SELECT clinic_id, day, adjudicated, adjudicated_denied, adjudicated_clean, adjudicated_cents, contractual_cents,
				adjudicated_paid_cents FROM claim_days WHERE adjudicated <> 0`,
		`SELECT k.clinic_id, (k.adjudicated_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date, count(*),
				count(*) FILTER (WHERE k.status = 'denied'),
				count(*) FILTER (WHERE k.status = 'paid' AND NOT k.ever_denied AND NOT k.correction AND NOT k.corrected),
				sum(k.total_cents), sum(k.contractual_cents), sum(k.paid_cents)
			FROM claims k LEFT JOIN clinics c USING (clinic_id)
			WHERE k.adjudicated_at IS NOT NULL AND k.status IN ('paid', 'partially_paid', 'denied') GROUP BY 1, 2`},
	{"minimum_days",
		`SELECT clinic_id, last_day, weeks, met FROM minimum_days WHERE (weeks, met) <> (0, 0)`,
		`SELECT clinic_id, last_day, count(*), count(*) FILTER (WHERE met) FROM program_weeks GROUP BY 1, 2`},
	{"census_days",
		`SELECT clinic_id, day, delta FROM census_days WHERE delta <> 0`,
		`SELECT clinic_id, day, sum(n) FROM (
				SELECT e.clinic_id, (e.seated_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date AS day, 1 AS n
				FROM enrollments e LEFT JOIN clinics c USING (clinic_id) WHERE e.seated_at IS NOT NULL
				UNION ALL
				SELECT e.clinic_id, greatest((e.seated_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date,
					(e.ended_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date), -1
				FROM enrollments e LEFT JOIN clinics c USING (clinic_id) WHERE e.seated_at IS NOT NULL AND e.ended_at IS NOT NULL) x
			GROUP BY 1, 2 HAVING sum(n) <> 0`},
	{"admission_days",
		`SELECT clinic_id, day, admitted FROM admission_days WHERE admitted <> 0`,
		`SELECT a.clinic_id, (a.admitted_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date, count(*)
			FROM admissions a LEFT JOIN clinics c USING (clinic_id) GROUP BY 1, 2`},
	{"admission_samples",
		`SELECT episode_id, clinic_id, day, days FROM admission_samples`,
		`SELECT a.episode_id, a.clinic_id, (a.admitted_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date,
				extract(epoch FROM a.admitted_at - a.first_contact_at)::float8 / 86400
			FROM admissions a LEFT JOIN clinics c USING (clinic_id) WHERE a.first_contact_at IS NOT NULL`},
	{"hold_counts",
		`SELECT clinic_id, reason, charges FROM hold_counts WHERE charges <> 0`,
		`SELECT clinic_id, coalesce(nullif(trim(split_part(hold_reason, ':', 1)), ''), 'unspecified'), count(*) FROM charges
			WHERE status = 'held' GROUP BY 1, 2`},
	// The weekly rollups: the days of each Monday-start week (kpi.Monday) added up.
	{"attendance_weekly",
		`SELECT clinic_id, monday, status, sessions FROM attendance_weekly WHERE sessions <> 0`,
		`SELECT clinic_id, local_date - (extract(isodow FROM local_date)::int - 1), status, count(*) FROM attendance GROUP BY 1, 2, 3`},
	{"charge_weekly",
		`SELECT clinic_id, monday, amount_cents FROM charge_weekly WHERE amount_cents <> 0`,
		`SELECT clinic_id, service_date - (extract(isodow FROM service_date)::int - 1), sum(amount_cents) FROM charges
			WHERE status <> 'void' AND service_date IS NOT NULL GROUP BY 1, 2 HAVING sum(amount_cents) <> 0`},
	{"claim_weekly",
		`SELECT clinic_id, monday, submitted_cents, submitted_paid_cents, submitted_denied_cents, adjudicated, adjudicated_denied,
				adjudicated_clean, adjudicated_cents, contractual_cents, adjudicated_paid_cents FROM claim_weekly
			WHERE (submitted_cents, submitted_paid_cents, submitted_denied_cents, adjudicated) <> (0, 0, 0, 0)`,
		`SELECT clinic_id, day - (extract(isodow FROM day)::int - 1), sum(submitted_cents), sum(submitted_paid_cents),
				sum(submitted_denied_cents), sum(adjudicated), sum(adjudicated_denied), sum(adjudicated_clean), sum(adjudicated_cents),
				sum(contractual_cents), sum(adjudicated_paid_cents) FROM claim_days GROUP BY 1, 2
			HAVING (sum(submitted_cents), sum(submitted_paid_cents), sum(submitted_denied_cents), sum(adjudicated)) <> (0, 0, 0, 0)`},
	{"census_weekly",
		`SELECT clinic_id, monday, delta FROM census_weekly WHERE delta <> 0`,
		`SELECT clinic_id, day - (extract(isodow FROM day)::int - 1), sum(delta) FROM census_days GROUP BY 1, 2 HAVING sum(delta) <> 0`},
	{"admission_weekly",
		`SELECT clinic_id, monday, admitted FROM admission_weekly WHERE admitted <> 0`,
		`SELECT clinic_id, day - (extract(isodow FROM day)::int - 1), sum(admitted) FROM admission_days GROUP BY 1, 2 HAVING sum(admitted) <> 0`},
	{"minimum_weekly",
		`SELECT clinic_id, monday, weeks, met FROM minimum_weekly WHERE (weeks, met) <> (0, 0)`,
		`SELECT clinic_id, last_day - (extract(isodow FROM last_day)::int - 1), count(*), count(*) FILTER (WHERE met) FROM program_weeks GROUP BY 1, 2`},
}

// checkRollups compares every rollup with its recomputation.
func (e *env) checkRollups(when string) {
	e.t.Helper()
	for _, c := range rollupChecks {
		var got, want string
		for q, out := range map[string]*string{c.rollup: &got, c.raw: &want} {
			if err := e.Pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '') FROM (`+q+`) x`).Scan(out); err != nil {
				e.t.Fatalf("%s: %v", c.name, err)
			}
		}
		if got != want {
			e.t.Errorf("%s: %s holds\n%s\nrecomputed from the rows:\n%s", when, c.name, got, want)
		}
	}
}

// expectedMinimum counts the program weeks of every enrollment as the figure defines them
// (kpi.MinimumWeeks, per enrollment, from the attendance rows' minutes per day), per clinic and
// Monday of the week's last day, for r as of now.
func (e *env) expectedMinimum(r kpi.Range, now time.Time) store.MinimumCounts {
	e.t.Helper()
	ctx := context.Background()
	rows, err := e.Pool.Query(ctx, `SELECT e.enrollment_id::text, e.clinic_id::text, e.start_date,
			CASE WHEN e.ended_at IS NULL THEN NULL ELSE (e.ended_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date END,
			p.weekly_minimum_minutes, p.length_weeks, coalesce(c.time_zone, '')
		FROM enrollments e JOIN tracks t ON t.track_id = e.track_id JOIN programs p ON p.program_code = t.program_code
		LEFT JOIN clinics c ON c.clinic_id = e.clinic_id WHERE e.start_date IS NOT NULL`)
	if err != nil {
		e.t.Fatal(err)
	}
	type enr struct {
		clinic, zone string
		m            kpi.MinimumEnrollment
	}
	enrs := map[string]*enr{}
	for rows.Next() {
		x := &enr{m: kpi.MinimumEnrollment{Minutes: map[time.Time]int{}}}
		var id string
		if err := rows.Scan(&id, &x.clinic, &x.m.Start, &x.m.End, &x.m.MinimumMinutes, &x.m.LengthWeeks, &x.zone); err != nil {
			e.t.Fatal(err)
		}
		enrs[id] = x
	}
	if rows.Err() != nil {
		e.t.Fatal(rows.Err())
	}
	rows, err = e.Pool.Query(ctx, `SELECT enrollment_id::text, local_date, sum(minutes_attended)::int FROM attendance
		WHERE enrollment_id IS NOT NULL GROUP BY 1, 2`)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var d time.Time
		var m int
		if err := rows.Scan(&id, &d, &m); err != nil {
			e.t.Fatal(err)
		}
		if x := enrs[id]; x != nil {
			x.m.Minutes[d] = m
		}
	}
	if rows.Err() != nil {
		e.t.Fatal(rows.Err())
	}
	out := store.MinimumCounts{}
	for _, x := range enrs {
		loc, err := time.LoadLocation(x.zone)
		if err != nil {
			loc = time.UTC
		}
		y, mo, d := now.In(loc).Date()
		for _, w := range kpi.MinimumWeeks(x.m, r, time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)) {
			if out[x.clinic] == nil {
				out[x.clinic] = map[time.Time]store.WeekCount{}
			}
			c := out[x.clinic][kpi.Monday(w.Last)]
			c.Weeks++
			if w.Met {
				c.Met++
			}
			out[x.clinic][kpi.Monday(w.Last)] = c
		}
	}
	return out
}

// The rollups (migration 00008) equal a recomputation from the projections' rows after a
// sequence of records, corrections, older versions arriving late, redeliveries, voided
// charges, adjudications and a corrected claim, an enrollment's new start date and its end, a
// program's new weekly minimum and a clinic's new time zone; and the weekly-minimum counts
// read from them equal kpi.MinimumWeeks over the rows, for ranges of a week to a year.
func TestRollupsEqualRecomputation(t *testing.T) {
	e := start(t)
	now := time.Now().UTC()
	d := func(days int) time.Time { return now.AddDate(0, 0, -days) }
	rnd := rand.New(rand.NewPCG(9, 2026))
	type sentEvent struct {
		subject string
		env     *eventsv1.Envelope
	}
	var sent []sentEvent
	pub := func(subject, clinic string, at time.Time, ev proto.Message) {
		t.Helper()
		sent = append(sent, sentEvent{subject, e.publish(subject, clinic, at, ev)})
	}

	clinics := map[string]string{clinicA: "America/Chicago", clinicB: "America/New_York"}
	for c, zone := range clinics {
		pub("trellis.scheduling.clinic.configured.v1", c, d(90), &schedulingv1.ClinicConfigured{
			Clinic: &schedulingv1.Clinic{ClinicId: c, Name: "Clinic " + c[len(c)-1:], TimeZone: zone}})
	}
	pub("trellis.scheduling.program.configured.v1", "", d(90), &schedulingv1.ProgramConfigured{
		Program: &schedulingv1.Program{ProgramCode: "adult-iop", LengthWeeks: 4, WeeklyMinimumMinutes: 480}})
	tracks := map[string]string{clinicA: bus.NewID(), clinicB: bus.NewID()}
	for c, tr := range tracks {
		pub("trellis.scheduling.track.configured.v1", c, d(90), &schedulingv1.TrackConfigured{Track: &schedulingv1.Track{
			TrackId: tr, ClinicId: c, ProgramCode: "adult-iop", TrackCode: "adult", Capacity: 20}})
	}
	// A program of unknown length (0): its enrollments' weeks never end while they are active.
	pub("trellis.scheduling.program.configured.v1", "", d(90), &schedulingv1.ProgramConfigured{
		Program: &schedulingv1.Program{ProgramCode: "open-iop", LengthWeeks: 0, WeeklyMinimumMinutes: 300}})
	openTrack := bus.NewID()
	pub("trellis.scheduling.track.configured.v1", clinicB, d(90), &schedulingv1.TrackConfigured{Track: &schedulingv1.Track{
		TrackId: openTrack, ClinicId: clinicB, ProgramCode: "open-iop", TrackCode: "open", Capacity: 20}})
	type enrollment struct{ id, clinic, track string }
	var enrollments []enrollment
	for i := range 11 {
		en := enrollment{bus.NewID(), clinicA, tracks[clinicA]}
		switch {
		case i >= 9:
			en = enrollment{en.id, clinicB, openTrack}
		case i%3 == 2:
			en = enrollment{en.id, clinicB, tracks[clinicB]}
		}
		enrollments = append(enrollments, en)
		pub("trellis.scheduling.enrollment.created.v1", en.clinic, d(60-3*i), &schedulingv1.EnrollmentCreated{
			EnrollmentId: en.id, PatientId: bus.NewID(), ClinicId: en.clinic, TrackId: en.track, StartDate: day(d(45 - 3*i))})
	}
	statuses := []schedulingv1.AttendanceStatus{schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT,
		schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LEFT_EARLY,
		schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED}
	record := func(en enrollment, appt string, days int, v int32) {
		st := statuses[rnd.IntN(len(statuses))]
		minutes := int32(0)
		if st != schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT && st != schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED {
			minutes = int32(60 + 30*rnd.IntN(5))
		}
		subject := "trellis.scheduling.attendance.recorded.v1"
		if v > 1 {
			subject = "trellis.scheduling.attendance.corrected.v1"
		}
		pub(subject, en.clinic, d(days), &schedulingv1.AttendanceRecorded{AppointmentId: appt, PatientId: bus.NewID(), ClinicId: en.clinic,
			EnrollmentId: en.id, TrackId: en.track, LocalDate: day(d(days)), Status: st, MinutesAttended: minutes,
			ScheduledMinutes: 180, Version: v})
	}
	// Sessions every other day or so of each enrollment; a third corrected (version 2, some of
	// them a third time), a tenth of the corrections overtaken by their older version.
	for i, en := range enrollments {
		for days := 45 - 3*i; days >= 0; days -= 1 + rnd.IntN(2) {
			appt := bus.NewID()
			switch rnd.IntN(10) {
			case 0: // the correction first, then the record it corrects
				record(en, appt, days, 2)
				record(en, appt, days, 1)
			case 1, 2, 3:
				record(en, appt, days, 1)
				record(en, appt, days, 2)
				if rnd.IntN(2) == 0 {
					record(en, appt, days, 3)
				}
			default:
				record(en, appt, days, 1)
			}
		}
	}
	// Billing: charges (a few voided later), claims submitted and adjudicated, one corrected.
	for i := range 40 {
		c := clinicA
		if i%4 == 3 {
			c = clinicB
		}
		id := bus.NewID()
		st := billingv1.ChargeStatus_CHARGE_STATUS_SUBMITTED
		if i%7 == 0 {
			st = billingv1.ChargeStatus_CHARGE_STATUS_HELD
		}
		pub("trellis.billing.charge.created.v1", c, d(30-i/2), &billingv1.ChargeCreated{Charge: &billingv1.Charge{ChargeId: id, ClinicId: c,
			PatientId: bus.NewID(), PayerId: "medicaid", ServiceDate: day(d(30 - i/2)), AmountCents: int64(1000 + 250*(i%5)), Status: st}})
		if i%5 == 1 {
			pub("trellis.billing.charge.status_changed.v1", c, d(29-i/2), &billingv1.ChargeStatusChanged{ChargeId: id, ClinicId: c,
				From: st, To: billingv1.ChargeStatus_CHARGE_STATUS_VOID, ChangedAt: timestamppb.New(d(29 - i/2))})
		}
	}
	var claims []string
	for i := range 16 {
		c := clinicA
		if i%4 == 3 {
			c = clinicB
		}
		id := bus.NewID()
		claims = append(claims, id)
		// Submitted late in the evening: the clinic's time zone decides the day.
		at := time.Date(d(30-i).Year(), d(30-i).Month(), d(30-i).Day(), 23, 30, 0, 0, time.UTC)
		pub("trellis.billing.claim.submitted.v1", c, at, &billingv1.ClaimSubmitted{ClaimId: id, ClinicId: c, PatientId: bus.NewID(),
			PayerId: "medicaid", TotalCents: int64(5000 + 500*i), SubmittedAt: timestamppb.New(at)})
		if i%3 != 2 {
			st := []billingv1.ClaimStatus{billingv1.ClaimStatus_CLAIM_STATUS_PAID, billingv1.ClaimStatus_CLAIM_STATUS_DENIED,
				billingv1.ClaimStatus_CLAIM_STATUS_PARTIALLY_PAID, billingv1.ClaimStatus_CLAIM_STATUS_REVERSED}[i%4]
			adj := at.Add(10 * 24 * time.Hour)
			pub("trellis.billing.claim.adjudicated.v1", c, adj, &billingv1.ClaimAdjudicated{ClaimId: id, ClinicId: c, PatientId: bus.NewID(),
				PayerId: "medicaid", Status: st, ChargedCents: int64(5000 + 500*i), ContractualCents: 300, PaidCents: int64(4000 + 100*i)})
			if i%4 == 1 { // denied, then paid on appeal
				pub("trellis.billing.claim.adjudicated.v1", c, adj.Add(time.Hour), &billingv1.ClaimAdjudicated{ClaimId: id, ClinicId: c,
					PatientId: bus.NewID(), PayerId: "medicaid", Status: billingv1.ClaimStatus_CLAIM_STATUS_PAID, ChargedCents: int64(5000 + 500*i),
					PaidCents: int64(4500 + 100*i)})
			}
		}
	}
	pub("trellis.billing.claim.submitted.v1", clinicA, d(5), &billingv1.ClaimSubmitted{ClaimId: bus.NewID(), ClinicId: clinicA,
		PatientId: bus.NewID(), PayerId: "medicaid", TotalCents: 4000, SubmittedAt: timestamppb.New(d(5)), FrequencyCode: "7",
		CorrectedClaimId: claims[0]})
	// Admissions late in the evening (the time zone decides the day), one admitted again later.
	for i := range 6 {
		c := clinicA
		if i%3 == 2 {
			c = clinicB
		}
		at := time.Date(d(20-i).Year(), d(20-i).Month(), d(20-i).Day(), 23, 0, 0, 0, time.UTC)
		episode := bus.NewID()
		ev := &intakev1.PatientAdmitted{PatientId: bus.NewID(), EpisodeId: episode, ClinicId: c, StartDate: day(d(18 - i)),
			AdmittedAt: timestamppb.New(at), FirstContactAt: timestamppb.New(at.AddDate(0, 0, -3))}
		pub("trellis.intake.patient.admitted.v1", c, at, ev)
		if i == 1 {
			ev.AdmittedAt = timestamppb.New(at.AddDate(0, 0, 2))
			pub("trellis.intake.patient.admitted.v1", c, at.AddDate(0, 0, 2), ev)
		}
	}
	// Redeliveries of a tenth of everything so far (only the inbox can tell them).
	for i, s := range sent {
		if i%10 == 3 {
			e.redeliver(s.subject, s.env)
		}
	}
	e.settle()
	e.checkRollups("after the records, corrections and redeliveries")
	if n := e.Count(t, `SELECT count(*) FROM attendance WHERE version > 1`); n < 20 {
		t.Fatalf("only %d corrected attendance records: the sequence tests too little", n)
	}
	if n := e.Count(t, `SELECT count(*) FROM program_weeks WHERE met`); n == 0 {
		t.Fatal("no program week met the minimum: the sequence tests too little")
	}
	if n := e.Count(t, `SELECT count(*) FROM admissions`); n != 6 {
		t.Fatalf("%d admissions, want 6", n)
	}

	// An enrollment's new start date, another's end, a newer program configuration and a
	// clinic's new time zone move weeks and days: the rollups follow.
	pub("trellis.scheduling.enrollment.created.v1", clinicA, d(2), &schedulingv1.EnrollmentCreated{
		EnrollmentId: enrollments[0].id, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: tracks[clinicA], StartDate: day(d(43))})
	pub("trellis.scheduling.enrollment.ended.v1", clinicA, d(2), &schedulingv1.EnrollmentEnded{
		EnrollmentId: enrollments[1].id, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: tracks[clinicA], Reason: "discharged",
		EndedAt: timestamppb.New(d(20))})
	pub("trellis.scheduling.program.configured.v1", "", d(1), &schedulingv1.ProgramConfigured{
		Program: &schedulingv1.Program{ProgramCode: "adult-iop", LengthWeeks: 5, WeeklyMinimumMinutes: 360}})
	pub("trellis.scheduling.clinic.configured.v1", clinicA, d(1), &schedulingv1.ClinicConfigured{
		Clinic: &schedulingv1.Clinic{ClinicId: clinicA, Name: "Clinic a", TimeZone: "Asia/Tokyo"}})
	e.settle()
	e.checkRollups("after a new start, an end, a new minimum and a new time zone")

	st := store.New(serviceStore(t, e.Service))
	ctx := auth.WithSystemScope(context.Background())
	today := now.Truncate(24 * time.Hour)
	for _, r := range []kpi.Range{{From: today.AddDate(0, 0, -27), To: today}, {From: today.AddDate(0, 0, -364), To: today},
		{From: today.AddDate(0, 0, -20), To: today.AddDate(0, 0, -9)}, {From: today.AddDate(0, 0, -3), To: today.AddDate(0, 0, -3)},
		{From: kpi.Monday(today).AddDate(0, 0, -30), To: kpi.Monday(today).AddDate(0, 0, -8)}} {
		got, err := st.MinimumWeeks(ctx, store.Scope{All: true}, r, now)
		if err != nil {
			t.Fatal(err)
		}
		for c, byWeek := range got { // weeks without a count are no weeks
			maps.DeleteFunc(byWeek, func(_ time.Time, w store.WeekCount) bool { return w == store.WeekCount{} })
			if len(byWeek) == 0 {
				delete(got, c)
			}
		}
		if want := e.expectedMinimum(r, now); !reflect.DeepEqual(got, want) {
			t.Errorf("%s to %s: MinimumWeeks %v\nkpi.MinimumWeeks over the rows %v", day(r.From), day(r.To), got, want)
		}
		// The census at each week's end, from census_weekly and census_days, as counted from the
		// enrollments' rows (seated on or before the week's last day in the range, not ended on
		// or before it).
		trends, err := st.Trends(ctx, store.Scope{All: true}, r)
		if err != nil {
			t.Fatal(err)
		}
		got2 := map[string]int{}
		for c, weeks := range trends {
			for m, in := range weeks {
				if in.Census != 0 {
					got2[c+" "+day(m)] = in.Census
				}
			}
		}
		rows, err := e.Pool.Query(context.Background(), `WITH weeks AS (
				SELECT w::date AS monday, least(w::date + 6, $2::date) AS last FROM generate_series(date_trunc('week', $1::date), $2::date, interval '1 week') w)
			SELECT e.clinic_id::text || ' ' || weeks.monday::text, count(*)::int FROM enrollments e LEFT JOIN clinics c ON c.clinic_id = e.clinic_id
				JOIN weeks ON (e.seated_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date <= weeks.last
			WHERE e.seated_at IS NOT NULL
				AND (e.ended_at IS NULL OR (e.ended_at AT TIME ZONE coalesce(nullif(c.time_zone, ''), 'UTC'))::date > weeks.last)
			GROUP BY 1`, r.From, r.To)
		if err != nil {
			t.Fatal(err)
		}
		want2 := map[string]int{}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			want2[k] = n
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		if !reflect.DeepEqual(got2, want2) {
			t.Errorf("%s to %s: census %v\ncounted from the enrollments %v", day(r.From), day(r.To), got2, want2)
		}
		// Attendance by status, per clinic (Inputs) and per clinic and week (Trends), from the
		// weekly and daily rollups, as counted from the attendance rows.
		inputs, err := st.Inputs(ctx, store.Scope{All: true}, r)
		if err != nil {
			t.Fatal(err)
		}
		gotA, wantA := map[string]int{}, map[string]int{}
		for c, in := range inputs {
			for status, n := range in.Attendance {
				gotA[c+" "+status] += n
			}
		}
		for c, weeks := range trends {
			for m, in := range weeks {
				for status, n := range in.Attendance {
					gotA[c+" "+day(m)+" "+status] += n
				}
			}
		}
		rows, err = e.Pool.Query(context.Background(), `SELECT clinic_id::text || ' ' || status, count(*)::int FROM attendance
				WHERE local_date BETWEEN $1 AND $2 GROUP BY 1
			UNION ALL
			SELECT clinic_id::text || ' ' || (local_date - (extract(isodow FROM local_date)::int - 1))::text || ' ' || status, count(*)::int
				FROM attendance WHERE local_date BETWEEN $1 AND $2 GROUP BY 1`, r.From, r.To)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			wantA[k] = n
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		if !reflect.DeepEqual(gotA, wantA) {
			t.Errorf("%s to %s: attendance %v\ncounted from the rows %v", day(r.From), day(r.To), gotA, wantA)
		}
	}
}
