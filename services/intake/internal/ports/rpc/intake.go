// Package rpc serves intake's Connect API (trellis.intake.v1.IntakeService).
package rpc

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/pkg/rpc"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// Roles that call intake.
const (
	RoleIntakeCoordinator = "intake_coordinator"
	RoleClinician         = "clinician"
	RoleOperator          = "operator"
	RoleBilling           = "billing"
	RoleAdmin             = "admin"
)

// Policy: the roles allowed to call each procedure (anything missing is refused). Clinic
// access is checked in each handler against the record it touches.
var Policy = rpc.Policy{
	intakev1connect.IntakeServiceCreateReferralProcedure:       {RoleIntakeCoordinator, RoleAdmin},
	intakev1connect.IntakeServiceGetReferralProcedure:          {RoleIntakeCoordinator, RoleClinician, RoleOperator, RoleAdmin},
	intakev1connect.IntakeServiceListReferralsProcedure:        {RoleIntakeCoordinator, RoleClinician, RoleOperator, RoleAdmin},
	intakev1connect.IntakeServiceChangeReferralStatusProcedure: {RoleIntakeCoordinator, RoleAdmin},
	intakev1connect.IntakeServiceRecordAssessmentProcedure:     {RoleIntakeCoordinator, RoleClinician, RoleAdmin},
	intakev1connect.IntakeServiceListCareLevelsProcedure:       {RoleIntakeCoordinator, RoleClinician, RoleOperator, RoleAdmin},
	intakev1connect.IntakeServiceAdmitPatientProcedure:         {RoleIntakeCoordinator, RoleClinician, RoleAdmin},
	intakev1connect.IntakeServiceReferOutProcedure:             {RoleIntakeCoordinator, RoleClinician, RoleAdmin},
	intakev1connect.IntakeServiceGrantConsentProcedure:         {RoleIntakeCoordinator, RoleAdmin},
	intakev1connect.IntakeServiceRevokeConsentProcedure:        {RoleIntakeCoordinator, RoleAdmin},
	intakev1connect.IntakeServiceListConsentsProcedure:         {RoleIntakeCoordinator, RoleClinician, RoleAdmin},
	intakev1connect.IntakeServiceSetCoverageProcedure:          {RoleIntakeCoordinator, RoleBilling, RoleAdmin},
	intakev1connect.IntakeServiceListCoverageProcedure:         {RoleIntakeCoordinator, RoleBilling, RoleAdmin},
	intakev1connect.IntakeServiceDischargePatientProcedure:     {RoleIntakeCoordinator, RoleClinician, RoleAdmin},
}

// Handler implements intakev1connect.IntakeServiceHandler. Each feature adds its methods in
// its own file (referrals.go, assessments.go, consents.go, discharge.go); a procedure without
// one answers unimplemented.
type Handler struct {
	intakev1connect.UnimplementedIntakeServiceHandler
	intake *app.Intake
	log    *slog.Logger
}

var _ intakev1connect.IntakeServiceHandler = (*Handler)(nil)

// NewHandler returns the handler.
func NewHandler(intake *app.Intake, log *slog.Logger) *Handler {
	return &Handler{intake: intake, log: log}
}

// AdmitPatient admits a patient, directly or deciding an assessed referral. Authentication, the
// role check and protovalidate have run in the platform's interceptors; the clinic check and the
// domain rules run here (a referral of a clinic the caller may not see is not_found).
func (h *Handler) AdmitPatient(ctx context.Context, req *connect.Request[intakev1.AdmitPatientRequest]) (*connect.Response[intakev1.AdmitPatientResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	// Checked before the clinic is looked up, so callers cannot probe which clinic ids exist.
	if !p.CanSeeClinic(m.GetClinicId()) {
		return nil, errClinic()
	}
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *intakev1.AdmitPatientRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	out, err := h.intake.AdmitPatient(ctx, app.AdmitPatient{
		Caller:         p.Subject,
		Sees:           p,
		IdempotencyKey: m.GetIdempotencyKey(),
		RequestHash:    hash,
		ReferralID:     m.GetReferralId(),
		Input: domain.AdmissionInput{
			GivenName: m.GetGivenName(), FamilyName: m.GetFamilyName(), DateOfBirth: m.GetDateOfBirth(),
			ContactEmail: m.GetContactEmail(), ClinicID: m.GetClinicId(), ProgramTrack: m.GetProgramTrack(),
			StartDate: m.GetStartDate(), Program: m.GetProgram(),
		},
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return connect.NewResponse(&intakev1.AdmitPatientResponse{PatientId: out.PatientID, EpisodeId: out.EpisodeID, Replayed: out.Replayed}), nil
}
