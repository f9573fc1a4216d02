package rpc

import (
	"context"

	"connectrpc.com/connect"

	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/app"
)

// Configuration: payers and the sliding scale are network-wide (changing them needs a token
// for every clinic, "*"); contracts belong to a clinic the caller must see. Clinic ids are not
// PHI, so a clinic the caller cannot see answers permission_denied.

// UpsertPayer creates or changes a payer.
func (s *Server) UpsertPayer(ctx context.Context, req *connect.Request[billingv1.UpsertPayerRequest]) (*connect.Response[billingv1.UpsertPayerResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	payer, err := s.cfg.UpsertPayer(ctx, p, app.PayerFromProto(req.Msg.GetPayer()))
	if err != nil {
		return nil, domainError(ctx, s.log, "upsert payer", err)
	}
	return connect.NewResponse(&billingv1.UpsertPayerResponse{Payer: app.PayerToProto(payer)}), nil
}

// ListPayers lists the payers.
func (s *Server) ListPayers(ctx context.Context, _ *connect.Request[billingv1.ListPayersRequest]) (*connect.Response[billingv1.ListPayersResponse], error) {
	payers, err := s.cfg.Payers(ctx)
	if err != nil {
		return nil, domainError(ctx, s.log, "list payers", err)
	}
	out := &billingv1.ListPayersResponse{}
	for _, p := range payers {
		out.Payers = append(out.Payers, app.PayerToProto(p))
	}
	return connect.NewResponse(out), nil
}

// UpsertContract creates (empty contract_id) or changes a contract.
func (s *Server) UpsertContract(ctx context.Context, req *connect.Request[billingv1.UpsertContractRequest]) (*connect.Response[billingv1.UpsertContractResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, changed, err := s.cfg.UpsertContract(ctx, p, app.ContractFromProto(req.Msg.GetContract()))
	if err != nil {
		return nil, domainError(ctx, s.log, "upsert contract", err)
	}
	if changed {
		s.log.InfoContext(ctx, "contract configured", "contract_id", c.ID, "clinic_id", c.ClinicID, "payer_id", c.PayerID)
	}
	return connect.NewResponse(&billingv1.UpsertContractResponse{Contract: app.ContractToProto(c)}), nil
}

// ListContracts lists a clinic's contracts.
func (s *Server) ListContracts(ctx context.Context, req *connect.Request[billingv1.ListContractsRequest]) (*connect.Response[billingv1.ListContractsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := s.cfg.ClinicContracts(ctx, p, req.Msg.GetClinicId())
	if err != nil {
		return nil, domainError(ctx, s.log, "list contracts", err)
	}
	out := &billingv1.ListContractsResponse{}
	for _, c := range cs {
		out.Contracts = append(out.Contracts, app.ContractToProto(c))
	}
	return connect.NewResponse(out), nil
}

// SetSlidingScale replaces the self-pay sliding scale.
func (s *Server) SetSlidingScale(ctx context.Context, req *connect.Request[billingv1.SetSlidingScaleRequest]) (*connect.Response[billingv1.SetSlidingScaleResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tiers := app.TiersFromProto(req.Msg.GetTiers())
	if err := s.cfg.SetSlidingScale(ctx, p, tiers); err != nil {
		return nil, domainError(ctx, s.log, "set sliding scale", err)
	}
	return connect.NewResponse(&billingv1.SetSlidingScaleResponse{Tiers: app.TiersToProto(tiers)}), nil
}

// GetSlidingScale returns the self-pay sliding scale.
func (s *Server) GetSlidingScale(ctx context.Context, _ *connect.Request[billingv1.GetSlidingScaleRequest]) (*connect.Response[billingv1.GetSlidingScaleResponse], error) {
	tiers, err := s.cfg.SlidingScale(ctx)
	if err != nil {
		return nil, domainError(ctx, s.log, "get sliding scale", err)
	}
	return connect.NewResponse(&billingv1.GetSlidingScaleResponse{Tiers: app.TiersToProto(tiers)}), nil
}
