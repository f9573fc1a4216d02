package rpc

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/pkg/rpc"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// RemittanceServer implements billingv1connect.RemittanceServiceHandler.
//
// Access: an upload spans clinics (one 835 pays claims of many), so it needs a token for every
// clinic ("*"). Lists and aging show only the caller's clinics; a clinic_id the caller cannot
// see is permission_denied (clinic ids are not PHI). A work item in an invisible clinic is
// not_found, like an absent one (for UpdateWorkItem and WriteOff alike).
type RemittanceServer struct {
	billingv1connect.UnimplementedRemittanceServiceHandler
	app    *app.Remittances
	ledger *app.PatientLedger
	log    *slog.Logger
}

// NewRemittanceServer returns the handler implementation.
func NewRemittanceServer(a *app.Remittances, ledger *app.PatientLedger, log *slog.Logger) *RemittanceServer {
	return &RemittanceServer{app: a, ledger: ledger, log: log}
}

// RemittancePolicy: the roles allowed to call each remittance procedure.
var RemittancePolicy = rpc.Policy{
	billingv1connect.RemittanceServiceUploadRemittanceProcedure:    {RoleBilling, RoleAdmin},
	billingv1connect.RemittanceServiceUpdateWorkItemProcedure:      {RoleBilling, RoleAdmin},
	billingv1connect.RemittanceServiceIssueStatementsProcedure:     {RoleBilling, RoleAdmin},
	billingv1connect.RemittanceServiceWriteOffProcedure:            {RoleBilling, RoleAdmin},
	billingv1connect.RemittanceServiceListWriteOffsProcedure:       {RoleBilling, RoleAdmin},
	billingv1connect.RemittanceServiceListRemittancesProcedure:     {RoleBilling, RoleOperator, RoleAdmin},
	billingv1connect.RemittanceServiceListWorkItemsProcedure:       {RoleBilling, RoleOperator, RoleAdmin},
	billingv1connect.RemittanceServiceGetReceivablesAgingProcedure: {RoleBilling, RoleOperator, RoleAdmin},
	billingv1connect.RemittanceServiceGetPatientBalanceProcedure:   {RoleBilling, RoleOperator, RoleAdmin},
}

func summaryToProto(r domain.Remittance, duplicate bool) *billingv1.RemittanceSummary {
	out := &billingv1.RemittanceSummary{RemittanceId: r.ID, Duplicate: duplicate, Payer: r.Payer,
		Transactions: int32(r.Summary.Transactions), Claims: int32(r.Summary.Claims), ServiceLines: int32(r.Summary.ServiceLines),
		TotalPaidCents: r.Summary.TotalPaidCents, MatchedClaims: int32(r.MatchedClaims), UnmatchedLines: int32(r.UnmatchedLines),
		WorkItems: int32(r.WorkItems), PostedAt: timestamppb.New(r.PostedAt), FileName: r.FileName}
	for _, d := range r.Summary.Deviations {
		out.Deviations = append(out.Deviations, &billingv1.RemittanceDeviation{Rule: d.Rule, Segment: d.Segment,
			Expected: d.Expected, Actual: d.Actual, Detail: d.Detail})
	}
	return out
}

