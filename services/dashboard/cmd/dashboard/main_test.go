package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/dashboard/internal/projection"
	"github.com/trellis-health/trellis/services/dashboard/internal/store"
	"github.com/trellis-health/trellis/services/dashboard/internal/web"
)

var (
	clinicA = "0190a000-0000-7000-8000-00000000000a"
	clinicB = "0190a000-0000-7000-8000-00000000000b"
)

type env struct {
	*servicetest.Service
	t *testing.T
}

func start(t *testing.T) *env {
	t.Helper()
	var cfg Config
	s := servicetest.Start(t, newSpec(&cfg), &cfg, nil)
	systemScoped(t, s)
	return &env{Service: s, t: t}
}

var producers = map[string]string{"trellis.intake": "intake", "trellis.scheduling": "scheduling", "trellis.billing": "billing", "trellis.notification": "notification"}

// publish puts payload on subject as its producer's relay would, occurring at at, and returns
// the envelope (to publish it again: a redelivery).
func (e *env) publish(subject, clinicID string, at time.Time, payload proto.Message) *eventsv1.Envelope {
	e.t.Helper()
	parts := strings.SplitN(subject, ".", 3)
	envl := servicetest.Envelope(e.t, payload, clinicID, producers[parts[0]+"."+parts[1]])
	envl.OccurredAt = timestamppb.New(at)
	e.Publish(e.t, subject, envl.GetEventId(), envl, "")
	return envl
}

// redeliver publishes envl again under another message id, past JetStream's duplicate window:
// only the consumer's inbox can recognise it.
func (e *env) redeliver(subject string, envl *eventsv1.Envelope) {
	e.t.Helper()
	e.Publish(e.t, subject, "again-"+envl.GetEventId(), envl, "")
}

// settle waits until every dashboard consumer has handled everything on its stream.
func (e *env) settle() {
	e.t.Helper()
	for _, s := range projection.Streams {
		st, err := e.JS.Stream(context.Background(), s)
		if err != nil {
			e.t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if info.State.LastSeq > 0 {
			e.Settled(e.t, s, projection.ConsumerName(s), info.State.LastSeq)
		}
	}
}

func day(t time.Time) string { return t.Format(time.DateOnly) }

// client does not follow redirects; cookie is sent when not empty.
func (e *env) get(path, cookie string) (int, http.Header, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: web.CookieName, Value: cookie})
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, http.Header, string) {
	e.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// signIn uses the dev sign-in form and returns the session cookie.
func (e *env) signIn(role, clinics string) string {
	e.t.Helper()
	form := url.Values{"role": {role}, "clinics": {clinics}, "next": {"/billing"}}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, h, body := e.do(req)
	if code != http.StatusSeeOther || h.Get("Location") != "/billing" {
		e.t.Fatalf("sign in: %d %s %s", code, h.Get("Location"), body)
	}
	resp := http.Response{Header: h}
	for _, c := range resp.Cookies() {
		if c.Name == web.CookieName {
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				e.t.Errorf("session cookie: HttpOnly %v SameSite %v Path %q", c.HttpOnly, c.SameSite, c.Path)
			}
			return c.Value
		}
	}
	e.t.Fatal("no session cookie")
	return ""
}

func (e *env) json(path, cookie string, v any) {
	e.t.Helper()
	code, _, body := e.get(path, cookie)
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
}

func (e *env) page(path, cookie string) string {
	e.t.Helper()
	code, _, body := e.get(path, cookie)
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	wants := []string{`<html lang="en">`, "<header", "<nav", "<main"}
	if !strings.HasPrefix(path, "/signin") {
		wants = append(wants, "<caption", "<th scope=")
	}
	for _, want := range wants {
		if !strings.Contains(body, want) {
			e.t.Errorf("GET %s: no %s", path, want)
		}
	}
	if n := strings.Count(body, "<h1"); n != 1 {
		e.t.Errorf("GET %s: %d h1, want 1", path, n)
	}
	return body
}

