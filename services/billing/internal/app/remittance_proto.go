package app

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// WorkItemToProto converts a work item (amount_cents is its whole amount, whatever was
// written off).
func WorkItemToProto(w domain.WorkItem) *billingv1.WorkItem {
	out := &billingv1.WorkItem{Id: w.ID, Queue: w.Queue, ClinicId: w.ClinicID, PayerId: w.PayerID, ClaimId: w.ClaimID,
		RemittanceId: w.RemittanceID, AmountCents: int64(w.Amount), Status: w.Status, AppealStatus: w.AppealStatus,
		Reason: w.Reason}
	if !w.CreatedAt.IsZero() {
		out.CreatedAt = timestamppb.New(w.CreatedAt)
	}
	if !w.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(w.UpdatedAt)
	}
	return out
}

// WriteOffToProto converts a write-off.
func WriteOffToProto(w domain.WriteOff) *billingv1.WriteOff {
	return &billingv1.WriteOff{Id: w.ID, WorkItemId: w.WorkItemID, Queue: w.Queue, ClaimId: w.ClaimID, ClinicId: w.ClinicID,
		PayerId: w.PayerID, AmountCents: int64(w.Amount), Reason: w.Reason, Note: w.Note, WrittenOffBy: w.WrittenOffBy,
		CreatedAt: timestamppb.New(w.CreatedAt)}
}