// UploadRemittance posts an 835.
func (s *RemittanceServer) UploadRemittance(ctx context.Context, req *connect.Request[billingv1.UploadRemittanceRequest]) (*connect.Response[billingv1.UploadRemittanceResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	up, err := s.app.UploadRemittance(ctx, p, req.Msg.GetFileName(), req.Msg.GetContent())
	if err != nil {
		return nil, domainError(ctx, s.log, "upload remittance", err)
	}
	if up.Duplicate {
		s.log.InfoContext(ctx, "remittance already posted; nothing posted", "remittance_id", up.Remittance.ID)
	} else {
		s.log.InfoContext(ctx, "remittance posted", "remittance_id", up.Remittance.ID, "claims", up.Remittance.Summary.Claims,
			"matched_claims", up.Remittance.MatchedClaims, "unmatched_lines", up.Remittance.UnmatchedLines,
			"deviations", len(up.Remittance.Summary.Deviations))
	}
	// The matched claims' patients are named, so the audit trail records the upload against
	// each of them (a file names other patients it could not match only by name: not recorded).
	return connect.NewResponse(&billingv1.UploadRemittanceResponse{Summary: summaryToProto(up.Remittance, up.Duplicate),
		PatientIds: up.PatientIDs}), nil
}

// ListRemittances lists posted remittances.
func (s *RemittanceServer) ListRemittances(ctx context.Context, req *connect.Request[billingv1.ListRemittancesRequest]) (*connect.Response[billingv1.ListRemittancesResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.app.ListRemittances(ctx, p, int(req.Msg.GetLimit()))
	if err != nil {
		return nil, domainError(ctx, s.log, "list remittances", err)
	}
	out := &billingv1.ListRemittancesResponse{}
	for _, r := range list {
		out.Remittances = append(out.Remittances, summaryToProto(r, false))
	}
	return connect.NewResponse(out), nil
}

// ListWorkItems lists a work queue.
func (s *RemittanceServer) ListWorkItems(ctx context.Context, req *connect.Request[billingv1.ListWorkItemsRequest]) (*connect.Response[billingv1.ListWorkItemsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	items, err := s.app.ListWorkItems(ctx, p, req.Msg.GetQueue(), req.Msg.GetClinicId(), req.Msg.GetStatus())
	if err != nil {
		return nil, domainError(ctx, s.log, "list work items", err)
	}
	out := &billingv1.ListWorkItemsResponse{}
	for _, w := range items {
		out.Items = append(out.Items, app.WorkItemToProto(w))
	}
	return connect.NewResponse(out), nil
}

// UpdateWorkItem resolves, reopens or moves the appeal of a work item.
func (s *RemittanceServer) UpdateWorkItem(ctx context.Context, req *connect.Request[billingv1.UpdateWorkItemRequest]) (*connect.Response[billingv1.UpdateWorkItemResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	w, err := s.app.UpdateWorkItem(ctx, p, req.Msg.GetId(), req.Msg.GetStatus(), req.Msg.GetAppealStatus())
	if err != nil {
		return nil, domainError(ctx, s.log, "update work item", err)
	}
	return connect.NewResponse(&billingv1.UpdateWorkItemResponse{Item: app.WorkItemToProto(w)}), nil
}

func bucketsToProto(b domain.Buckets) *billingv1.AgingBuckets {
	return &billingv1.AgingBuckets{Days_0_30: int64(b.Days0To30), Days_31_60: int64(b.Days31To60), Days_61_90: int64(b.Days61To90),
		Days_91_120: int64(b.Days91To120), Over_120: int64(b.Over120), Total: int64(b.Total)}
}

// GetReceivablesAging ages payer and patient receivables.
func (s *RemittanceServer) GetReceivablesAging(ctx context.Context, req *connect.Request[billingv1.GetReceivablesAgingRequest]) (*connect.Response[billingv1.GetReceivablesAgingResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.app.ReceivablesAging(ctx, p, req.Msg.GetClinicId())
	if err != nil {
		return nil, domainError(ctx, s.log, "receivables aging", err)
	}
	out := &billingv1.GetReceivablesAgingResponse{AsOf: a.AsOf.Format("2006-01-02")}
	for _, pa := range a.Payers {
		out.Payers = append(out.Payers, &billingv1.PayerAging{PayerId: pa.PayerID, ClinicId: pa.ClinicID,
			Claims: int32(pa.Claims), Buckets: bucketsToProto(pa.Buckets)})
	}
	for _, pa := range a.Patients {
		out.Patients = append(out.Patients, &billingv1.PatientAging{ClinicId: pa.ClinicID, Accounts: int32(pa.Accounts),
			Buckets: bucketsToProto(pa.Buckets)})
	}
	return connect.NewResponse(out), nil
}

// GetPatientBalance returns a patient's balance at a clinic.
func (s *RemittanceServer) GetPatientBalance(ctx context.Context, req *connect.Request[billingv1.GetPatientBalanceRequest]) (*connect.Response[billingv1.GetPatientBalanceResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	b, err := s.app.PatientBalance(ctx, p, req.Msg.GetPatientId(), req.Msg.GetClinicId())
	if err != nil {
		return nil, domainError(ctx, s.log, "patient balance", err)
	}
	out := &billingv1.GetPatientBalanceResponse{AccountId: b.AccountID, BalanceCents: int64(b.Balance)}
	for _, e := range b.Entries {
		out.Entries = append(out.Entries, &billingv1.LedgerEntry{Id: e.ID, Kind: e.Kind, AmountCents: int64(e.Amount),
			ClaimId: e.ClaimID, RemittanceId: e.RemittanceID, CreatedAt: timestamppb.New(e.CreatedAt)})
	}
	if st := b.LastStatement; st != nil {
		out.LastStatement = &billingv1.Statement{StatementId: st.ID, BalanceCents: int64(st.Balance), DueDate: st.DueDate,
			IssuedAt: timestamppb.New(st.IssuedAt)}
	}
	return connect.NewResponse(out), nil
}

// IssueStatements runs the statement cycle now.
func (s *RemittanceServer) IssueStatements(ctx context.Context, _ *connect.Request[billingv1.IssueStatementsRequest]) (*connect.Response[billingv1.IssueStatementsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.ledger.IssueStatementsFor(ctx, p)
	if err != nil {
		return nil, domainError(ctx, s.log, "issue statements", err)
	}
	return connect.NewResponse(&billingv1.IssueStatementsResponse{Issued: int32(n)}), nil
}

// WriteOff writes off what a denial or underpayment item leaves unpaid, at most once per
// idempotency key. The log names ids, the queue, the amount and the reason code, never the note.
func (s *RemittanceServer) WriteOff(ctx context.Context, req *connect.Request[billingv1.WriteOffRequest]) (*connect.Response[billingv1.WriteOffResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := idempotency.RequestHash(req.Spec().Procedure, m, func(c *billingv1.WriteOffRequest) { c.IdempotencyKey = "" })
	if err != nil {
		return nil, domainError(ctx, s.log, "write off", err)
	}
	out, replayed, err := s.app.WriteOff(ctx, app.WriteOffCommand{Viewer: p, Caller: p.Subject, WorkItemID: m.GetWorkItemId(),
		Reason: m.GetReason(), Note: m.GetNote(), AmountCents: m.GetAmountCents(), IdempotencyKey: m.GetIdempotencyKey(),
		RequestHash: hash})
	if err != nil {
		return nil, domainError(ctx, s.log, "write off", err)
	}
	if !replayed {
		wo := out.GetWriteOff()
		s.log.InfoContext(ctx, "balance written off", "write_off_id", wo.GetId(), "work_item_id", wo.GetWorkItemId(),
			"queue", wo.GetQueue(), "amount_cents", wo.GetAmountCents(), "reason", wo.GetReason(),
			"item_status", out.GetItem().GetStatus())
	}
	return connect.NewResponse(out), nil
}

// ListWriteOffs lists write-offs, newest first.
func (s *RemittanceServer) ListWriteOffs(ctx context.Context, req *connect.Request[billingv1.ListWriteOffsRequest]) (*connect.Response[billingv1.ListWriteOffsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.app.ListWriteOffs(ctx, p, req.Msg.GetClinicId(), req.Msg.GetClaimId(), int(req.Msg.GetLimit()))
	if err != nil {
		return nil, domainError(ctx, s.log, "list write-offs", err)
	}
	out := &billingv1.ListWriteOffsResponse{}
	for _, w := range list {
		out.WriteOffs = append(out.WriteOffs, app.WriteOffToProto(w))
	}
	return connect.NewResponse(out), nil
}
