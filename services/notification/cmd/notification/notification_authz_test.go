package main

import (
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/testkit"
	"github.com/trellis-health/trellis/pkg/testkit/authztest"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
)

// authzMatrix is notification's part of the role x RPC matrix (docs/security.md).
func authzMatrix() authztest.Matrix {
	var cfg Config
	return authztest.Matrix{Service: "notification", Policy: newSpec(&cfg).Policy,
		APIs: []string{"trellis.notification.v1.NotificationService"}}
}

// TestAuthzMatrix: every notification RPC has a policy entry, the policy names only RPCs and
// known roles, and docs/security.md shows it.
func TestAuthzMatrix(t *testing.T) {
	authztest.CheckPolicy(t, authzMatrix())
	authztest.CheckDoc(t, authzMatrix())
}

// TestAuthzEveryRoleEveryRPC calls every notification RPC with a token of every role, then
// asks about clinic B's data with a token for clinic A only.
func TestAuthzEveryRoleEveryRPC(t *testing.T) {
	e := start(t, downAddr(t), map[string]string{"LOG_LEVEL": "warn"})
	m := authzMatrix()
	token := func(roles, clinics []string) string { return e.Token(t, "authz-user", roles, clinics) }
	n := authztest.EveryRoleEveryRPC(t, e.URL, m, token)
	t.Logf("%d calls", n)

	// Clinic B's data: a patient admitted there with contact details, a message queued.
	p := newPatient(clinicB, "Probe", "probe@example.org")
	e.admitWithContact(p)
	e.openAccount(p, bus.NewID(), "", "")
	e.waitRecipient(p.id, "email IS NOT NULL")
	e.dvConsent(p, bus.NewID(), 1, intakev1.Channel_CHANNEL_EMAIL)
	testkit.Eventually(t, 10*time.Second, "preferences at clinic B", func() bool {
		return e.Count(t, "SELECT count(*) FROM preferences WHERE patient_id = $1", p.id) == 1
	})
	testkit.Eventually(t, 10*time.Second, "a message to the patient at clinic B", func() bool { return len(e.messages(p.id)) > 0 })
	b, id := `"`+clinicB+`"`, `"`+p.id+`"`
	cases := []authztest.Case{
		{Procedure: "/trellis.notification.v1.NotificationService/SaveTemplate", Request: `{"clinicId":` + b +
			`,"kind":"reminder","channel":"sms","locale":"en","body":"Visit {{.Payload.date}}. Call {{.ClinicPhone}}"}`},
		{Procedure: "/trellis.notification.v1.NotificationService/ListTemplates", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.notification.v1.NotificationService/PreviewTemplate", Request: `{"clinicId":` + b +
			`,"kind":"reminder","channel":"sms","locale":"en"}`},
		{Procedure: "/trellis.notification.v1.NotificationService/SetClinicSettings", Request: `{"settings":{"clinicId":` + b +
			`,"reminderOffsetsMinutes":[1440]}}`},
		{Procedure: "/trellis.notification.v1.NotificationService/GetClinicSettings", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.notification.v1.NotificationService/ListMessages", Request: `{"patientId":` + id + `}`,
			EmptyOK: true}, // a patient's messages are filtered to the caller's clinics: none here,
		{Procedure: "/trellis.notification.v1.NotificationService/GetPreferences", Request: `{"patientId":` + id + `}`},
	}
	authztest.OtherClinic(t, e.URL, m, token, clinicA, clinicB, cases, nil)
}
