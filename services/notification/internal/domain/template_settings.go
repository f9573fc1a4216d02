package domain

import (
	"fmt"
	"slices"
)

// Clinic notification settings limits.
const (
	MinReminderOffset  = 1           // minutes before the appointment
	MaxReminderOffset  = 7 * 24 * 60 // a week
	MaxReminderOffsets = 4
)

// CheckClinicSettings returns the problems of a clinic's settings: up to MaxReminderOffsets
// distinct reminder offsets of MinReminderOffset..MaxReminderOffset minutes, an E.164 contact
// number (or none), and single addresses (or none) for the teams.
func CheckClinicSettings(offsets []int, contactPhone, careTeamEmail, billingEmail string) []Problem {
	var ps []Problem
	if len(offsets) > MaxReminderOffsets {
		ps = append(ps, Problem{Field: "reminder_offsets_minutes", Rule: "repeated.max_items",
			Msg: fmt.Sprintf("at most %d reminders", MaxReminderOffsets)})
	}
	for i, o := range offsets {
		if o < MinReminderOffset || o > MaxReminderOffset {
			ps = append(ps, Problem{Field: fmt.Sprintf("reminder_offsets_minutes[%d]", i), Rule: "int32.gte_lte",
				Msg: fmt.Sprintf("must be %d to %d minutes", MinReminderOffset, MaxReminderOffset)})
		}
		if slices.Index(offsets, o) < i {
			ps = append(ps, Problem{Field: fmt.Sprintf("reminder_offsets_minutes[%d]", i), Rule: "repeated.unique",
				Msg: "repeats an earlier offset"})
		}
	}
	if contactPhone != "" && !e164.MatchString(contactPhone) {
		ps = append(ps, Problem{Field: "contact_phone", Rule: "string.e164", Msg: "must be an E.164 number, e.g. +13125550100"})
	}
	for field, v := range map[string]string{"care_team_email": careTeamEmail, "billing_email": billingEmail} {
		if v != "" && NormalizeEmail(v) != v {
			ps = append(ps, Problem{Field: field, Rule: "string.email", Msg: "must be one bare email address"})
		}
	}
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if a.Field < b.Field {
			return -1
		}
		if a.Field > b.Field {
			return 1
		}
		return 0
	})
	return ps
}
