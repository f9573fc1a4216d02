package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/service"
	"github.com/trellis-health/trellis/pkg/testkit/authztest"
	"github.com/trellis-health/trellis/pkg/testkit/servicetest"
	"github.com/trellis-health/trellis/services/intake"
	"github.com/trellis-health/trellis/services/intake/demo"
)

// authzMatrix is intake's part of the role x RPC matrix (docs/security.md).
func authzMatrix() authztest.Matrix {
	return authztest.Matrix{Service: "intake", Policy: intake.Spec(nil).Policy, APIs: []string{"trellis.intake.v1.IntakeService"}}
}

// TestAuthzMatrix: every intake RPC has a policy entry, the policy names only RPCs and known
// roles, and docs/security.md shows it.
func TestAuthzMatrix(t *testing.T) {
	authztest.CheckPolicy(t, authzMatrix())
	authztest.CheckDoc(t, authzMatrix())
}

// TestAuthzEveryRoleEveryRPC calls every intake RPC with a token of every role, then asks
// about clinic B's (Riverside's) data with a token for clinic A (Lakeview) only.
func TestAuthzEveryRoleEveryRPC(t *testing.T) {
	spec := intake.Spec(nil)
	var cfg Config
	s := servicetest.Start(t, spec, &cfg, map[string]string{"NATS_STREAM_STORAGE": "memory"})
	if err := spec.Commands["seed-demo"](context.Background(), &service.Platform{Pool: s.Pool, Log: s.Log}, nil); err != nil {
		t.Fatal(err)
	}
	m := authzMatrix()
	token := func(roles, clinics []string) string { return s.Token(t, "authz-user", roles, clinics) }
	n := authztest.EveryRoleEveryRPC(t, s.URL, m, token)
	t.Logf("%d calls", n)

	clinicA, clinicB := demo.LakeviewClinicID, demo.RiversideClinicID
	adminB := token([]string{"admin"}, []string{clinicB})
	must := func(procedure, body string, out any) {
		t.Helper()
		code, resp := authztest.Call(t, s.URL, procedure, adminB, body)
		if code != "ok" {
			t.Fatalf("%s: %s %s", procedure, code, resp)
		}
		if err := json.Unmarshal(resp, out); err != nil {
			t.Fatal(err)
		}
	}
	// Clinic B's data: a referral and an admitted patient.
	var ref struct {
		Referral struct {
			ReferralID string `json:"referralId"`
		} `json:"referral"`
	}
	must("/trellis.intake.v1.IntakeService/CreateReferral", `{"clinicId":"`+clinicB+`","source":"REFERRAL_SOURCE_SELF",
		"givenName":"Probe","familyName":"Referral","email":"probe.referral@example.org","idempotencyKey":"authz-referral-1"}`, &ref)
	var adm struct {
		PatientID string `json:"patientId"`
		EpisodeID string `json:"episodeId"`
	}
	start := time.Now().AddDate(0, 0, 3).Format(time.DateOnly)
	must("/trellis.intake.v1.IntakeService/AdmitPatient", `{"givenName":"Probe","familyName":"Patient","dateOfBirth":"1980-01-02",
		"contactEmail":"probe.patient@example.org","clinicId":"`+clinicB+`","programTrack":"adult-evening","startDate":"`+start+`",
		"idempotencyKey":"authz-admit-1"}`, &adm)

	b, r, p := `"`+clinicB+`"`, `"`+ref.Referral.ReferralID+`"`, `"`+adm.PatientID+`"`
	cases := []authztest.Case{
		{Procedure: "/trellis.intake.v1.IntakeService/CreateReferral", Request: `{"clinicId":` + b +
			`,"source":"REFERRAL_SOURCE_SELF","givenName":"Probe","familyName":"Two","email":"probe.two@example.org","idempotencyKey":"authz-referral-2"}`},
		{Procedure: "/trellis.intake.v1.IntakeService/ListReferrals", Request: `{"clinicId":` + b + `}`},
		{Procedure: "/trellis.intake.v1.IntakeService/ListReferrals", Request: `{}`, Unscoped: true,
			Markers: []string{ref.Referral.ReferralID, adm.PatientID}},
		{Procedure: "/trellis.intake.v1.IntakeService/GetReferral", Request: `{"referralId":` + r + `}`},
		{Procedure: "/trellis.intake.v1.IntakeService/ChangeReferralStatus", Request: `{"referralId":` + r + `,"status":"REFERRAL_STATUS_CONTACTED"}`},
		{Procedure: "/trellis.intake.v1.IntakeService/AdmitPatient", Request: `{"givenName":"Probe","familyName":"Three",
			"dateOfBirth":"1981-02-03","contactEmail":"probe.three@example.org","clinicId":` + b + `,"programTrack":"adult-evening",
			"startDate":"` + start + `","idempotencyKey":"authz-admit-2"}`},
		{Procedure: "/trellis.intake.v1.IntakeService/ListConsents", Request: `{"patientId":` + p + `}`},
		{Procedure: "/trellis.intake.v1.IntakeService/ListCoverage", Request: `{"patientId":` + p + `}`},
		{Procedure: "/trellis.intake.v1.IntakeService/GrantConsent", Request: `{"patientId":` + p +
			`,"scopes":["CONSENT_SCOPE_TREATMENT"],"idempotencyKey":"authz-consent-1"}`},
		{Procedure: "/trellis.intake.v1.IntakeService/DischargePatient", Request: `{"episodeId":"` + adm.EpisodeID +
			`","reason":"DISCHARGE_REASON_COMPLETED","dischargeDate":"` + start + `","idempotencyKey":"authz-discharge-1"}`,
			NotOK: true}, // the episode starts in 3 days: B may not discharge it yet either (the probe checks A only),
	}
	authztest.OtherClinic(t, s.URL, m, token, clinicA, clinicB, cases, nil)
}
