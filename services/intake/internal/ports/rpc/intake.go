// Package rpc serves intake's Connect API (trellis.intake.v1.IntakeService).
package rpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/intake/v1/intakev1connect"
	"github.com/trellis-health/trellis/services/intake/internal/app"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// Policy: the roles allowed to call each procedure (anything missing is refused).
var Policy = rpc.Policy{
	intakev1connect.IntakeServiceAdmitPatientProcedure: {"intake", "admin"},
}

// Handler implements intakev1connect.IntakeServiceHandler.
type Handler struct {
	intake *app.Intake
	log    *slog.Logger
}

var _ intakev1connect.IntakeServiceHandler = (*Handler)(nil)

// NewHandler returns the handler.
func NewHandler(intake *app.Intake, log *slog.Logger) *Handler {
	return &Handler{intake: intake, log: log}
}

// AdmitPatient admits a patient. Authentication, the role check and protovalidate have run in
// the platform's interceptors; the clinic check and the domain rules run here.
func (h *Handler) AdmitPatient(ctx context.Context, req *connect.Request[intakev1.AdmitPatientRequest]) (*connect.Response[intakev1.AdmitPatientResponse], error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	m := req.Msg
	// Checked before the clinic is looked up, so callers cannot probe which clinic ids exist.
	if !p.CanSeeClinic(m.GetClinicId()) {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("you may not act on this clinic"))
	}
	hash, err := requestHash(req.Spec().Procedure, m)
	if err != nil {
		return nil, h.internal(ctx, err)
	}
	out, err := h.intake.AdmitPatient(ctx, app.AdmitPatient{
		Caller:         p.Subject,
		IdempotencyKey: m.GetIdempotencyKey(),
		RequestHash:    hash,
		Input: domain.AdmissionInput{
			GivenName: m.GetGivenName(), FamilyName: m.GetFamilyName(), DateOfBirth: m.GetDateOfBirth(),
			ContactEmail: m.GetContactEmail(), ClinicID: m.GetClinicId(), ProgramTrack: m.GetProgramTrack(),
			StartDate: m.GetStartDate(),
		},
	})
	var ve *domain.ValidationError
	switch {
	case err == nil:
	case errors.As(err, &ve):
		vs := make([]rpc.FieldViolation, len(ve.Violations))
		for i, v := range ve.Violations {
			vs[i] = rpc.FieldViolation{Field: v.Field, Rule: v.Rule, Msg: v.Msg}
		}
		return nil, rpc.InvalidArgument(vs...)
	case errors.Is(err, app.ErrIdempotencyKeyReused):
		// failed_precondition rather than already_exists: the request is well formed, but the
		// state of the key (bound to another request) forbids it; already_exists would suggest
		// the patient being admitted exists, which a client might take for success.
		return nil, connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, context.Canceled):
		return nil, connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return nil, connect.NewError(connect.CodeDeadlineExceeded, err)
	default:
		return nil, h.internal(ctx, err)
	}
	return connect.NewResponse(&intakev1.AdmitPatientResponse{PatientId: out.PatientID, EpisodeId: out.EpisodeID, Replayed: out.Replayed}), nil
}

// internal logs err (our errors carry ids and SQL states, never values) and hides it.
func (h *Handler) internal(ctx context.Context, err error) error {
	h.log.ErrorContext(ctx, "admit patient failed", "error", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

// requestHash identifies a request for idempotency: the procedure and the deterministic
// encoding of the message without its idempotency key.
func requestHash(procedure string, m *intakev1.AdmitPatientRequest) ([]byte, error) {
	c := proto.CloneOf(m)
	c.IdempotencyKey = ""
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(procedure))
	h.Write([]byte{0})
	h.Write(b)
	return h.Sum(nil), nil
}
