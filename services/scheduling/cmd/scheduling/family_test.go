package main

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	eventsv1 "github.com/trellis-health/trellis/proto/gen/trellis/events/v1"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

const (
	consentsConsumer      = "scheduling--consents"
	subjectConsentGranted = "trellis.intake.consent.granted.v1"
	subjectConsentRevoked = "trellis.intake.consent.revoked.v1"
)

// consent is intake's ConsentGranted of version v for the patient at clinicA, effective now.
func consent(patientID, consentID string, v int32, namedRecipients bool) *intakev1.ConsentGranted {
	scopes := []intakev1.ConsentScope{intakev1.ConsentScope_CONSENT_SCOPE_TREATMENT}
	if namedRecipients {
		scopes = append(scopes, intakev1.ConsentScope_CONSENT_SCOPE_NAMED_RECIPIENTS)
	}
	return &intakev1.ConsentGranted{ConsentId: consentID, PatientId: patientID, ClinicId: clinicA, Version: v,
		Scopes: scopes, EffectiveFrom: timestamppb.Now()}
}

// publishConsent publishes env (msgID: its event id unless given) on subject and waits until
// the consents consumer has handled it and what it emitted is on the bus.
func publishConsent(t *testing.T, s *servicetest.Service, subject string, env *eventsv1.Envelope, msgID string) {
	t.Helper()
	if msgID == "" {
		msgID = env.GetEventId()
	}
	seq := s.Publish(t, subject, msgID, env, "")
	s.Settled(t, "INTAKE", consentsConsumer, seq)
	s.Relayed(t)
}

func familyEvents(t *testing.T, s *servicetest.Service, patientID string) (scheduled, cancelled int) {
	t.Helper()
	for _, m := range published(t, s, subjectApptScheduled, func() *schedulingv1.AppointmentScheduled { return &schedulingv1.AppointmentScheduled{} }) {
		if a := m.GetAppointment(); a.GetPatientId() == patientID && a.GetServiceType() == schedulingv1.ServiceType_SERVICE_TYPE_FAMILY {
			scheduled++
		}
	}
	for _, m := range published(t, s, subjectApptCancelled, func() *schedulingv1.AppointmentCancelled { return &schedulingv1.AppointmentCancelled{} }) {
		if a := m.GetAppointment(); a.GetPatientId() == patientID && a.GetServiceType() == schedulingv1.ServiceType_SERVICE_TYPE_FAMILY {
			if m.GetReasonCode() != "consent_revoked" || a.GetCancelledBy() != schedulingv1.CancelledBy_CANCELLED_BY_CLINIC {
				t.Fatalf("family AppointmentCancelled = %v, want reason consent_revoked by the clinic", m)
			}
			cancelled++
		}
	}
	return scheduled, cancelled
}

func wantFamilyEvents(t *testing.T, s *servicetest.Service, what, patientID string, scheduled, cancelled int) {
	t.Helper()
	if gs, gc := familyEvents(t, s, patientID); gs != scheduled || gc != cancelled {
		t.Fatalf("%s: family AppointmentScheduled %d, AppointmentCancelled %d; want %d, %d", what, gs, gc, scheduled, cancelled)
	}
}

