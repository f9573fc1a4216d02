package rpc

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// ChargesServer implements billingv1connect.ChargesServiceHandler. Every request names a
// clinic the caller must see (clinic ids are not PHI: another clinic answers permission_denied).
type ChargesServer struct {
	billingv1connect.UnimplementedChargesServiceHandler
	charges *app.Charges
	log     *slog.Logger
}

// NewChargesServer returns the handler implementation.
func NewChargesServer(c *app.Charges, log *slog.Logger) *ChargesServer {
	return &ChargesServer{charges: c, log: log}
}

// ListCharges lists a page of a clinic's charges.
func (s *ChargesServer) ListCharges(ctx context.Context, req *connect.Request[billingv1.ListChargesRequest]) (*connect.Response[billingv1.ListChargesResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	cs, next, err := s.charges.ListCharges(ctx, p, domain.ChargeFilter{
		ClinicID: m.GetClinicId(), PatientID: m.GetPatientId(), Status: app.ChargeStatusFromProto(m.GetStatus()),
		From: m.GetServiceDateFrom(), To: m.GetServiceDateTo(), After: m.GetPageToken(), Limit: int(m.GetLimit()),
	})
	if err != nil {
		return nil, domainError(ctx, s.log, "list charges", err)
	}
	out := &billingv1.ListChargesResponse{NextPageToken: next}
	for _, c := range cs {
		out.Charges = append(out.Charges, app.ChargeToProto(c))
	}
	return connect.NewResponse(out), nil
}

// UpsertAuthorization records or changes a prior authorization.
func (s *ChargesServer) UpsertAuthorization(ctx context.Context, req *connect.Request[billingv1.UpsertAuthorizationRequest]) (*connect.Response[billingv1.UpsertAuthorizationResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.charges.UpsertAuthorization(ctx, p, app.AuthorizationFromProto(req.Msg.GetAuthorization()))
	if err != nil {
		return nil, domainError(ctx, s.log, "upsert authorization", err)
	}
	s.log.InfoContext(ctx, "authorization recorded", "authorization_id", a.ID, "clinic_id", a.ClinicID)
	return connect.NewResponse(&billingv1.UpsertAuthorizationResponse{Authorization: app.AuthorizationToProto(a)}), nil
}

// ListAuthorizations lists a clinic's authorizations.
func (s *ChargesServer) ListAuthorizations(ctx context.Context, req *connect.Request[billingv1.ListAuthorizationsRequest]) (*connect.Response[billingv1.ListAuthorizationsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	as, err := s.charges.ListAuthorizations(ctx, p, req.Msg.GetClinicId(), req.Msg.GetPatientId())
	if err != nil {
		return nil, domainError(ctx, s.log, "list authorizations", err)
	}
	out := &billingv1.ListAuthorizationsResponse{}
	for _, a := range as {
		out.Authorizations = append(out.Authorizations, app.AuthorizationToProto(a))
	}
	return connect.NewResponse(out), nil
}
