package domain

import (
	"strings"
	"testing"
	"time"
)

func TestPlanFamilySessionsEveryTwoWeeks(t *testing.T) {
	chicago, err := LoadZone("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	date := func(s string) time.Time { d, _ := time.Parse(DateLayout, s); return d }
	utc := func(s string) time.Time { d, _ := time.Parse(time.RFC3339, s); return d }
	track := Track{ID: "t", Weekdays: []int{1, 3, 4}, Start: "18:00", End: "21:00", RoomID: "room"}
	therapist := Clinician{ID: "th", Role: ClinicianTherapist, Active: true, Availability: []Window{{2, "09:00", "12:00"}}}
	base := func() PlanInput {
		return PlanInput{Policy: DefaultSchedulePolicy, Zone: chicago, Track: track, Weeks: 6,
			StartDate: date("2026-03-02"), Today: date("2026-03-02"), Now: utc("2026-03-02T06:00:00Z"),
			Clinicians: []Clinician{therapist}}
	}
	family := func(p Plan) []string {
		var out []string
		for _, v := range p.Visits {
			if v.ServiceType == ServiceFamily {
				out = append(out, v.Date.Format(DateLayout)+" "+string(v.Start)+"-"+string(v.End)+" "+v.ClinicianID)
			}
		}
		return out
	}
	want := func(t *testing.T, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("family sessions %v, want %v", got, want)
		}
	}

	// Not consented: none.
	want(t, family(PlanSchedule(base())))

	// Consented: weeks 1, 3 and 5 (Tuesdays), 60 minutes, after the week's individual session.
	in := base()
	in.Family = true
	want(t, family(PlanSchedule(in)), "2026-03-03 10:00-11:00 th", "2026-03-17 10:00-11:00 th", "2026-03-31 10:00-11:00 th")

	// Until a revocation: only sessions starting before it.
	in.FamilyUntil = utc("2026-03-20T00:00:00Z")
	want(t, family(PlanSchedule(in)), "2026-03-03 10:00-11:00 th", "2026-03-17 10:00-11:00 th")

	// Family only (the rest is booked): nothing else planned, the patient's bookings avoided.
	in = base()
	in.FamilyOnly = true
	in.PatientBusy = []Interval{{utc("2026-03-03T15:00:00Z"), utc("2026-03-03T16:00:00Z")}} // 09:00-10:00 CST
	p := PlanSchedule(in)
	if len(p.Visits) != 3 {
		t.Fatalf("family-only plan: %d visits, want 3 family sessions", len(p.Visits))
	}
	want(t, family(p), "2026-03-03 10:00-11:00 th", "2026-03-17 09:00-10:00 th", "2026-03-31 09:00-10:00 th")

	// From today on (mid-program): the 2-week rhythm stays on program weeks 1, 3, 5.
	in.PatientBusy, in.Today, in.Now = nil, date("2026-03-10"), utc("2026-03-10T06:00:00Z")
	want(t, family(PlanSchedule(in)), "2026-03-17 09:00-10:00 th", "2026-03-31 09:00-10:00 th")
}

func TestFamilyConsent(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	c := FamilyConsent{NamedRecipients: true, EffectiveFrom: now.Add(-time.Hour)}
	if !c.Consented(now) || !c.FamilyUntil().IsZero() {
		t.Fatal("named recipients, not revoked: consented with no end")
	}
	c.RevokedAt = now.Add(time.Hour)
	if !c.Consented(now) || c.Consented(now.Add(2*time.Hour)) {
		t.Fatal("revocation ahead: consented until it takes effect")
	}
	c.ExpiresAt = now.Add(30 * time.Minute)
	if !c.FamilyUntil().Equal(now.Add(30 * time.Minute)) {
		t.Fatal("the earlier of expiry and revocation ends it")
	}
	c = FamilyConsent{EffectiveFrom: now.Add(-time.Hour)}
	if c.Consented(now) || c.FamilyUntil().IsZero() {
		t.Fatal("without named recipients: not consented")
	}
}