func TestFamilySessionsFollowConsent(t *testing.T) {
	s := start(t)
	evening := seatTrack(t, s, clinicA, "adult-evening", 12)
	_, _, therapist, _ := staffClinic(t, s, evening)
	monday := nextMonday(t)
	base := map[string]int{"group scheduled": 36, "individual scheduled": 12, "medication_management scheduled": 3}
	with := func(extra map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	// Admitted without a consent: no family sessions.
	p1 := bus.NewID()
	admitOn(t, s, p1, "adult-evening", monday)
	wantKinds(t, s, "admitted", p1, base)

	// A consent naming recipients: a 60-minute family session every 2 weeks of the 12-week
	// program (weeks 1, 3, ..., 11) with the therapist, clear of the patient's individual session.
	c1 := bus.NewID()
	grant := envelope(t, consent(p1, c1, 1, true), clinicA)
	publishConsent(t, s, subjectConsentGranted, grant, "")
	wantKinds(t, s, "consented", p1, with(map[string]int{"family scheduled": 6}))
	if n := s.Count(t, `SELECT count(*) FROM appointments a JOIN sessions s ON s.id = a.session_id WHERE a.patient_id = $1
		AND s.service_type = 'family' AND s.clinician_id = $2 AND s.track_id IS NULL AND s.end_time - s.start_time = '60 minutes'
		AND (s.local_date - $3::date) / 7 IN (0, 2, 4, 6, 8, 10) AND s.start_time = '10:00'`, p1, therapist, monday); n != 6 {
		t.Fatalf("family sessions = %d, want 6 of 60 minutes at 10:00 in weeks 1, 3, ..., 11 with the therapist", n)
	}
	wantFamilyEvents(t, s, "consented", p1, 6, 0)

	// Replays: the same event again (the inbox), and the same consent under a new event id and
	// a newer version naming recipients too (family sessions already booked): nothing more.
	publishConsent(t, s, subjectConsentGranted, grant, bus.NewID())
	publishConsent(t, s, subjectConsentGranted, envelope(t, consent(p1, c1, 1, true), clinicA), "")
	c2 := bus.NewID()
	publishConsent(t, s, subjectConsentGranted, envelope(t, consent(p1, c2, 2, true), clinicA), "")
	wantKinds(t, s, "replayed", p1, with(map[string]int{"family scheduled": 6}))
	wantFamilyEvents(t, s, "replayed", p1, 6, 0)

	// Revoked (the latest version, from now): every future family appointment is cancelled by
	// the clinic, with AppointmentCancelled (consent_revoked) and history; the rest stays.
	publishConsent(t, s, subjectConsentRevoked, envelope(t, &intakev1.ConsentRevoked{ConsentId: c2, PatientId: p1,
		ClinicId: clinicA, EffectiveAt: timestamppb.Now()}, clinicA), "")
	wantKinds(t, s, "revoked", p1, with(map[string]int{"family cancelled clinic": 6}))
	wantFamilyEvents(t, s, "revoked", p1, 6, 6)
	if n := s.Count(t, `SELECT count(*) FROM appointment_history h JOIN appointments a ON a.id = h.appointment_id
		WHERE a.patient_id = $1 AND h.change = 'cancelled' AND h.reason = 'consent revoked'`, p1); n != 6 {
		t.Fatalf("history rows = %d, want 6", n)
	}
	if n := s.Count(t, `SELECT count(*) FROM sessions WHERE service_type = 'family' AND status = 'scheduled'`); n != 0 {
		t.Fatalf("scheduled family sessions = %d after the revocation, want 0 (the therapist is free again)", n)
	}
	// A late grant of an older version changes nothing.
	publishConsent(t, s, subjectConsentGranted, envelope(t, consent(p1, c1, 1, true), clinicA), "")
	wantKinds(t, s, "older version late", p1, with(map[string]int{"family cancelled clinic": 6}))

	// Consent granted before the admission: the copy is kept, and the enrollment gets its
	// family sessions when it takes its seat.
	p2 := bus.NewID()
	publishConsent(t, s, subjectConsentGranted, envelope(t, consent(p2, bus.NewID(), 1, true), clinicA), "")
	if n := s.Count(t, `SELECT count(*) FROM family_consents WHERE patient_id = $1 AND named_recipients AND revoked_at IS NULL`, p2); n != 1 {
		t.Fatalf("consent copy rows = %d, want 1", n)
	}
	admitOn(t, s, p2, "adult-evening", monday)
	wantKinds(t, s, "admitted after consent", p2, with(map[string]int{"family scheduled": 6}))
	wantFamilyEvents(t, s, "admitted after consent", p2, 6, 0)
	if n := s.Count(t, `SELECT count(*) FROM appointments a JOIN sessions f ON f.id = a.session_id
		JOIN appointments b ON b.patient_id = a.patient_id AND b.id <> a.id AND b.status = 'scheduled'
		JOIN sessions o ON o.id = b.session_id AND o.starts_at < f.ends_at AND f.starts_at < o.ends_at
		WHERE a.patient_id = $1 AND f.service_type = 'family'`, p2); n != 0 {
		t.Fatalf("%d family sessions overlap the patient's other appointments", n)
	}

	// A newer version without the named-recipients scope cancels them.
	publishConsent(t, s, subjectConsentGranted, envelope(t, consent(p2, bus.NewID(), 2, false), clinicA), "")
	wantKinds(t, s, "consent without named recipients", p2, with(map[string]int{"family cancelled clinic": 6}))
	wantFamilyEvents(t, s, "consent without named recipients", p2, 6, 6)
}
