package domain

import (
	"errors"
	"strings"
	"testing"

	"github.com/trellis-health/trellis/pkg/money"
)

func TestPlanWriteOff(t *testing.T) {
	item := func(queue, status string, amount, writtenOff money.Cents) WorkItem {
		return WorkItem{ID: "w", Queue: queue, Status: status, Amount: amount, WrittenOff: writtenOff, ClaimID: "c", ClinicID: "k", PayerID: "p"}
	}
	for _, tt := range []struct {
		name          string
		w             WorkItem
		active        bool
		reason, note  string
		amount        money.Cents
		want          money.Cents // written off now
		wantStatus    string
		conflict      string // rule of an ErrConflict
		invalidFields string // fields of a ValidationError
	}{
		{"part of a denial", item(QueueDenial, WorkOpen, 15000, 0), true, WriteOffTimelyFiling, "", 4000, 4000, WorkOpen, "", ""},
		{"all that is left", item(QueueDenial, WorkOpen, 15000, 4000), true, WriteOffNonCovered, "", 0, 11000, WorkResolved, "", ""},
		{"exactly what is left", item(QueueUnderpayment, WorkOpen, 1000, 300), true, WriteOffSmallBalance, "", 700, 700, WorkResolved, "", ""},
		{"more than is left", item(QueueUnderpayment, WorkOpen, 1000, 300), true, WriteOffSmallBalance, "", 701, 0, "", "", "amount_cents"},
		{"negative", item(QueueUnderpayment, WorkOpen, 1000, 0), true, WriteOffSmallBalance, "", -1, 0, "", "", "amount_cents"},
		{"unknown reason, long note", item(QueueDenial, WorkOpen, 1000, 0), true, "bad_debt", strings.Repeat("é", 501), 0, 0, "", "", "reason,note"},
		{"a 500-character note", item(QueueDenial, WorkOpen, 1000, 0), true, WriteOffCharityCare, strings.Repeat("é", 500), 0, 1000, WorkResolved, "", ""},
		{"overpayment", item(QueueOverpayment, WorkOpen, 1000, 0), true, WriteOffAdministrative, "", 0, 0, "", RuleWriteOffQueue, ""},
		{"unmatched", item(QueueUnmatched, WorkOpen, 1000, 0), true, WriteOffAdministrative, "", 0, 0, "", RuleWriteOffQueue, ""},
		{"held charge", item(QueueHolds, WorkOpen, 1000, 0), false, WriteOffAdministrative, "", 0, 0, "", RuleWriteOffQueue, ""},
		{"resolved", item(QueueDenial, WorkResolved, 1000, 0), true, WriteOffAdministrative, "", 0, 0, "", RuleWriteOffOpen, ""},
		{"posting reversed", item(QueueDenial, WorkOpen, 1000, 0), false, WriteOffAdministrative, "", 0, 0, "", RuleWriteOffPosting, ""},
		{"nothing left (reopened)", item(QueueDenial, WorkOpen, 1000, 1000), true, WriteOffAdministrative, "", 0, 0, "", RuleWriteOffLeft, ""},
		{"the item's rules first", item(QueueUnmatched, WorkOpen, 1000, 0), true, "bad_debt", "", 5000, 0, "", RuleWriteOffQueue, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wo, after, err := PlanWriteOff(tt.w, tt.active, tt.reason, tt.note, tt.amount)
			var ve *ValidationError
			switch {
			case tt.conflict != "":
				if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "work_item_id: "+tt.conflict) {
					t.Fatalf("err = %v, want conflict %s", err, tt.conflict)
				}
				return
			case tt.invalidFields != "":
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want invalid %s", err, tt.invalidFields)
				}
				var fields []string
				for _, v := range ve.Violations {
					fields = append(fields, v.Field)
				}
				if strings.Join(fields, ",") != tt.invalidFields {
					t.Fatalf("fields %v, want %s", fields, tt.invalidFields)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if wo.Amount != tt.want || after.WrittenOff != tt.w.WrittenOff+tt.want || after.Status != tt.wantStatus {
				t.Fatalf("wrote off %d, item %+v", wo.Amount, after)
			}
			if wo.WorkItemID != "w" || wo.Queue != tt.w.Queue || wo.ClaimID != "c" || wo.ClinicID != "k" || wo.PayerID != "p" ||
				wo.Reason != tt.reason || wo.Note != tt.note {
				t.Fatalf("write-off %+v", wo)
			}
		})
	}
}