// cells returns the text of the cells carrying attr inside the row of table id whose
// rowAttr is key: {"census": "3", ...}.
func cells(t *testing.T, page, table, rowAttr, key, attr string) map[string]string {
	t.Helper()
	tm := regexp.MustCompile(`(?s)<table id="` + regexp.QuoteMeta(table) + `">.*?</table>`).FindString(page)
	if tm == "" {
		t.Fatalf("no table#%s", table)
	}
	rm := regexp.MustCompile(`(?s)<tr ` + rowAttr + `="` + regexp.QuoteMeta(key) + `">.*?</tr>`).FindString(tm)
	if rm == "" {
		t.Fatalf("table#%s has no tr[%s=%q]", table, rowAttr, key)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`<t[dh][^>]* `+attr+`="([^"]+)"[^>]*>(.*?)</t[dh]>`).FindAllStringSubmatch(rm, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// network feeds a recorded sequence for clinic A (and a little for clinic B), with a
// redelivery and events out of order across and within streams.
type network struct {
	trackDay, trackEve, referral, e1, e2, e3, e4 string
}

func (e *env) feed(now time.Time) network {
	t := e.t
	t.Helper()
	n := network{trackDay: bus.NewID(), trackEve: bus.NewID(), referral: bus.NewID(), e1: bus.NewID(), e2: bus.NewID(), e3: bus.NewID(), e4: bus.NewID()}
	d := func(days int) time.Time { return now.AddDate(0, 0, -days) }
	patient := bus.NewID()

	// Intake: the status change overtakes the referral it is about; admitted 2 days after
	// first contact. Clinic A is named by scheduling only after intake's events.
	e.publish("trellis.intake.referral.status_changed.v1", clinicA, d(3), &intakev1.ReferralStatusChanged{
		ReferralId: n.referral, ClinicId: clinicA, From: intakev1.ReferralStatus_REFERRAL_STATUS_NEW,
		To: intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED, ChangedAt: timestamppb.New(d(3))})
	e.publish("trellis.intake.referral.received.v1", clinicA, d(4), &intakev1.ReferralReceived{
		ReferralId: n.referral, ClinicId: clinicA, FirstContactAt: timestamppb.New(d(4))})
	e.publish("trellis.intake.referral.received.v1", clinicA, d(4), &intakev1.ReferralReceived{
		ReferralId: bus.NewID(), ClinicId: clinicA, FirstContactAt: timestamppb.New(d(4))})
	e.publish("trellis.intake.patient.admitted.v1", clinicA, d(2), &intakev1.PatientAdmitted{
		PatientId: patient, EpisodeId: bus.NewID(), ClinicId: clinicA, StartDate: day(d(1)),
		AdmittedAt: timestamppb.New(d(2)), FirstContactAt: timestamppb.New(d(4)), ClinicTimeZone: "America/Chicago"})
	e.publish("trellis.intake.patient.discharged.v1", clinicA, d(1), &intakev1.PatientDischarged{
		PatientId: bus.NewID(), EpisodeId: bus.NewID(), ClinicId: clinicA, Reason: intakev1.DischargeReason_DISCHARGE_REASON_COMPLETED,
		StartDate: day(d(85)), DischargeDate: day(d(1))})
	e.publish("trellis.intake.patient.discharged.v1", clinicA, d(1), &intakev1.PatientDischarged{
		PatientId: bus.NewID(), EpisodeId: bus.NewID(), ClinicId: clinicA, Reason: intakev1.DischargeReason_DISCHARGE_REASON_DROPPED_OUT,
		StartDate: day(d(21)), DischargeDate: day(d(1))})

	// Scheduling.
	e.publish("trellis.scheduling.clinic.configured.v1", clinicA, d(30), &schedulingv1.ClinicConfigured{
		Clinic: &schedulingv1.Clinic{ClinicId: clinicA, Name: "Lakeview", TimeZone: "America/Chicago"}})
	e.publish("trellis.scheduling.clinic.configured.v1", clinicB, d(30), &schedulingv1.ClinicConfigured{
		Clinic: &schedulingv1.Clinic{ClinicId: clinicB, Name: "Riverside", TimeZone: "America/New_York"}})
	closed := false
	e.publish("trellis.scheduling.track.configured.v1", clinicA, d(30), &schedulingv1.TrackConfigured{Track: &schedulingv1.Track{
		TrackId: n.trackDay, ClinicId: clinicA, ProgramCode: "adult-iop", TrackCode: "adult-day", Capacity: 12}})
	e.publish("trellis.scheduling.track.configured.v1", clinicA, d(30), &schedulingv1.TrackConfigured{Track: &schedulingv1.Track{
		TrackId: n.trackEve, ClinicId: clinicA, ProgramCode: "adult-iop", TrackCode: "adult-evening", Capacity: 8, Active: &closed}})
	e.publish("trellis.scheduling.track.configured.v1", clinicB, d(30), &schedulingv1.TrackConfigured{Track: &schedulingv1.Track{
		TrackId: bus.NewID(), ClinicId: clinicB, ProgramCode: "adult-iop", TrackCode: "adult-day", Capacity: 10}})
	// e1: waitlisted, then a seat; e2: a seat; e3: a seat, then ended; e4: its end arrives first.
	e.publish("trellis.scheduling.enrollment.waitlisted.v1", clinicA, d(10), &schedulingv1.PatientWaitlisted{
		EnrollmentId: n.e1, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: n.trackDay, Position: 1})
	e.publish("trellis.scheduling.enrollment.created.v1", clinicA, d(9), &schedulingv1.EnrollmentCreated{
		EnrollmentId: n.e1, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: n.trackDay, StartDate: day(d(9)), FromWaitlist: true})
	e.publish("trellis.scheduling.enrollment.created.v1", clinicA, d(9), &schedulingv1.EnrollmentCreated{
		EnrollmentId: n.e2, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: n.trackDay, StartDate: day(d(9))})
	e.publish("trellis.scheduling.enrollment.created.v1", clinicA, d(9), &schedulingv1.EnrollmentCreated{
		EnrollmentId: n.e3, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: n.trackDay, StartDate: day(d(9))})
	e.publish("trellis.scheduling.enrollment.ended.v1", clinicA, d(1), &schedulingv1.EnrollmentEnded{
		EnrollmentId: n.e3, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: n.trackDay, Reason: "discharged"})
	e.publish("trellis.scheduling.enrollment.ended.v1", clinicA, d(1), &schedulingv1.EnrollmentEnded{
		EnrollmentId: n.e4, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: n.trackDay, Reason: "switched"})
	e.publish("trellis.scheduling.enrollment.created.v1", clinicA, d(9), &schedulingv1.EnrollmentCreated{
		EnrollmentId: n.e4, PatientId: bus.NewID(), ClinicId: clinicA, TrackId: n.trackDay, StartDate: day(d(9))})
	e.publish("trellis.scheduling.enrollment.waitlisted.v1", clinicA, d(2), &schedulingv1.PatientWaitlisted{
		EnrollmentId: bus.NewID(), PatientId: bus.NewID(), ClinicId: clinicA, TrackId: n.trackDay, Position: 1})
	e.publish("trellis.scheduling.enrollment.created.v1", clinicB, d(9), &schedulingv1.EnrollmentCreated{
		EnrollmentId: bus.NewID(), PatientId: bus.NewID(), ClinicId: clinicB, StartDate: day(d(9))})

	att := func(appt string, v int32, st schedulingv1.AttendanceStatus, minutes int32, days int) *schedulingv1.AttendanceRecorded {
		return &schedulingv1.AttendanceRecorded{AppointmentId: appt, PatientId: bus.NewID(), ClinicId: clinicA, EnrollmentId: n.e1,
			TrackId: n.trackDay, LocalDate: day(d(days)), Status: st, MinutesAttended: minutes, ScheduledMinutes: 180, Version: v}
	}
	a1, a2 := bus.NewID(), bus.NewID()
	// The correction (v2: present) arrives before the first record (v1: absent).
	e.publish("trellis.scheduling.attendance.corrected.v1", clinicA, d(3), att(a1, 2, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT, 180, 5))
	e.publish("trellis.scheduling.attendance.recorded.v1", clinicA, d(5), att(a1, 1, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT, 0, 5))
	absent := e.publish("trellis.scheduling.attendance.recorded.v1", clinicA, d(4), att(a2, 1, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT, 0, 4))
	e.publish("trellis.scheduling.attendance.recorded.v1", clinicA, d(4), att(bus.NewID(), 1, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED, 0, 4))
	e.publish("trellis.scheduling.attendance.recorded.v1", clinicA, d(4), att(bus.NewID(), 1, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE, 150, 4))
	e.publish("trellis.scheduling.attendance.recorded.v1", clinicA, d(60), att(bus.NewID(), 1, schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT, 0, 60)) // before the range
	e.redeliver("trellis.scheduling.attendance.recorded.v1", absent)

	// Risk: e2's episode clears before its start arrives; e1 is at risk.
	since := d(6).Truncate(time.Second)
	e.publish("trellis.scheduling.patient.risk_cleared.v1", clinicA, d(1), &schedulingv1.PatientRiskCleared{
		PatientId: bus.NewID(), EnrollmentId: n.e2, ClinicId: clinicA, AtRiskSince: timestamppb.New(since), ClearedAt: timestamppb.New(d(1))})
	e.publish("trellis.scheduling.patient.at_risk.v1", clinicA, since, &schedulingv1.PatientAtRisk{
		PatientId: bus.NewID(), EnrollmentId: n.e2, ClinicId: clinicA, Since: timestamppb.New(since),
		Reasons: []schedulingv1.RiskReason{schedulingv1.RiskReason_RISK_REASON_CONSECUTIVE_ABSENCES}})
	e.publish("trellis.scheduling.patient.at_risk.v1", clinicA, since, &schedulingv1.PatientAtRisk{
		PatientId: bus.NewID(), EnrollmentId: n.e1, ClinicId: clinicA, Since: timestamppb.New(since),
		Reasons: []schedulingv1.RiskReason{schedulingv1.RiskReason_RISK_REASON_CONSECUTIVE_ABSENCES, schedulingv1.RiskReason_RISK_REASON_UNDER_WEEKLY_MINIMUM}})
	e.publish("trellis.scheduling.program.completed.v1", clinicA, d(1), &schedulingv1.ProgramCompleted{
		PatientId: bus.NewID(), EnrollmentId: bus.NewID(), ClinicId: clinicA, ProgramCode: "adult-iop", CompletedOn: day(d(1)), Weeks: 12, WeeksMeetingMinimum: 10})

	// Billing: a charge paid; one held; one voided; claims, one decided before it was submitted.
	charge := func(id, status, hold string, cents int64) *billingv1.ChargeCreated {
		return &billingv1.ChargeCreated{Charge: &billingv1.Charge{ChargeId: id, ClinicId: clinicA, PatientId: bus.NewID(), PayerId: "medicaid-il",
			ServiceDate: day(d(5)), AmountCents: cents, Status: billingv1.ChargeStatus(billingv1.ChargeStatus_value["CHARGE_STATUS_"+status]), HoldReason: hold}}
	}
	c1 := bus.NewID()
	e.publish("trellis.billing.charge.created.v1", clinicA, d(5), charge(c1, "READY", "", 45000))
	e.publish("trellis.billing.charge.status_changed.v1", clinicA, d(4), &billingv1.ChargeStatusChanged{ChargeId: c1, ClinicId: clinicA,
		From: billingv1.ChargeStatus_CHARGE_STATUS_READY, To: billingv1.ChargeStatus_CHARGE_STATUS_SUBMITTED, ChangedAt: timestamppb.New(d(4))})
	e.publish("trellis.billing.charge.created.v1", clinicA, d(5), charge(bus.NewID(), "HELD", "authorization: exhausted", 12345))
	e.publish("trellis.billing.charge.created.v1", clinicA, d(5), charge(bus.NewID(), "HELD", "consent", 100))
	e.publish("trellis.billing.charge.created.v1", clinicA, d(5), charge(bus.NewID(), "VOID", "", 99999))
	k1, k3 := bus.NewID(), bus.NewID()
	e.publish("trellis.billing.claim.submitted.v1", clinicA, d(4), &billingv1.ClaimSubmitted{ClaimId: k1, ClinicId: clinicA, PatientId: bus.NewID(),
		PayerId: "medicaid-il", TotalCents: 45000, SubmittedAt: timestamppb.New(d(4)), FileId: bus.NewID()})
	e.publish("trellis.billing.claim.adjudicated.v1", clinicA, d(2), &billingv1.ClaimAdjudicated{ClaimId: k1, ClinicId: clinicA, PatientId: bus.NewID(),
		PayerId: "medicaid-il", Status: billingv1.ClaimStatus_CLAIM_STATUS_PAID, ChargedCents: 45000, PaidCents: 40000})
	e.publish("trellis.billing.claim.submitted.v1", clinicA, d(45), &billingv1.ClaimSubmitted{ClaimId: bus.NewID(), ClinicId: clinicA, PatientId: bus.NewID(),
		PayerId: "bcbs-il", TotalCents: 20000, SubmittedAt: timestamppb.New(d(45)), FileId: bus.NewID()})
	e.publish("trellis.billing.claim.adjudicated.v1", clinicA, d(1), &billingv1.ClaimAdjudicated{ClaimId: k3, ClinicId: clinicA, PatientId: bus.NewID(),
		PayerId: "aetna", Status: billingv1.ClaimStatus_CLAIM_STATUS_DENIED, ChargedCents: 7500})
	e.publish("trellis.billing.claim.submitted.v1", clinicA, d(3), &billingv1.ClaimSubmitted{ClaimId: k3, ClinicId: clinicA, PatientId: bus.NewID(),
		PayerId: "aetna", TotalCents: 7500, SubmittedAt: timestamppb.New(d(3)), FileId: bus.NewID()})
	e.settle()
	return n
}

func TestProjectionsConvergeAndPagesShowThem(t *testing.T) {
	e := start(t)
	now := time.Now().UTC()
	n := e.feed(now)

	// The projections.
	var status string
	var firstContact *time.Time
	if err := e.Pool.QueryRow(context.Background(), `SELECT status, first_contact_at FROM referrals WHERE referral_id = $1`, n.referral).Scan(&status, &firstContact); err != nil {
		t.Fatal(err)
	}
	if status != "contacted" || firstContact == nil {
		t.Errorf("referral: status %q, first contact %v; want contacted with a first contact", status, firstContact)
	}
	for id, want := range map[string]string{n.e1: "active", n.e2: "active", n.e3: "ended", n.e4: "ended"} {
		if err := e.Pool.QueryRow(context.Background(), `SELECT status FROM enrollments WHERE enrollment_id = $1`, id).Scan(&status); err != nil || status != want {
			t.Errorf("enrollment: %q, %v; want %s", status, err, want)
		}
	}
	if got := e.Count(t, `SELECT count(*) FROM attendance WHERE status = 'present' AND version = 2`); got != 1 {
		t.Errorf("the older attendance version overwrote the newer one (%d present v2)", got)
	}
	if got := e.Processed(t, "dashboard--scheduling", "duplicate"); got < 1 {
		t.Errorf("the redelivered event was not recognised as a duplicate (%v)", got)
	}
	if got := e.Count(t, `SELECT count(*) FROM risks WHERE cleared_at IS NULL`); got != 1 {
		t.Errorf("%d open risks, want 1 (e2's cleared before it started)", got)
	}

	cookie := e.signIn("admin", "*")
	rng := "?from=" + day(now.AddDate(0, 0, -27)) + "&to=" + day(now)

	// Overview: the JSON figures, and the page showing the same.
	var o web.Overview
	e.json("/api/overview.json"+rng, cookie, &o)
	var a web.KPIRow
	for _, c := range o.Clinics {
		if c.ClinicID == clinicA {
			a = c
		}
	}
	want := map[string]string{"census": "2", "capacity": "12", "attendance_rate": "66.7%", "no_show_rate": "33.3%",
		"meeting_minimum": "—", "days_to_admission": "2.0", "completion_rate": "50.0%", "median_length_of_stay": "52.0"}
	for k, v := range want {
		if a.KPIs[k] != v {
			t.Errorf("clinic A %s = %q, want %q", k, a.KPIs[k], v)
		}
	}
	if len(o.Clinics) != 2 || o.Total.KPIs["census"] != "3" || o.Total.KPIs["capacity"] != "22" {
		t.Errorf("overview: %d clinics, total census %s capacity %s; want 2, 3, 22", len(o.Clinics), o.Total.KPIs["census"], o.Total.KPIs["capacity"])
	}
	page := e.page("/overview"+rng, cookie)
	for _, r := range append(o.Clinics, o.Total) {
		got := cells(t, page, "network", "data-clinic-id", r.ClinicID, "data-kpi")
		for k, v := range r.KPIs {
			if got[k] != v {
				t.Errorf("overview row %s %s shows %q, JSON %q", r.ClinicID, k, got[k], v)
			}
		}
	}
	if !strings.Contains(page, `<svg id="attendance-chart"`) || !strings.Contains(page, "<title id=\"attendance-chart-title\">") {
		t.Error("overview has no attendance chart")
	}
	if code, _, _ := e.get("/overview", cookie); code != http.StatusOK {
		t.Errorf("overview with the default range: %d", code)
	}

	// Clinic page.
	var cp web.ClinicPage
	e.json("/api/clinics/"+clinicA+".json"+rng, cookie, &cp)
	page = e.page("/clinics/"+clinicA+rng, cookie)
	if len(cp.Tracks) != 2 {
		t.Fatalf("tracks: %+v", cp.Tracks)
	}
	for _, tr := range cp.Tracks {
		got := cells(t, page, "tracks", "data-track-id", tr.ID, "data-field")
		if got["capacity"] != fmt.Sprint(tr.Capacity) || got["active"] != fmt.Sprint(tr.Active) || got["waitlisted"] != fmt.Sprint(tr.Waitlisted) {
			t.Errorf("track %s shows %v, JSON %+v", tr.Code, got, tr)
		}
		if tr.ID == n.trackDay && (tr.Active != 2 || tr.Waitlisted != 1 || tr.Capacity != 12) {
			t.Errorf("day track: %+v, want 2 active, 1 waitlisted, 12 seats", tr)
		}
	}
	if len(cp.AtRisk) != 1 || cp.AtRisk[0].EnrollmentID != n.e1 || cp.AtRisk[0].ReasonsText != "consecutive absences, under weekly minimum" {
		t.Errorf("at risk: %+v", cp.AtRisk)
	} else if got := cells(t, page, "at-risk", "data-enrollment-id", n.e1, "data-field"); got["reasons"] != cp.AtRisk[0].ReasonsText {
		t.Errorf("at-risk row shows %v", got)
	}
	for _, f := range cp.Funnel {
		if got := cells(t, page, "funnel", "data-status", f.Status, "data-field"); got["count"] != fmt.Sprint(f.Count) {
			t.Errorf("funnel %s shows %v, JSON %d", f.Status, got, f.Count)
		}
		if w := map[string]int{"new": 1, "contacted": 1}[f.Status]; f.Count != w {
			t.Errorf("funnel %s = %d, want %d", f.Status, f.Count, w)
		}
	}

	// Billing.
	var b web.Billing
	e.json("/api/billing.json"+rng, cookie, &b)
	wantFlow := map[string]string{"charges": "$574.45", "claims_submitted": "$525.00", "paid": "$400.00", "denied": "$75.00"}
	page = e.page("/billing"+rng, cookie)
	for k, v := range wantFlow {
		if b.Flow[k] != v {
			t.Errorf("flow %s = %q, want %q", k, b.Flow[k], v)
		}
		if got := cells(t, page, "flow", "data-stage", k, "data-kpi"); got[k] != v {
			t.Errorf("flow %s shows %q, want %q", k, got[k], v)
		}
	}
	if len(b.Aging) != 1 || b.Aging[0].PayerID != "bcbs-il" || b.Aging[0].Shown["31-60"] != "$200.00" {
		t.Errorf("aging: %+v", b.Aging)
	} else if got := cells(t, page, "aging", "data-payer-id", "bcbs-il", "data-bucket"); got["31-60"] != "$200.00" || got["total"] != "$200.00" || got["0-30"] != "$0.00" {
		t.Errorf("aging row shows %v", got)
	}
	if len(b.Holds) != 2 {
		t.Errorf("holds: %+v", b.Holds)
	}
	for _, h := range b.Holds {
		if got := cells(t, page, "holds", "data-reason", h.Reason, "data-field"); got["count"] != "1" || (h.Reason != "authorization" && h.Reason != "consent") {
			t.Errorf("hold %q shows %v", h.Reason, got)
		}
	}
	if !strings.Contains(page, `<svg id="flow-chart"`) {
		t.Error("billing has no flow chart")
	}

	// Event health.
	page = e.page("/health", cookie)
	got := cells(t, page, "events", "data-stream", "SCHEDULING", "data-field")
	if got["events"] != fmt.Sprint(e.Count(t, `SELECT count(*) FROM inbox WHERE consumer = 'dashboard--scheduling'`)) || got["events"] == "0" || got["pending"] != "0" {
		t.Errorf("health SCHEDULING row: %v", got)
	}
}

func TestSignInAndClinicScoping(t *testing.T) {
	e := start(t)
	now := time.Now().UTC()
	e.feed(now)

	// Without a session every page sends to the sign-in, and the API says 401.
	for _, p := range []string{"/overview", "/clinics/" + clinicA, "/billing", "/health"} {
		code, h, _ := e.get(p, "")
		if code != http.StatusSeeOther || h.Get("Location") != "/signin?next="+url.QueryEscape(p) {
			t.Errorf("GET %s signed out: %d to %q", p, code, h.Get("Location"))
		}
	}
	if code, _, _ := e.get("/api/overview.json", ""); code != http.StatusUnauthorized {
		t.Errorf("API signed out: %d", code)
	}
	if code, _, _ := e.get("/overview", "not-a-token"); code != http.StatusSeeOther {
		t.Errorf("a forged session: %d", code)
	}
	// A valid token for a role the dashboard does not serve is no session either.
	clinician := e.Token(t, "c1", []string{"clinician"}, []string{"*"})
	if code, _, _ := e.get("/overview", clinician); code != http.StatusSeeOther {
		t.Errorf("a clinician's session: %d", code)
	}
	form := e.page("/signin?next=/health", "")
	for _, want := range []string{`id="signin"`, `<label for="role">`, `<label for="clinics">`, `value="/health"`} {
		if !strings.Contains(form, want) {
			t.Errorf("sign-in form lacks %s", want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/signin", strings.NewReader("role=operator&clinics=nope"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, _, body := e.do(req); code != http.StatusBadRequest || !strings.Contains(body, `role="alert"`) {
		t.Errorf("bad clinics: %d", code)
	}

	// An operator of clinic A sees A only: B's pages are 404, as is an unknown clinic.
	cookie := e.signIn("operator", clinicA)
	var o web.Overview
	e.json("/api/overview.json", cookie, &o)
	if len(o.Clinics) != 1 || o.Clinics[0].ClinicID != clinicA || o.Total.KPIs["census"] != "2" {
		t.Errorf("operator of A sees %+v (total %v)", o.Clinics, o.Total.KPIs)
	}
	page := e.page("/overview", cookie)
	if strings.Contains(page, clinicB) || strings.Contains(page, "Riverside") {
		t.Error("the overview names a clinic the user may not see")
	}
	for _, p := range []string{"/clinics/" + clinicB, "/api/clinics/" + clinicB + ".json", "/clinics/" + bus.NewID(), "/clinics/not-a-uuid"} {
		if code, _, body := e.get(p, cookie); code != http.StatusNotFound || strings.Contains(body, "Riverside") {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
	e.page("/clinics/"+clinicA, cookie)
	var b web.Billing
	e.json("/api/billing.json", cookie, &b)
	if b.Flow["charges"] != "$574.45" {
		t.Errorf("billing for A: %v", b.Flow)
	}
	if code, _, _ := e.get("/overview?from=2026-13-01", cookie); code != http.StatusBadRequest {
		t.Errorf("a bad date: %d", code)
	}

	// Sign out is a POST with the session's CSRF token (issue 10, finding 11): a link, or a
	// form on another site, signs nobody out.
	if code, h, _ := e.get("/signout", cookie); code != http.StatusMethodNotAllowed || h.Get("Set-Cookie") != "" {
		t.Errorf("GET /signout: %d %q, want 405 and no cookie change", code, h.Get("Set-Cookie"))
	}
	for _, form := range []url.Values{nil, {"csrf": {"forged"}}, {"csrf": {csrfFor("another-session")}}} {
		if code, h, _ := e.post("/signout", cookie, form); code != http.StatusForbidden || h.Get("Set-Cookie") != "" {
			t.Errorf("POST /signout with %v: %d %q, want 403 and no cookie change", form, code, h.Get("Set-Cookie"))
		}
	}
	// Sign out clears the session cookie (and the issuer's token, kept after an OIDC sign-in):
	// the page's sign-out form carries the token.
	page = e.page("/overview", cookie)
	if !strings.Contains(page, `<form class="inline signout" method="post" action="/signout">`) {
		t.Errorf("no sign-out form on the page")
	}
	code, h, _ := e.post("/signout", cookie, url.Values{"csrf": {csrfOf(t, page)}})
	resp := http.Response{Header: h}
	cleared := map[string]bool{}
	for _, c := range resp.Cookies() {
		cleared[c.Name] = c.MaxAge < 0
	}
	if code != http.StatusSeeOther || len(cleared) != 2 || !cleared[web.CookieName] || !cleared[web.UpstreamCookieName] {
		t.Errorf("sign out: %d %v", code, resp.Cookies())
	}
}

// The projections are rebuilt from the streams: `dashboard rebuild` empties them, the running
// service replays every stream and ends with the same figures.
func TestRebuildReplaysTheStreams(t *testing.T) {
	e := start(t)
	now := time.Now().UTC()
	e.feed(now)
	cookie := e.signIn("admin", "*")
	var before, after web.Overview
	var billBefore, billAfter web.Billing
	e.json("/api/overview.json", cookie, &before)
	e.json("/api/billing.json", cookie, &billBefore)

	cfg := Config{}
	cfg.NATSURL = e.NATS.URL
	if err := rebuild(context.Background(), &cfg, &service.Platform{Pool: e.Pool, Store: serviceStore(t, e.Service), Log: e.Log}); err != nil {
		t.Fatal(err)
	}
	if n := e.Count(t, `SELECT count(*) FROM attendance`); n != 0 {
		// The replay may already have begun; what matters is where it ends.
		t.Logf("%d attendance rows right after the rebuild", n)
	}
	e.settle()
	e.json("/api/overview.json", cookie, &after)
	e.json("/api/billing.json", cookie, &billAfter)
	if !reflect.DeepEqual(before, after) || !reflect.DeepEqual(billBefore, billAfter) {
		t.Errorf("after the rebuild:\n%+v\n%+v\nbefore:\n%+v\n%+v", after, billAfter, before, billBefore)
	}
}

// Today's sessions come from the appointment events (one arriving before the one it follows,
// one redelivered) joined with attendance, for the clinic's local today; `dashboard rebuild`
// empties them and the replay brings them back.
func TestTodaysSessions(t *testing.T) {
	e := start(t)
	now := time.Now().UTC()
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	today := now.In(chicago)
	e.publish("trellis.scheduling.clinic.configured.v1", clinicA, now.AddDate(0, 0, -30), &schedulingv1.ClinicConfigured{
		Clinic: &schedulingv1.Clinic{ClinicId: clinicA, Name: "Lakeview", TimeZone: "America/Chicago"}})
	group := bus.NewID()
	appt := func(id, session string, st schedulingv1.ServiceType, local time.Time, start, end string) *schedulingv1.Appointment {
		return &schedulingv1.Appointment{AppointmentId: id, PatientId: bus.NewID(), ClinicId: clinicA, ServiceType: st,
			SessionId: session, LocalDate: day(local), StartTime: start, EndTime: end, Status: schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_SCHEDULED}
	}
	scheduled := func(a *schedulingv1.Appointment, at time.Time) *eventsv1.Envelope {
		return e.publish("trellis.scheduling.appointment.scheduled.v1", clinicA, at,
			&schedulingv1.AppointmentScheduled{Appointment: a, ClinicTimeZone: "America/Chicago"})
	}
	rescheduled := func(a *schedulingv1.Appointment, at time.Time) {
		e.publish("trellis.scheduling.appointment.rescheduled.v1", clinicA, at,
			&schedulingv1.AppointmentRescheduled{Appointment: a, ClinicTimeZone: "America/Chicago"})
	}
	attended := func(id string, st schedulingv1.AttendanceStatus) {
		e.publish("trellis.scheduling.attendance.recorded.v1", clinicA, now, &schedulingv1.AttendanceRecorded{AppointmentId: id,
			PatientId: bus.NewID(), ClinicId: clinicA, LocalDate: day(today), Status: st, ScheduledMinutes: 180, Version: 1})
	}
	t0 := now.Add(-48 * time.Hour)
	// The evening group: four places, one present, one absent, one not recorded, one cancelled.
	g := []string{bus.NewID(), bus.NewID(), bus.NewID(), bus.NewID()}
	var first *eventsv1.Envelope
	for i, id := range g {
		envl := scheduled(appt(id, group, schedulingv1.ServiceType_SERVICE_TYPE_GROUP, today, "18:00", "21:00"), t0)
		if i == 0 {
			first = envl
		}
	}
	attended(g[0], schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT)
	attended(g[1], schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT)
	cancelled := appt(g[3], group, schedulingv1.ServiceType_SERVICE_TYPE_GROUP, today, "18:00", "21:00")
	cancelled.Status = schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_CANCELLED
	e.publish("trellis.scheduling.appointment.cancelled.v1", clinicA, t0.Add(time.Hour),
		&schedulingv1.AppointmentCancelled{Appointment: cancelled, ReasonCode: "patient"})
	e.redeliver("trellis.scheduling.appointment.scheduled.v1", first)
	// An individual visit moved from tomorrow to today 09:00: the reschedule arrives first.
	i1 := bus.NewID()
	rescheduled(appt(i1, "", schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL, today, "09:00", "10:00"), t0.Add(time.Hour))
	scheduled(appt(i1, "", schedulingv1.ServiceType_SERVICE_TYPE_INDIVIDUAL, today.AddDate(0, 0, 1), "10:00", "11:00"), t0)
	// A medication visit moved from today to tomorrow, in order; one yesterday, one tomorrow.
	i2 := bus.NewID()
	scheduled(appt(i2, "", schedulingv1.ServiceType_SERVICE_TYPE_MEDICATION_MANAGEMENT, today, "13:00", "13:30"), t0)
	rescheduled(appt(i2, "", schedulingv1.ServiceType_SERVICE_TYPE_MEDICATION_MANAGEMENT, today.AddDate(0, 0, 1), "13:00", "13:30"), t0.Add(time.Hour))
	scheduled(appt(bus.NewID(), "", schedulingv1.ServiceType_SERVICE_TYPE_FAMILY, today.AddDate(0, 0, -1), "11:00", "12:00"), t0)
	scheduled(appt(bus.NewID(), "", schedulingv1.ServiceType_SERVICE_TYPE_FAMILY, today.AddDate(0, 0, 1), "11:00", "12:00"), t0)
	e.settle()
	if got := e.Processed(t, "dashboard--scheduling", "duplicate"); got < 1 {
		t.Errorf("the redelivered appointment was not recognised as a duplicate (%v)", got)
	}

	cookie := e.signIn("operator", clinicA)
	want := []web.SessionRow{
		{Session: store.Session{ID: i1, ServiceType: "individual", StartTime: "09:00", EndTime: "10:00", Scheduled: 1, NotRecorded: 1},
			Time: "09:00-10:00", ServiceTypeText: "individual"},
		{Session: store.Session{ID: group, ServiceType: "group", StartTime: "18:00", EndTime: "21:00", Scheduled: 3, Attended: 1, Absent: 1, NotRecorded: 1},
			Time: "18:00-21:00", ServiceTypeText: "group"},
	}
	check := func(when string) {
		t.Helper()
		var cp web.ClinicPage
		e.json("/api/clinics/"+clinicA+".json", cookie, &cp)
		if cp.Today != day(today) || cp.TimeZone != "America/Chicago" || !reflect.DeepEqual(cp.Sessions, want) {
			t.Fatalf("%s: today %s in %s, sessions %+v; want %s, %+v", when, cp.Today, cp.TimeZone, cp.Sessions, day(today), want)
		}
		page := e.page("/clinics/"+clinicA, cookie)
		for _, s := range want {
			got := cells(t, page, "sessions", "data-session-id", s.ID, "data-field")
			w := map[string]string{"time": s.Time, "service_type": s.ServiceTypeText, "scheduled": fmt.Sprint(s.Scheduled),
				"attended": fmt.Sprint(s.Attended), "absent": fmt.Sprint(s.Absent), "not_recorded": fmt.Sprint(s.NotRecorded)}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("%s: session %s shows %v, want %v", when, s.ID, got, w)
			}
		}
		if n := strings.Count(regexp.MustCompile(`(?s)<table id="sessions">.*?</table>`).FindString(page), "<tr data-session-id="); n != len(want) {
			t.Errorf("%s: %d session rows, want %d", when, n, len(want))
		}
	}
	check("projected")

	cfg := Config{}
	cfg.NATSURL = e.NATS.URL
	if err := rebuild(context.Background(), &cfg, &service.Platform{Pool: e.Pool, Store: serviceStore(t, e.Service), Log: e.Log}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	check("rebuilt")
}

// The health page counts the DEADLETTER stream's messages per consumer, from the stream's state.
func TestHealthCountsDeadLetters(t *testing.T) {
	e := start(t)
	cookie := e.signIn("operator", "*")
	var h web.Health
	e.json("/api/health.json", cookie, &h)
	if len(h.DeadLetters) != 0 || h.DeadLettersError != "" {
		t.Errorf("dead letters before any: %+v %q", h.DeadLetters, h.DeadLettersError)
	}
	if !strings.Contains(e.page("/health", cookie), "No dead letters.") {
		t.Error("the health page does not say there are no dead letters")
	}
	if _, err := e.JS.Publish(context.Background(), bus.DeadLetterSubject("some--consumer"), []byte("not read")); err != nil {
		t.Fatal(err)
	}
	e.json("/api/health.json", cookie, &h)
	if want := []web.DeadLetterRow{{Consumer: "some--consumer", Count: 1, CountText: "1"}}; !reflect.DeepEqual(h.DeadLetters, want) || len(h.Streams) != 4 {
		t.Errorf("dead letters: %+v, want %+v (streams %d)", h.DeadLetters, want, len(h.Streams))
	}
	if got := cells(t, e.page("/health", cookie), "dead-letters", "data-consumer", "some--consumer", "data-field"); got["count"] != "1" {
		t.Errorf("dead-letters row shows %v", got)
	}
	// The newest dead letters are listed with where they came from, why, and how to replay
	// them; their content never is.
	dl := nats.NewMsg(bus.DeadLetterSubject("billing--attendance"))
	dl.Data = []byte("patient payload must not show")
	for k, v := range map[string]string{bus.HeaderDLConsumer: "billing--attendance", bus.HeaderDLReason: "clinic is not known",
		bus.HeaderDLSubject: "trellis.scheduling.attendance.recorded.v1", bus.HeaderDLDeliveries: "3"} {
		dl.Header.Set(k, v)
	}
	if _, err := e.JS.PublishMsg(context.Background(), dl); err != nil {
		t.Fatal(err)
	}
	e.json("/api/health.json", cookie, &h)
	if len(h.Recent) != 2 || h.Recent[0].Consumer != "billing--attendance" || h.Recent[0].Reason != "clinic is not known" ||
		h.Recent[0].Attempts != 3 || h.Recent[0].Replay != fmt.Sprintf("billing deadletters replay %d", h.Recent[0].Seq) ||
		h.Recent[1].Consumer != "" || h.Recent[1].Replay != "" {
		t.Errorf("recent dead letters: %+v", h.Recent)
	}
	page := e.page("/health", cookie)
	got := cells(t, page, "dead-letter-list", "data-seq", strconv.FormatUint(h.Recent[0].Seq, 10), "data-field")
	if got["reason"] != "clinic is not known" || got["subject"] != "trellis.scheduling.attendance.recorded.v1" ||
		!strings.Contains(got["replay"], "billing deadletters replay") {
		t.Errorf("dead-letter-list row shows %v", got)
	}
	if strings.Contains(page, "patient payload") {
		t.Error("the health page shows a dead letter's content")
	}
	// Dead letters come from every clinic's events: a user of some clinics sees the streams'
	// health and no dead letter, counts or reasons (issue 10, finding 7).
	for _, clinics := range []string{clinicA, clinicA + "," + clinicB} {
		scoped := e.signIn("operator", clinics)
		var hs web.Health
		e.json("/api/health.json", scoped, &hs)
		if !hs.DeadLettersHidden || hs.DeadLetters != nil || hs.Recent != nil || len(hs.Streams) != 4 {
			t.Errorf("health JSON for clinics %s: %+v", clinics, hs)
		}
		code, _, body := e.get("/api/health.json", scoped)
		page := e.page("/health", scoped)
		for _, leak := range []string{"billing--attendance", "some--consumer", "clinic is not known", "deadletters replay"} {
			if strings.Contains(body, leak) || strings.Contains(page, leak) {
				t.Errorf("clinics %s: the health page or JSON (%d) shows %q", clinics, code, leak)
			}
		}
		if !strings.Contains(page, `id="dead-letters-hidden"`) || !strings.Contains(page, `<table id="events">`) {
			t.Errorf("clinics %s: the health page does not say why dead letters are not shown, or lacks the streams", clinics)
		}
	}
}
