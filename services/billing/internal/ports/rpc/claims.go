package rpc

import (
	"context"
	"log/slog"
	"sort"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"

	"github.com/trellis-health/trellis/services/billing/internal/app"
	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// ClaimsPolicy: the roles allowed to call each ClaimsService procedure. Claim files and the
// accounting of disclosures carry patients' identities: billing and admin only.
var ClaimsPolicy = rpc.Policy{
	billingv1connect.ClaimsServiceSetBillingProviderProcedure:  {RoleBilling, RoleAdmin},
	billingv1connect.ClaimsServiceGetBillingProviderProcedure:  {RoleBilling, RoleOperator, RoleAdmin},
	billingv1connect.ClaimsServiceSetPatientDiagnosesProcedure: {RoleBilling, RoleAdmin},
	billingv1connect.ClaimsServiceCreateClaimFilesProcedure:    {RoleBilling, RoleAdmin},
	billingv1connect.ClaimsServiceListClaimFilesProcedure:      {RoleBilling, RoleOperator, RoleAdmin},
	billingv1connect.ClaimsServiceDownloadClaimFileProcedure:   {RoleBilling, RoleAdmin},
	billingv1connect.ClaimsServiceListClaimsProcedure:          {RoleBilling, RoleOperator, RoleAdmin},
	billingv1connect.ClaimsServiceListDisclosuresProcedure:     {RoleBilling, RoleAdmin},
}

// ClaimsServer implements billingv1connect.ClaimsServiceHandler. Authentication, the role
// policy and request validation run before it. A clinic the caller cannot see answers
// permission_denied (clinic ids are not PHI); a claim file of such a clinic is not_found.
type ClaimsServer struct {
	billingv1connect.UnimplementedClaimsServiceHandler
	claims *app.Claims
	log    *slog.Logger
}

// NewClaimsServer returns the handler implementation.
func NewClaimsServer(c *app.Claims, log *slog.Logger) *ClaimsServer {
	return &ClaimsServer{claims: c, log: log}
}

var claimsStatuses = map[billingv1.ClaimStatus]string{
	billingv1.ClaimStatus_CLAIM_STATUS_SUBMITTED:      "submitted",
	billingv1.ClaimStatus_CLAIM_STATUS_PAID:           "paid",
	billingv1.ClaimStatus_CLAIM_STATUS_PARTIALLY_PAID: "partially_paid",
	billingv1.ClaimStatus_CLAIM_STATUS_DENIED:         "denied",
	billingv1.ClaimStatus_CLAIM_STATUS_REVERSED:       "reversed",
	billingv1.ClaimStatus_CLAIM_STATUS_REPLACED:       "replaced",
	billingv1.ClaimStatus_CLAIM_STATUS_VOIDED:         "voided",
}

func claimsTypeProto(t string) billingv1.ClaimType {
	switch t {
	case domain.ClaimInstitutional:
		return billingv1.ClaimType_CLAIM_TYPE_INSTITUTIONAL
	case domain.ClaimProfessional:
		return billingv1.ClaimType_CLAIM_TYPE_PROFESSIONAL
	}
	return billingv1.ClaimType_CLAIM_TYPE_UNSPECIFIED
}

func claimsCaller(ctx context.Context) (*auth.Principal, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func claimsProviderToProto(p domain.BillingProvider) *billingv1.BillingProvider {
	return &billingv1.BillingProvider{ClinicId: p.ClinicID, Name: p.Name, Npi: p.NPI, TaxId: p.TaxID, TaxonomyCode: p.Taxonomy,
		AddressLine: p.AddressLine, City: p.City, State: p.State, PostalCode: p.PostalCode}
}

func claimsFileToProto(f domain.ClaimFile) *billingv1.ClaimFileInfo {
	return &billingv1.ClaimFileInfo{FileId: f.ID, ClinicId: f.ClinicID, PayerId: f.PayerID, ClaimType: claimsTypeProto(f.ClaimType),
		InterchangeControlNumber: f.InterchangeControlNumber, ClaimCount: int32(f.ClaimCount), LineCount: int32(f.LineCount),
		TotalCents: f.TotalCents, CreatedAt: timestamppb.New(f.CreatedAt)}
}

// SetBillingProvider sets the clinic's billing provider.
func (s *ClaimsServer) SetBillingProvider(ctx context.Context, req *connect.Request[billingv1.SetBillingProviderRequest]) (*connect.Response[billingv1.SetBillingProviderResponse], error) {
	p, err := claimsCaller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg.GetProvider()
	out, err := s.claims.SetBillingProvider(ctx, p, domain.BillingProvider{ClinicID: m.GetClinicId(), Name: m.GetName(),
		NPI: m.GetNpi(), TaxID: m.GetTaxId(), Taxonomy: m.GetTaxonomyCode(), AddressLine: m.GetAddressLine(),
		City: m.GetCity(), State: m.GetState(), PostalCode: m.GetPostalCode()})
	if err != nil {
		return nil, domainError(ctx, s.log, "set billing provider", err)
	}
	return connect.NewResponse(&billingv1.SetBillingProviderResponse{Provider: claimsProviderToProto(out)}), nil
}

// GetBillingProvider returns the clinic's billing provider.
func (s *ClaimsServer) GetBillingProvider(ctx context.Context, req *connect.Request[billingv1.GetBillingProviderRequest]) (*connect.Response[billingv1.GetBillingProviderResponse], error) {
	p, err := claimsCaller(ctx)
	if err != nil {
		return nil, err
	}
	out, err := s.claims.BillingProvider(ctx, p, req.Msg.GetClinicId())
	if err != nil {
		return nil, domainError(ctx, s.log, "get billing provider", err)
	}
	return connect.NewResponse(&billingv1.GetBillingProviderResponse{Provider: claimsProviderToProto(out)}), nil
}

// SetPatientDiagnoses replaces a patient's diagnoses at a clinic.
func (s *ClaimsServer) SetPatientDiagnoses(ctx context.Context, req *connect.Request[billingv1.SetPatientDiagnosesRequest]) (*connect.Response[billingv1.SetPatientDiagnosesResponse], error) {
	p, err := claimsCaller(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.claims.SetPatientDiagnoses(ctx, p, req.Msg.GetPatientId(), req.Msg.GetClinicId(), req.Msg.GetCodes())
	if err != nil {
		return nil, domainError(ctx, s.log, "set patient diagnoses", err)
	}
	return connect.NewResponse(&billingv1.SetPatientDiagnosesResponse{ReleasedCharges: int32(n)}), nil
}

// CreateClaimFiles runs a claim run for the clinic.
func (s *ClaimsServer) CreateClaimFiles(ctx context.Context, req *connect.Request[billingv1.CreateClaimFilesRequest]) (*connect.Response[billingv1.CreateClaimFilesResponse], error) {
	p, err := claimsCaller(ctx)
	if err != nil {
		return nil, err
	}
	run, err := s.claims.CreateClaimFiles(ctx, p, req.Msg.GetClinicId(), req.Msg.GetPayerId())
	if err != nil {
		return nil, domainError(ctx, s.log, "create claim files", err)
	}
	out := &billingv1.CreateClaimFilesResponse{}
	claims := 0
	for _, f := range run.Files {
		out.Files = append(out.Files, claimsFileToProto(f))
		claims += f.ClaimCount
	}
	reasons := make([]string, 0, len(run.Held))
	for r := range run.Held {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	held := 0
	for _, r := range reasons {
		out.Held = append(out.Held, &billingv1.ClaimRunHeld{Reason: r, Charges: int32(run.Held[r])})
		held += run.Held[r]
	}
	s.log.InfoContext(ctx, "claim run", "clinic_id", req.Msg.GetClinicId(), "files", len(run.Files), "claims", claims,
		"charges_held", held)
	return connect.NewResponse(out), nil
}

// ListClaimFiles lists a clinic's claim files.
func (s *ClaimsServer) ListClaimFiles(ctx context.Context, req *connect.Request[billingv1.ListClaimFilesRequest]) (*connect.Response[billingv1.ListClaimFilesResponse], error) {
	p, err := claimsCaller(ctx)
	if err != nil {
		return nil, err
	}
	files, err := s.claims.ClaimFiles(ctx, p, req.Msg.GetClinicId(), req.Msg.GetPayerId())
	if err != nil {
		return nil, domainError(ctx, s.log, "list claim files", err)
	}
	out := &billingv1.ListClaimFilesResponse{}
	for _, f := range files {
		out.Files = append(out.Files, claimsFileToProto(f))
	}
	return connect.NewResponse(out), nil
}

// DownloadClaimFile returns one file's X12 content.
func (s *ClaimsServer) DownloadClaimFile(ctx context.Context, req *connect.Request[billingv1.DownloadClaimFileRequest]) (*connect.Response[billingv1.DownloadClaimFileResponse], error) {
	p, err := claimsCaller(ctx)
	if err != nil {
		return nil, err
	}
	// The file's patients are named in the response, so the audit trail records the download
	// against each of them (pkg/rpc reads patient_ids).
	f, patients, err := s.claims.ClaimFileForDownload(ctx, p, req.Msg.GetFileId())
	if err != nil {
		return nil, domainError(ctx, s.log, "download claim file", err)
	}
	s.log.InfoContext(ctx, "claim file downloaded", "file_id", f.ID, "clinic_id", f.ClinicID, "caller", p.Subject)
	return connect.NewResponse(&billingv1.DownloadClaimFileResponse{File: claimsFileToProto(f), FileName: f.FileName(),
		Content: []byte(f.Content), PatientIds: patients}), nil
}

// ListClaims lists a clinic's claims with their lines.
func (s *ClaimsServer) ListClaims(ctx context.Context, req *connect.Request[billingv1.ListClaimsRequest]) (*connect.Response[billingv1.ListClaimsResponse], error) {
	p, err := claimsCaller(ctx)
	if err != nil {
		return nil, err
	}
	claims, err := s.claims.ListClaims(ctx, p, req.Msg.GetClinicId(), req.Msg.GetPatientId(), claimsStatuses[req.Msg.GetStatus()])
	if err != nil {
		return nil, domainError(ctx, s.log, "list claims", err)
	}
	out := &billingv1.ListClaimsResponse{}
	for _, c := range claims {
		m := &billingv1.ClaimInfo{ClaimId: c.ID, FileId: c.FileID, ControlNumber: c.ControlNumber, ClinicId: c.ClinicID,
			PatientId: c.PatientID, PayerId: c.PayerID, ContractId: c.ContractID, ClaimType: claimsTypeProto(c.ClaimType),
			FrequencyCode: c.FrequencyCode, ReplacesClaimId: c.ReplacesClaimID, CorrectedByClaimId: c.CorrectedByClaimID, TotalCents: c.TotalCents,
			FirstServiceDate: c.FirstServiceDate, LastServiceDate: c.LastServiceDate, SubmittedAt: timestamppb.New(c.SubmittedAt)}
		for st, name := range claimsStatuses {
			if name == c.Status {
				m.Status = st
			}
		}
		for _, l := range c.Lines {
			m.Lines = append(m.Lines, &billingv1.ClaimLineInfo{LineNumber: int32(l.LineNumber), ChargeId: l.ChargeID,
				LineControlNumber: l.ControlNumber, ProcedureCode: l.ProcedureCode, RevenueCode: l.RevenueCode,
				Modifiers: l.Modifiers, Units: int32(l.Units), ChargeCents: l.ChargeCents, ServiceDate: l.ServiceDate})
		}
		out.Claims = append(out.Claims, m)
	}
	return connect.NewResponse(out), nil
}

// ListDisclosures is a patient's accounting of disclosures at a clinic.
func (s *ClaimsServer) ListDisclosures(ctx context.Context, req *connect.Request[billingv1.ListDisclosuresRequest]) (*connect.Response[billingv1.ListDisclosuresResponse], error) {
	p, err := claimsCaller(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := s.claims.Disclosures(ctx, p, req.Msg.GetPatientId(), req.Msg.GetClinicId())
	if err != nil {
		return nil, domainError(ctx, s.log, "list disclosures", err)
	}
	out := &billingv1.ListDisclosuresResponse{}
	for _, d := range ds {
		out.Disclosures = append(out.Disclosures, &billingv1.DisclosureRecord{DisclosureId: d.ID, PatientId: d.PatientID,
			ClinicId: d.ClinicID, Recipient: d.Recipient, Purpose: d.Purpose, ConsentId: d.ConsentID, ClaimId: d.ClaimID,
			Description: d.Description, DisclosedAt: timestamppb.New(d.DisclosedAt)})
	}
	return connect.NewResponse(out), nil
}
