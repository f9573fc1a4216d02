package app

import (
	"cmp"
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
	"github.com/trellis-health/trellis/pkg/money"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// SubjectBalanceWrittenOff is the subject of BalanceWrittenOff.
const SubjectBalanceWrittenOff = "trellis.billing.balance.written_off.v1"

// WriteOffRepo stores write-offs (implemented by adapters/postgres, with the remittance
// repository); its idempotency keys are WriteOff's.
type WriteOffRepo interface {
	idempotency.Store
	WorkItemPosting(ctx context.Context, tx *bus.Tx, w domain.WorkItem) (remitClaimID string, active, found bool, err error)
	HeldChargeClinic(ctx context.Context, tx *bus.Tx, id string) (clinic string, ok bool, err error)
	AddWriteOff(ctx context.Context, tx *bus.Tx, wo domain.WriteOff, remitClaimID, idempotencyKey string, item domain.WorkItem) error
	ListWriteOffs(ctx context.Context, scope domain.Scope, clinic, claim string, limit int) ([]domain.WriteOff, error)
}

// WriteOffCommand is a request to write off (part of) what a work item leaves unpaid.
type WriteOffCommand struct {
	Viewer domain.Viewer
	// Caller is the token subject: the author of the write-off and the scope of its key.
	Caller         string
	WorkItemID     string
	Reason, Note   string
	AmountCents    int64 // 0: all that is left
	IdempotencyKey string
	RequestHash    []byte // idempotency.RequestHash of the request (with a key)
}

// WriteOff writes off cmd.AmountCents (0: all that is left) of an open denial or underpayment
// item (domain.PlanWriteOff), in one transaction with the item's row locked (so concurrent
// write-offs on one item never exceed it): the write-off is stored, the item resolved when
// nothing is left, and BalanceWrittenOff emitted (without the note). An item of a clinic the
// viewer cannot see, or none, is ErrNotFound; a held charge (holds queue) is refused like
// any other queue. With an idempotency key, a repeat of the same request answers the first
// response (replayed) and changes nothing, once the viewer is checked to still see its clinic;
// the key with another request is idempotency.ErrKeyReused.
func (r *Remittances) WriteOff(ctx context.Context, cmd WriteOffCommand) (out *billingv1.WriteOffResponse, replayed bool, err error) {
	err = r.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		if cmd.IdempotencyKey == "" {
			out, err = r.writeOff(ctx, tx, cmd)
			return err
		}
		call := idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}
		out, replayed, err = idempotency.Once(ctx, tx, r.repo, call, &billingv1.WriteOffResponse{},
			func() (*billingv1.WriteOffResponse, error) { return r.writeOff(ctx, tx, cmd) })
		// A replay answers the stored response without writeOff's clinic check: check it again,
		// so a caller who has lost the clinic since gets ErrNotFound, not the write-off and the
		// item (issue 10, finding 8).
		if err == nil && replayed && !cmd.Viewer.CanSeeClinic(cmp.Or(out.GetWriteOff().GetClinicId(), auth.AllClinics)) {
			return domain.ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return out, replayed, nil
}

func (r *Remittances) writeOff(ctx context.Context, tx *bus.Tx, cmd WriteOffCommand) (*billingv1.WriteOffResponse, error) {
	w, ok, err := r.repo.LockWorkItem(ctx, tx, cmd.WorkItemID)
	if err != nil {
		return nil, err
	}
	if !ok {
		// The holds queue lists held charges under their own id: refuse it as a queue.
		clinic, held, err := r.repo.HeldChargeClinic(ctx, tx, cmd.WorkItemID)
		if err != nil {
			return nil, err
		}
		if !held || !cmd.Viewer.CanSeeClinic(clinic) {
			return nil, domain.ErrNotFound
		}
		w = domain.WorkItem{ID: cmd.WorkItemID, Queue: domain.QueueHolds, ClinicID: clinic, Status: domain.WorkOpen}
	}
	if !cmd.Viewer.CanSeeClinic(cmp.Or(w.ClinicID, auth.AllClinics)) {
		return nil, domain.ErrNotFound
	}
	remitClaimID, active := "", false
	if ok && domain.Writable(w.Queue) {
		var found bool
		remitClaimID, active, found, err = r.repo.WorkItemPosting(ctx, tx, w)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("work item %s: no posting for its ref", w.ID)
		}
	}
	wo, item, err := domain.PlanWriteOff(w, active, cmd.Reason, cmd.Note, money.Cents(cmd.AmountCents))
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	wo.ID, wo.WrittenOffBy, wo.CreatedAt = r.newID(), cmd.Caller, now
	item.UpdatedAt = now
	if err := r.repo.AddWriteOff(ctx, tx, wo, remitClaimID, cmd.IdempotencyKey, item); err != nil {
		return nil, err
	}
	tx.Emit(bus.Event{Subject: SubjectBalanceWrittenOff, ClinicID: wo.ClinicID, Payload: &billingv1.BalanceWrittenOff{
		WriteOffId: wo.ID, WorkItemId: wo.WorkItemID, Queue: wo.Queue, ClaimId: wo.ClaimID, ClinicId: wo.ClinicID,
		PayerId: wo.PayerID, AmountCents: int64(wo.Amount), Reason: wo.Reason, WrittenOffAt: timestamppb.New(wo.CreatedAt)}})
	return &billingv1.WriteOffResponse{WriteOff: WriteOffToProto(wo), Item: WorkItemToProto(item)}, nil
}

// ListWriteOffs lists the newest write-offs in the viewer's clinics (clinic: only that one,
// which the viewer must see; claim: only that claim's), at most limit (0: 100; at most 1000).
func (r *Remittances) ListWriteOffs(ctx context.Context, viewer domain.Viewer, clinic, claim string, limit int) ([]domain.WriteOff, error) {
	if clinic != "" && !viewer.CanSeeClinic(clinic) {
		return nil, fmt.Errorf("%w: clinic", domain.ErrForbidden)
	}
	if limit <= 0 {
		limit = 100
	}
	return r.repo.ListWriteOffs(ctx, remitScope(viewer), clinic, claim, min(limit, 1000))
}
