package domain

import (
	"fmt"
	"slices"
	"time"

	"github.com/trellis-health/trellis/pkg/money"
)

// Write-off reasons (WriteOffRequest.reason).
const (
	WriteOffSmallBalance   = "small_balance"
	WriteOffTimelyFiling   = "timely_filing"
	WriteOffNonCovered     = "non_covered"
	WriteOffAuthorization  = "authorization"
	WriteOffUncollectible  = "uncollectible"
	WriteOffAdministrative = "administrative"
	WriteOffCharityCare    = "charity_care"
)

// WriteOffReasons lists every write-off reason.
var WriteOffReasons = []string{WriteOffSmallBalance, WriteOffTimelyFiling, WriteOffNonCovered, WriteOffAuthorization,
	WriteOffUncollectible, WriteOffAdministrative, WriteOffCharityCare}

// Rules a write-off can break on its work item (failed precondition, naming work_item_id).
const (
	RuleWriteOffQueue   = "write_off.queue"   // only denial and underpayment items
	RuleWriteOffOpen    = "write_off.open"    // only open items
	RuleWriteOffPosting = "write_off.posting" // the payer's decision still stands (not reversed or superseded)
	RuleWriteOffLeft    = "write_off.left"    // something is left on the item
)

// WriteOffNoteMax is the longest note, in characters.
const WriteOffNoteMax = 500

// WriteOff is an amount billing gives up on, from a denial or underpayment work item.
type WriteOff struct {
	ID, WorkItemID, Queue, ClaimID, ClinicID, PayerID string
	Amount                                            money.Cents
	Reason, Note, WrittenOffBy                        string
	CreatedAt                                         time.Time
}

// Left is what is still at stake on w: its amount less what was written off (never negative).
func (w WorkItem) Left() money.Cents { return max(w.Amount-w.WrittenOff, 0) }

// Writable reports whether w's queue takes write-offs (denial and underpayment).
func Writable(queue string) bool { return queue == QueueDenial || queue == QueueUnderpayment }

// PlanWriteOff checks a write-off of amount (0: all that is left) from w, whose posting
// (the remittance claim the item came from) still stands when postingActive, and returns the
// write-off (amount, reason, note and the item's ids; id, author and time are the caller's)
// and the item after it: resolved when nothing is left.
//
// A refusal on the item is an ErrConflict naming work_item_id and the rule (RuleWriteOff*):
// only open denial and underpayment items whose posting stands and that have something left.
// Bad input is a ValidationError: reason not a known reason, note too long, amount_cents
// negative or beyond what is left.
func PlanWriteOff(w WorkItem, postingActive bool, reason, note string, amount money.Cents) (WriteOff, WorkItem, error) {
	conflict := func(rule, msg string) error {
		return fmt.Errorf("%w: work_item_id: %s: %s", ErrConflict, rule, msg)
	}
	switch {
	case !Writable(w.Queue):
		return WriteOff{}, w, conflict(RuleWriteOffQueue, "only denial and underpayment items are written off")
	case w.Status != WorkOpen:
		return WriteOff{}, w, conflict(RuleWriteOffOpen, "only open items are written off")
	case !postingActive:
		return WriteOff{}, w, conflict(RuleWriteOffPosting, "the remittance that opened the item was reversed or superseded")
	case w.Left() <= 0:
		return WriteOff{}, w, conflict(RuleWriteOffLeft, "nothing is left on the item")
	}
	var vs violations
	if !slices.Contains(WriteOffReasons, reason) {
		vs.add("reason", "reason.in", "one of small_balance, timely_filing, non_covered, authorization, uncollectible, administrative, charity_care")
	}
	if len([]rune(note)) > WriteOffNoteMax {
		vs.add("note", "note.max_len", "at most 500 characters")
	}
	switch {
	case amount < 0:
		vs.add("amount_cents", "amount_cents.gte", "0 (all that is left) or more")
	case amount > w.Left():
		vs.add("amount_cents", "amount_cents.at_most_left", "at most what is left on the item (0: all of it)")
	}
	if err := vs.err(); err != nil {
		return WriteOff{}, w, err
	}
	if amount == 0 {
		amount = w.Left()
	}
	w.WrittenOff += amount
	if w.Left() == 0 {
		w.Status = WorkResolved
	}
	return WriteOff{WorkItemID: w.ID, Queue: w.Queue, ClaimID: w.ClaimID, ClinicID: w.ClinicID, PayerID: w.PayerID,
		Amount: amount, Reason: reason, Note: note}, w, nil
}
