package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	notificationv1 "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/services/notification/internal/smtptest"
)

const trZone = "America/Chicago"

// trRow is a message as the triggers queued it.
type trRow struct {
	key, kind, channel, audience, team, status, reason, subjectRef string
	patientID                                                      *string
	dueAt                                                          time.Time
	expiresAt                                                      *time.Time
	payload                                                        map[string]string
}

// trMessages returns the messages whose dedupe key starts with prefix, by key.
func (e *env) trMessages(prefix string) []trRow {
	e.t.Helper()
	rows, err := e.Pool.Query(context.Background(), `
		SELECT dedupe_key, kind, channel, audience, team, status, status_reason, subject_ref, patient_id::text,
			due_at, expires_at, payload
		FROM messages WHERE starts_with(dedupe_key, $1) ORDER BY due_at, dedupe_key`, prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []trRow
	for rows.Next() {
		var r trRow
		var raw []byte
		if err := rows.Scan(&r.key, &r.kind, &r.channel, &r.audience, &r.team, &r.status, &r.reason, &r.subjectRef,
			&r.patientID, &r.dueAt, &r.expiresAt, &raw); err != nil {
			e.t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &r.payload); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// trStatuses counts the messages with the key prefix by status.
func (e *env) trStatuses(prefix string) map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, r := range e.trMessages(prefix) {
		out[r.status]++
	}
	return out
}

// trPublish publishes payload on subject (a fresh event id) and waits until consumer settled it.
func (e *env) trPublish(stream, consumer, subject, producer, clinicID string, at time.Time, payload proto.Message) {
	e.t.Helper()
	e.trPublishID(stream, consumer, subject, producer, clinicID, bus.NewID(), at, payload)
}

func (e *env) trPublishID(stream, consumer, subject, producer, clinicID, eventID string, at time.Time, payload proto.Message) {
	e.t.Helper()
	seq := e.publishAt(at, subject, producer, clinicID, eventID, bus.NewID(), "", payload)
	e.Settled(e.t, stream, "notification--"+consumer, seq)
}

// trSession is 18:00 clinic time on the day days from now.
func trSession(t *testing.T, days int) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(trZone)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Now().In(loc).AddDate(0, 0, days)
	return time.Date(d.Year(), d.Month(), d.Day(), 18, 0, 0, 0, loc)
}

func trAppointment(id, patientID, clinicID string, start time.Time) *schedulingv1.Appointment {
	return &schedulingv1.Appointment{AppointmentId: id, PatientId: patientID, ClinicId: clinicID,
		LocalDate: start.Format(time.DateOnly), StartTime: start.Format("15:04"), EndTime: start.Add(3 * time.Hour).Format("15:04"),
		StartsAt: timestamppb.New(start), EndsAt: timestamppb.New(start.Add(3 * time.Hour)),
		Status: schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_SCHEDULED}
}

func (e *env) trScheduled(a *schedulingv1.Appointment, at time.Time) {
	e.t.Helper()
	e.trPublish("SCHEDULING", "appointments", "trellis.scheduling.appointment.scheduled.v1", "scheduling", a.GetClinicId(), at,
		&schedulingv1.AppointmentScheduled{Appointment: a, ClinicTimeZone: trZone})
}

func trWant(t *testing.T, rows []trRow, n int, what string) {
	t.Helper()
	if len(rows) != n {
		t.Fatalf("%s: %d messages, want %d: %+v", what, len(rows), n, rows)
	}
}

func TestTriggersAppointmentReminders(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	patientID, apptID := bus.NewID(), bus.NewID()
	start1 := trSession(t, 10)
	appt := trAppointment(apptID, patientID, clinicA, start1)

	// Scheduled: one reminder per default offset, due 24 h and 2 h before, expiring at the start.
	eventID := bus.NewID()
	e.trPublishID("SCHEDULING", "appointments", "trellis.scheduling.appointment.scheduled.v1", "scheduling", clinicA, eventID,
		time.Now(), &schedulingv1.AppointmentScheduled{Appointment: appt, ClinicTimeZone: trZone})
	rs := e.trMessages("reminder:" + apptID + ":")
	trWant(t, rs, 2, "scheduled")
	for i, off := range []time.Duration{24 * time.Hour, 2 * time.Hour} {
		r := rs[i]
		if !r.dueAt.Equal(start1.Add(-off)) || r.expiresAt == nil || !r.expiresAt.Equal(start1) {
			t.Errorf("reminder %d: due %s expires %v, want due %s expiring %s", i, r.dueAt, r.expiresAt, start1.Add(-off), start1)
		}
		if r.status != "queued" || r.kind != "reminder" || r.channel != "email" || r.audience != "patient" ||
			r.subjectRef != apptID || r.patientID == nil || *r.patientID != patientID {
			t.Errorf("reminder %d: %+v", i, r)
		}
		if r.payload["date"] != start1.Format("Monday, January 2") || r.payload["time"] != "6:00 PM" ||
			r.payload["offset_minutes"] != map[int]string{0: "1440", 1: "120"}[i] {
			t.Errorf("reminder %d payload: %v", i, r.payload)
		}
	}

	// Redelivery (the same event) and a repeated event (another event id): still 2.
	e.trPublishID("SCHEDULING", "appointments", "trellis.scheduling.appointment.scheduled.v1", "scheduling", clinicA, eventID,
		time.Now(), &schedulingv1.AppointmentScheduled{Appointment: appt, ClinicTimeZone: trZone})
	e.trScheduled(appt, time.Now())
	trWant(t, e.trMessages("reminder:"+apptID+":"), 2, "after redelivery")

	// Rescheduled a day later: old reminders cancelled, new ones queued, and a moved notice.
	start2 := start1.AddDate(0, 0, 1)
	moved := trAppointment(apptID, patientID, clinicA, start2)
	moved.RescheduleCount = 1
	e.trPublish("SCHEDULING", "appointments", "trellis.scheduling.appointment.rescheduled.v1", "scheduling", clinicA, time.Now(),
		&schedulingv1.AppointmentRescheduled{Appointment: moved, ClinicTimeZone: trZone, PreviousStartsAt: timestamppb.New(start1)})
	for _, r := range e.trMessages("reminder:" + apptID + ":") {
		isNew := strings.HasSuffix(r.key, ":"+itoa(start2.Unix()))
		switch {
		case isNew && r.status != "queued":
			t.Errorf("new reminder %s is %s", r.key, r.status)
		case !isNew && (r.status != "cancelled" || r.reason != "rescheduled"):
			t.Errorf("old reminder %s is %s (%s), want cancelled (rescheduled)", r.key, r.status, r.reason)
		}
	}
	if got := e.trStatuses("reminder:" + apptID + ":"); got["queued"] != 2 || got["cancelled"] != 2 {
		t.Errorf("reminders after reschedule: %v", got)
	}
	mv := e.trMessages("moved:" + apptID + ":" + itoa(start2.Unix()))
	trWant(t, mv, 1, "moved notice")
	if mv[0].kind != "appointment_moved" || mv[0].payload["date"] != start2.Format("Monday, January 2") || mv[0].payload["time"] != "6:00 PM" {
		t.Errorf("moved notice: %+v", mv[0])
	}

	// Cancelled by the clinic: reminders cancelled, one notice.
	cancelled := trAppointment(apptID, patientID, clinicA, start2)
	cancelled.Status = schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_CANCELLED
	cancelled.CancelledBy = schedulingv1.CancelledBy_CANCELLED_BY_CLINIC
	e.trPublish("SCHEDULING", "appointments", "trellis.scheduling.appointment.cancelled.v1", "scheduling", clinicA, time.Now(),
		&schedulingv1.AppointmentCancelled{Appointment: cancelled, ReasonCode: "clinic"})
	if got := e.trStatuses("reminder:" + apptID + ":"); got["queued"] != 0 || got["cancelled"] != 4 {
		t.Errorf("reminders after cancellation: %v", got)
	}
	for _, r := range e.trMessages("reminder:" + apptID + ":" + "1440:" + itoa(start2.Unix())) {
		if r.reason != "cancelled" {
			t.Errorf("reminder %s cancelled for %q, want cancelled", r.key, r.reason)
		}
	}
	cn := e.trMessages("cancelled:" + apptID)
	trWant(t, cn, 1, "cancellation notice")
	if cn[0].kind != "appointment_cancelled" || cn[0].payload["date"] != start2.Format("Monday, January 2") {
		t.Errorf("cancellation notice: %+v", cn[0])
	}

	// A late "scheduled" event older than the cancellation changes nothing.
	e.trScheduled(appt, time.Now().Add(-time.Hour))
	if got := e.trStatuses("reminder:" + apptID + ":"); got["queued"] != 0 {
		t.Errorf("a stale event queued reminders: %v", got)
	}
	if n := e.Count(t, `SELECT count(*) FROM appointments WHERE appointment_id = $1 AND status = 'cancelled'`, apptID); n != 1 {
		t.Errorf("appointments copy not cancelled")
	}

	// A patient who opted into texts gets SMS reminders; a clinic's own offsets apply.
	textPatient, textAppt := bus.NewID(), bus.NewID()
	if _, err := e.Pool.Exec(context.Background(), `INSERT INTO preferences (patient_id, clinic_id, consent_id, version, channels, updated_at)
		VALUES ($1, $2, $3, 1, '{sms,email}', now())`, textPatient, clinicB, bus.NewID()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Pool.Exec(context.Background(), `INSERT INTO clinic_settings (clinic_id, reminder_offsets_minutes) VALUES ($1, '{60}')`, clinicB); err != nil {
		t.Fatal(err)
	}
	e.trScheduled(trAppointment(textAppt, textPatient, clinicB, start1), time.Now())
	ts := e.trMessages("reminder:" + textAppt + ":")
	trWant(t, ts, 1, "clinic offsets")
	if ts[0].channel != "sms" || !ts[0].dueAt.Equal(start1.Add(-time.Hour)) {
		t.Errorf("sms reminder: %+v", ts[0])
	}

	// Cancelled by the patient, or for a discharge: reminders cancelled, no notice.
	for _, reason := range []string{"patient", "discharged"} {
		id := bus.NewID()
		e.trScheduled(trAppointment(id, patientID, clinicA, start1), time.Now())
		c := trAppointment(id, patientID, clinicA, start1)
		c.Status = schedulingv1.AppointmentStatus_APPOINTMENT_STATUS_CANCELLED
		e.trPublish("SCHEDULING", "appointments", "trellis.scheduling.appointment.cancelled.v1", "scheduling", clinicA, time.Now(),
			&schedulingv1.AppointmentCancelled{Appointment: c, ReasonCode: reason})
		if got := e.trStatuses("reminder:" + id + ":"); got["cancelled"] != 2 || got["queued"] != 0 {
			t.Errorf("%s: reminders %v", reason, got)
		}
		trWant(t, e.trMessages("cancelled:"+id), 0, reason+" notice")
	}

	// A reminder already due is not queued: an appointment 3 hours ahead gets only the 2-hour one.
	soonID := bus.NewID()
	e.trScheduled(trAppointment(soonID, patientID, clinicA, time.Now().Add(3*time.Hour).Truncate(time.Minute)), time.Now())
	soon := e.trMessages("reminder:" + soonID + ":")
	trWant(t, soon, 1, "soon")
	if soon[0].payload["offset_minutes"] != "120" {
		t.Errorf("soon: %+v", soon[0])
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestTriggersDischargeCancelsPending(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	for _, via := range []string{"intake", "scheduling"} {
		patientID, apptID := bus.NewID(), bus.NewID()
		e.trScheduled(trAppointment(apptID, patientID, clinicA, trSession(t, 5)), time.Now())
		e.trPublish("SCHEDULING", "attendance", "trellis.scheduling.attendance.recorded.v1", "scheduling", clinicA, time.Now(),
			&schedulingv1.AttendanceRecorded{AppointmentId: bus.NewID(), PatientId: patientID, ClinicId: clinicA,
				LocalDate: time.Now().Format(time.DateOnly), StartsAt: timestamppb.Now(), Version: 1,
				Status: schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT})
		if n := e.Count(t, `SELECT count(*) FROM messages WHERE patient_id = $1 AND status = 'queued'`, patientID); n != 3 {
			t.Fatalf("%s: %d queued before discharge, want 3", via, n)
		}
		if via == "intake" {
			e.trPublish("INTAKE", "discharges", "trellis.intake.patient.discharged.v1", "intake", clinicA, time.Now(),
				&intakev1.PatientDischarged{PatientId: patientID, EpisodeId: bus.NewID(), ClinicId: clinicA,
					DischargeDate: time.Now().Format(time.DateOnly)})
		} else {
			// A track switch changes nothing; a discharge cancels.
			e.trPublish("SCHEDULING", "enrollments", "trellis.scheduling.enrollment.ended.v1", "scheduling", clinicA, time.Now(),
				&schedulingv1.EnrollmentEnded{EnrollmentId: bus.NewID(), PatientId: patientID, ClinicId: clinicA, Reason: "switched"})
			if n := e.Count(t, `SELECT count(*) FROM messages WHERE patient_id = $1 AND status = 'queued'`, patientID); n != 3 {
				t.Fatalf("a track switch cancelled messages: %d queued", n)
			}
			e.trPublish("SCHEDULING", "enrollments", "trellis.scheduling.enrollment.ended.v1", "scheduling", clinicA, time.Now(),
				&schedulingv1.EnrollmentEnded{EnrollmentId: bus.NewID(), PatientId: patientID, ClinicId: clinicA, Reason: "discharged"})
		}
		if n := e.Count(t, `SELECT count(*) FROM messages WHERE patient_id = $1 AND status = 'cancelled' AND status_reason = 'discharged'`, patientID); n != 3 {
			t.Errorf("%s: %d cancelled for the discharge, want 3", via, n)
		}
	}
}

func TestTriggersCheckInAndStatement(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	patientID, apptID := bus.NewID(), bus.NewID()
	session := trSession(t, 1) // tomorrow 18:00: the check-in is due the morning after, in the future
	e.trScheduled(trAppointment(apptID, patientID, clinicA, session), time.Now())
	attendance := func(subject string, status schedulingv1.AttendanceStatus, version int32) {
		e.trPublish("SCHEDULING", "attendance", subject, "scheduling", clinicA, time.Now(),
			&schedulingv1.AttendanceRecorded{AppointmentId: apptID, PatientId: patientID, ClinicId: clinicA,
				LocalDate: session.Format(time.DateOnly), StartsAt: timestamppb.New(session), Status: status, Version: version})
	}
	attendance("trellis.scheduling.attendance.recorded.v1", schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT, 1)
	attendance("trellis.scheduling.attendance.recorded.v1", schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT, 1)
	ci := e.trMessages("check_in:" + apptID)
	trWant(t, ci, 1, "check-in")
	next := session.AddDate(0, 0, 1)
	wantDue := time.Date(next.Year(), next.Month(), next.Day(), 10, 0, 0, 0, session.Location())
	if ci[0].kind != "check_in" || !ci[0].dueAt.Equal(wantDue) || ci[0].status != "queued" ||
		ci[0].payload["date"] != session.Format("Monday, January 2") {
		t.Errorf("check-in: %+v, want due %s", ci[0], wantDue)
	}
	attendance("trellis.scheduling.attendance.corrected.v1", schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT, 2)
	if ci := e.trMessages("check_in:" + apptID); ci[0].status != "cancelled" || ci[0].reason != "attendance_corrected" {
		t.Errorf("check-in after correction: %+v", ci[0])
	}

	statementID := bus.NewID()
	for range 2 {
		e.trPublish("BILLING", "statements", "trellis.billing.statement.ready.v1", "billing", clinicA, time.Now(),
			&billingv1.StatementReady{StatementId: statementID, AccountId: bus.NewID(), PatientId: patientID, ClinicId: clinicA,
				BalanceCents: 123456, DueDate: "2026-03-30", IssuedAt: timestamppb.Now()})
	}
	st := e.trMessages("statement:" + statementID)
	trWant(t, st, 1, "statement")
	if st[0].kind != "statement" || st[0].channel != "email" || st[0].payload["balance"] != "$1,234.56" ||
		st[0].payload["due_date"] != "March 30, 2026" {
		t.Errorf("statement: %+v", st[0])
	}
}

func TestTriggersWelcomeFirstWeek(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	p := newPatient(clinicA, "Ana Quill", "ana@example.test")
	loc, _ := time.LoadLocation(trZone)
	// admit() starts the patient on 2026-03-02: two sessions in the first week, one after it.
	for _, day := range []int{4, 2, 12} {
		e.trScheduled(trAppointment(bus.NewID(), p.id, clinicA, time.Date(2026, 3, day, 18, 0, 0, 0, loc)), time.Now())
	}
	e.admitWithContact(p)
	e.waitRecipient(p.id, "contact_updated_at IS NOT NULL AND admission_updated_at IS NOT NULL")
	seq := e.openAccount(p, bus.NewID(), "", "")
	e.Settled(t, "BILLING", "notification--accounts", seq)
	w := e.trMessages("welcome:" + p.id)
	trWant(t, w, 1, "welcome")
	if got, want := w[0].payload["first_week"], "Monday, March 2 at 6:00 PM\nWednesday, March 4 at 6:00 PM"; got != want {
		t.Errorf("first_week = %q, want %q", got, want)
	}

	// Without known appointments the welcome goes without a first week.
	q := newPatient(clinicA, "Bo Reed", "bo@example.test")
	e.admitWithContact(q)
	e.waitRecipient(q.id, "contact_updated_at IS NOT NULL AND admission_updated_at IS NOT NULL")
	seq = e.openAccount(q, bus.NewID(), "", "")
	e.Settled(t, "BILLING", "notification--accounts", seq)
	w = e.trMessages("welcome:" + q.id)
	trWant(t, w, 1, "welcome without appointments")
	if _, ok := w[0].payload["first_week"]; ok {
		t.Errorf("first_week without appointments: %v", w[0].payload)
	}
}

func TestTriggersStaffAlerts(t *testing.T) {
	sink := smtptest.Start(t, smtptest.Options{})
	e := start(t, sink.Addr, nil)
	patientID, enrollmentID := bus.NewID(), bus.NewID()
	since := time.Now().Add(-time.Hour).Truncate(time.Second)
	for range 2 {
		e.trPublish("SCHEDULING", "risk", "trellis.scheduling.patient.at_risk.v1", "scheduling", clinicA, time.Now(),
			&schedulingv1.PatientAtRisk{PatientId: patientID, EnrollmentId: enrollmentID, ClinicId: clinicA,
				Reasons: []schedulingv1.RiskReason{schedulingv1.RiskReason_RISK_REASON_CONSECUTIVE_ABSENCES}, Since: timestamppb.New(since)})
	}
	ar := e.trMessages("at_risk:" + enrollmentID + ":")
	trWant(t, ar, 1, "at risk")
	trStaff(t, ar[0], "staff_patient_at_risk", "care_team")
	if ar[0].payload["patient_ref"] != patientID[:8] || ar[0].payload["reasons"] != "consecutive_absences" {
		t.Errorf("at risk payload: %v", ar[0].payload)
	}

	authID := bus.NewID()
	usage := func(subject string, used int32) {
		e.trPublish("BILLING", "authorizations", subject, "billing", clinicA, time.Now(),
			&billingv1.AuthorizationUsage{AuthorizationId: authID, ClinicId: clinicA, PatientId: patientID, PayerId: bus.NewID(),
				AuthorizedUnits: 10, UsedUnits: used, EndsOn: "2026-12-31"})
	}
	usage("trellis.billing.authorization.nearly_used.v1", 8)
	usage("trellis.billing.authorization.nearly_used.v1", 8)
	usage("trellis.billing.authorization.exhausted.v1", 10)
	au := e.trMessages("authorization:" + authID + ":")
	trWant(t, au, 2, "authorization alerts")
	for _, a := range au {
		trStaff(t, a, "staff_authorization", "billing")
	}

	held := func(reason string) {
		e.trPublish("BILLING", "charges", "trellis.billing.charge.status_changed.v1", "billing", clinicA, time.Now(),
			&billingv1.ChargeStatusChanged{ChargeId: bus.NewID(), ClinicId: clinicA, PatientId: patientID,
				From: billingv1.ChargeStatus_CHARGE_STATUS_READY, To: billingv1.ChargeStatus_CHARGE_STATUS_HELD,
				Reason: reason, ChangedAt: timestamppb.Now()})
	}
	held("consent")
	held("consent")
	held("coverage")
	ch := e.trMessages("consent_hold:" + patientID + ":")
	trWant(t, ch, 1, "consent holds")
	trStaff(t, ch[0], "staff_claims_held_consent", "billing")

	failed := func(kind string) string {
		id := bus.NewID()
		e.trPublish("NOTIFICATION", "failures", "trellis.notification.message.failed.v1", "notification", clinicA, time.Now(),
			&notificationv1.MessageFailed{MessageId: id, PatientId: patientID, ClinicId: clinicA, Kind: kind, Channel: "sms", Reason: "invalid_address"})
		return id
	}
	msgID := failed("reminder")
	un := e.trMessages("undeliverable:" + msgID)
	trWant(t, un, 1, "undeliverable")
	trStaff(t, un[0], "staff_message_undeliverable", "care_team")
	trWant(t, e.trMessages("undeliverable:"+failed("staff_dead_letter")), 0, "undeliverable staff alert")

	// A poison event (a name where an id belongs) is dead-lettered; operations hears of it
	// once, with the consumer, subject and reason, and nothing of the event's content.
	bad := trAppointment(bus.NewID(), "Jane Poison", clinicA, trSession(t, 3))
	seq := e.publishAt(time.Now(), "trellis.scheduling.appointment.scheduled.v1", "scheduling", clinicA, bus.NewID(), "", "",
		&schedulingv1.AppointmentScheduled{Appointment: bad, ClinicTimeZone: trZone})
	dl := e.DeadLetter(t, "notification--appointments", seq)
	e.Settled(t, "DEADLETTER", "notification--deadletters", dl.Sequence)
	ops := e.trMessages("dead_letter:")
	trWant(t, ops, 1, "dead-letter alerts")
	trStaff(t, ops[0], "staff_dead_letter", "operations")
	if ops[0].payload["consumer"] != "notification--appointments" ||
		ops[0].payload["original_subject"] != "trellis.scheduling.appointment.scheduled.v1" || ops[0].payload["reason"] == "" {
		t.Errorf("dead-letter payload: %v", ops[0].payload)
	}
	if ops[0].key != "dead_letter:"+dl.Header.Get(bus.HeaderMsgID) {
		t.Errorf("dead-letter key %q", ops[0].key)
	}

	// A dead letter claiming to come from the watcher itself is ignored (no loop).
	self := nats.NewMsg(bus.DeadLetterSubject("notification--deadletters"))
	self.Data = []byte("x")
	self.Header.Set(bus.HeaderDLConsumer, "notification--deadletters")
	self.Header.Set(bus.HeaderMsgID, "dl:self")
	ack, err := e.JS.PublishMsg(context.Background(), self)
	if err != nil {
		t.Fatal(err)
	}
	last := ack.Sequence
	e.Settled(t, "DEADLETTER", "notification--deadletters", last)
	trWant(t, e.trMessages("dead_letter:"), 1, "dead-letter alerts after replays")

	// No staff alert names the patients or carries the poison event's content.
	rows, err := e.Pool.Query(context.Background(), `SELECT payload::text FROM messages WHERE audience = 'staff'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(p, "Jane") || strings.Contains(p, "Poison") || strings.Contains(p, patientID) {
			t.Errorf("staff payload names the patient: %s", p)
		}
	}
	if strings.Contains(e.Logs.String(), "Jane Poison") {
		t.Error("the logs quote the poison event's content")
	}
}

// trStaff checks a staff alert's addressing: email to team, no patient.
func trStaff(t *testing.T, r trRow, kind, team string) {
	t.Helper()
	if r.kind != kind || r.team != team || r.audience != "staff" || r.channel != "email" || r.patientID != nil {
		t.Errorf("staff alert %s: %+v, want kind %s team %s", r.key, r, kind, team)
	}
}
